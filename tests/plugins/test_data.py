"""Loading text data files: the delimiter is detected, rows keep their place in the file through shuffles and
splits, and data that cannot teach or measure anything says so."""

from __future__ import annotations

import dataclasses

import pytest


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name, text, said", [
    ("semi.csv", 'anchor;positive\n"Hi, you";"Hello, there"\nq;a\n', "semicolon-separated"),
    ("tab.csv", 'anchor\tpositive\n"Hi, you"\t"Hello; there"\nq\ta\n', "tab-separated"),
    ("pipe.csv", 'anchor|positive\n"Hi, you"|"a; b"\nq|a\n', "pipe-separated"),
    ("comma.tsv", 'anchor,positive\n"Hi\tyou; x","Hello | there"\nq,a\n', "comma-separated"),
    ("quoted.csv", 'anchor,positive\n"a;b;c;d","e\tf|g"\n"h;i","j;k"\n', None),
    ("plain.tsv", 'anchor\tpositive\nHi, you; x\tHello | there\n', None),
])
def test_the_delimiter_is_detected_and_said_when_not_the_extensions(name, text, said, tmp_path, capsys):
    from contrastkit.plugins.data import load_file

    ds = load_file(_write(tmp_path, name, text))
    out = capsys.readouterr().out
    assert ds.column_names == ["anchor", "positive", "__line__"]
    assert ds[0]["anchor"] in ("Hi, you", "Hi\tyou; x", "a;b;c;d", "Hi, you; x")
    assert (said in out and name in out) if said else "separated" not in out


def _cfg(data, eval_data=None, **fields):
    """The data fields every recipe's Config has, a seed, and the text recipes' columns=."""
    from contrastkit.plugins.config import DataArgs

    @dataclasses.dataclass
    class Cfg(DataArgs):
        seed: int = 42
        columns: dict | None = None

    return Cfg(data=data, eval_data=eval_data, **fields)


def test_an_error_names_the_line_in_the_file_after_the_shuffle_and_split(tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.splits import load_splits
    from contrastkit.plugins.st.formats import detect_format

    rows = [f"q{i},a{i}" for i in range(40)]
    rows[24] = "q24,"  # data row 25: line 26 of the file, counting the header as line 1
    path = _write(tmp_path, "pairs.csv", "anchor,positive\n\n" + "\n".join(rows) + "\n")  # a blank line 2
    train, held = load_splits(_cfg(path), "unused")
    assert len(held) == 4 and train["__line__"] != sorted(train["__line__"])  # shuffled and split
    part = train if 27 in train["__line__"] else held
    with pytest.raises(UserError, match=r"column 'positive' line 27 is empty"):
        detect_format(part)


def test_jsonl_and_in_memory_rows_are_named_consistently(tmp_path):
    from contrastkit.plugins.data import load_file, row_names, to_dataset, with_row_numbers

    path = _write(tmp_path, "p.jsonl", '{"anchor": "a", "positive": "b"}\n\n{"anchor": "c", "positive": "d"}\n')
    assert row_names(load_file(path)) == ["line 1", "line 3"]
    assert row_names(with_row_numbers(to_dataset([{"text": "x"}, {"text": "y"}]))) == ["row 1", "row 2"]


def test_a_dataframe_of_pil_images_becomes_an_image_column():
    """pandas holds images as objects Arrow cannot convert: the rows go through datasets' own Image type instead."""
    import pandas as pd
    from contrastkit.plugins.data import to_dataset
    from PIL import Image

    ds = to_dataset(pd.DataFrame({"image": [Image.new("RGB", (32, 32), "red"), Image.new("RGB", (8, 8))],
                                  "text": ["a red square", "a black one"]}))
    assert type(ds.features["image"]).__name__ == "Image" and ds["text"] == ["a red square", "a black one"]
    assert ds[0]["image"].size == (32, 32) and ds[0]["image"].convert("RGB").getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("value", ["", "  ", "\t"])
def test_blank_data_is_an_error_not_the_current_folder(value):
    from contrastkit.plugins.data import to_dataset
    from contrastkit.plugins.errors import UserError

    with pytest.raises(UserError, match="data= is empty"):
        to_dataset(value)


def test_one_row_is_an_error(tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.splits import load_splits

    with pytest.raises(UserError, match="1 usable row; training needs at least 2"):
        load_splits(_cfg(_write(tmp_path, "one.csv", "anchor,positive\nq,a\n")), "unused")


def test_repeated_rows_and_eval_rows_from_training_are_warned(tmp_path, capsys):
    from contrastkit.plugins.splits import load_splits

    rows = "".join(f"q{i},a{i}\n" for i in range(6))
    path = _write(tmp_path, "p.csv", "anchor,positive\n" + rows + "q1,a1\nq2,a2\n")
    held = _write(tmp_path, "held.csv", "anchor,positive\nq3,a3\nnew,row\n")
    load_splits(_cfg(path, held), "unused")
    out = capsys.readouterr().out
    assert "warning: 2 row(s) of data repeat an earlier row (first: line 8, same as line 3)" in out
    assert "warning: 1 of 2 eval_data rows are also training rows (first: line 2)" in out
    load_splits(_cfg(path, path), "unused")
    assert "warning: every eval_data row is also a training row" in capsys.readouterr().out


def test_subset_and_split_on_a_local_file_or_folder_are_named_as_unused(tmp_path, capsys):
    from contrastkit.plugins.data import to_dataset
    from contrastkit.plugins.vision.data import load_images
    from PIL import Image

    data = tmp_path / "pairs.csv"
    data.write_text("anchor,positive\nq1,a1\nq2,a2\n")
    assert len(to_dataset(str(data), split="test")) == 2
    assert f"data: warning: split=test applies to Hub datasets; data '{data}' is a local file, read whole" in \
        capsys.readouterr().out
    for name in ("a/0.png", "b/1.png"):
        (tmp_path / "imgs" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / name)
    images = load_images(str(tmp_path / "imgs"), subset="x", split="test")
    assert images.notes[-1].startswith("warning: subset=x and split=test apply to Hub datasets; data folder")


@pytest.mark.parametrize("name, sep", [("pairs.csv", ","), ("pairs.tsv", "\t")])
def test_na_words_in_text_are_text_and_only_an_empty_cell_is_missing(name, sep, tmp_path):
    from contrastkit.plugins.data import load_file

    rows = [["anchor", "positive", "score"], ["NA", "None", "0.5"], ["null", "N/A", "0.7"], ["nan", "NULL", "1"],
            ["", "b", "0.2"], ["c", "d", "NA"], ["e", "f", ""]]
    ds = load_file(_write(tmp_path, name, "".join(sep.join(r) + "\n" for r in rows)))
    assert ds["anchor"] == ["NA", "null", "nan", None, "c", "e"]
    assert ds["positive"] == ["None", "N/A", "NULL", "b", "d", "f"]
    assert ds["score"] == [0.5, 0.7, 1.0, 0.2, None, None]  # a number column: NA and empty are both missing


def test_a_na_score_is_refused_like_an_empty_one_naming_its_line(tmp_path):
    from contrastkit.plugins.data import load_file
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.formats import detect_format

    rows = "".join(f"q{i},a{i},0.{i}\n" for i in range(6))
    ds = load_file(_write(tmp_path, "s.csv", "sentence1,sentence2,score\nNone,NA,0.9\n" + rows + "q,a,NA\nr,b,\n"))
    with pytest.raises(UserError, match=r"^column 'score' line 9 is empty or NA \(NaN/null\); every row needs"):
        detect_format(ds)
    assert detect_format(ds.select(range(7)))[0]["sentence1"][0] == "None"  # the NA-word texts are trained on


def test_na_word_captions_stay_captions(tmp_path):
    from contrastkit.plugins.data import to_dataset, with_row_numbers
    from contrastkit.plugins.st.clip_data import image_text_pairs
    from PIL import Image

    for i, color in enumerate(("red", "blue", "green")):
        Image.new("RGB", (8, 8), color).save(tmp_path / f"{i}.png")
    data = _write(tmp_path, "captions.csv", "image,caption\n0.png,None\n1.png,NA\n2.png,a green square\n")
    pairs, stats = image_text_pairs(with_row_numbers(to_dataset(data)), base_dir=tmp_path)
    assert pairs["text"] == ["None", "NA", "a green square"] and not stats.empty_captions


@pytest.mark.parametrize("column, bad, said", [
    ("positive", "", "column 'positive' {line} is empty"),
    ("score", "high", "column 'score' holds text \\({line}: 'high'\\)"),
])
def test_a_bad_row_error_names_the_earliest_line_not_the_first_after_the_split(column, bad, said, tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.splits import load_splits
    from contrastkit.plugins.st.formats import detect_format

    def write(bad_lines=()):
        rows = [[f"q{i}", f"a{i}", f"0.{i % 10}"] for i in range(40)]
        for line in bad_lines:  # line N of the file is row N - 2 (header = line 1)
            rows[line - 2][1 if column == "positive" else 2] = bad
        return _write(tmp_path, "scored.csv", "anchor,positive,score\n" + "".join(",".join(r) + "\n" for r in rows))

    order = load_splits(_cfg(write()), "unused")[0]["__line__"]  # the split depends on the row count and seed only
    later, earlier = next((a, b) for k, a in enumerate(order) for b in order[k + 1:] if b < a)
    train, _ = load_splits(_cfg(write([later, earlier])), "unused")
    assert train["__line__"].index(later) < train["__line__"].index(earlier)  # the later line comes first
    with pytest.raises(UserError, match=said.format(line=f"line {earlier}") + r"(?!\d)"):
        detect_format(train)


def test_a_swapping_columns_mapping_is_what_the_loss_reads(tmp_path, tiny_text_model):
    from contrastkit.plugins.data import load_file
    from contrastkit.plugins.st.losses import choose_loss
    from sentence_transformers import SentenceTransformer

    path = _write(tmp_path, "qa.csv", "answer,question\n" + "".join(f"answer {i},question {i}?\n" for i in range(4)))
    choice = choose_loss(SentenceTransformer(tiny_text_model), load_file(path), "mnrl",
                         columns={"anchor": "question", "positive": "answer"})
    assert choice.dataset.column_names == ["question", "answer"]  # sentence-transformers reads columns by position
    assert choice.dataset[0] == {"question": "question 0?", "answer": "answer 0"}
    said = " ".join([choice.reason, *choice.format.notes]).lower()
    assert "order" not in said and "position" not in said


def test_eval_data_takes_a_datasetdicts_evaluation_split_and_says_so(capsys):
    import datasets
    from contrastkit.plugins.splits import load_splits

    rows = {"anchor": [f"q{i}" for i in range(30)], "positive": [f"a{i}" for i in range(30)]}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows),
                               "test": datasets.Dataset.from_dict({k: [f"{v} held" for v in vs[:6]]
                                                                   for k, vs in rows.items()})})
    train, held = load_splits(_cfg(dd, dd), "unused")
    out = capsys.readouterr().out
    assert len(train) == 30 and held["anchor"] == [f"q{i} held" for i in range(6)]
    assert "held out: the 'test' split of the DatasetDict (splits: train, test); eval_split= picks another" in out
    assert "also a training row" not in out
    train, held = load_splits(_cfg(dd, dd, eval_split="train"), "unused")  # asked for: used, and called what it is
    assert len(held) == 30 and "every eval_data row is also a training row" in capsys.readouterr().out
    train, held = load_splits(_cfg(dd), "unused")  # the whole DatasetDict as data=: its test split is held out
    assert len(train) == 30 and len(held) == 6 and "held out: the 'test' split" in capsys.readouterr().out
    only_train = datasets.DatasetDict({"train": dd["train"]})
    train, held = load_splits(_cfg(only_train), "unused")  # nothing to take: 10% of train, as for a Dataset
    assert (len(train), len(held)) == (27, 3)
    # training on its validation split: evaluation takes another one (test), never the split it trains on
    three = datasets.DatasetDict({"train": dd["train"], "validation": dd["test"], "test": dd["train"].select(range(4))})
    train, held = load_splits(_cfg(three, split="validation"), "unused")
    out = capsys.readouterr().out
    assert len(train) == 6 and held["anchor"] == ["q0", "q1", "q2", "q3"]
    assert "held out: the 'test' split" in out and "also a training row" not in out
    from contrastkit.plugins.errors import UserError

    with pytest.raises(UserError, match=r"eval_split=nope names no split of the DatasetDict given as data, other than "
                                        r"the one it trains on \(splits: train, validation, test\)"):
        _cfg(three, eval_split="nope").check()


def test_eval_split_or_eval_subset_without_eval_data_is_refused_and_eval_subset_picks_the_subset():
    from contrastkit.plugins.errors import UserError

    with pytest.raises(UserError, match="eval_split=test picks a split of eval_data, and no eval_data is given"):
        _cfg("user/pairs", eval_split="test").check()
    with pytest.raises(UserError, match="eval_subset=b picks a subset of an eval_data Hub dataset, and no eval_data"):
        _cfg("user/pairs", eval_subset="b").check()
    assert _cfg("user/pairs", "user/other", eval_subset="b").eval_options() == ("b", None)
    assert _cfg("user/pairs", "user/other", subset="a").eval_options() == (None, None)  # another dataset's subset
    assert _cfg("user/pairs", "user/pairs", subset="a").eval_options() == ("a", None)
    assert _cfg("user/pairs", "user/pairs", subset="a", eval_subset="b").eval_options() == ("b", None)


def test_a_hub_dataset_with_subsets_names_them_when_none_or_a_wrong_one_is_given(tmp_path):
    """Against the local Hub server: datasets' own message is a traceback's worth; ours names the fix."""
    import os
    import subprocess
    import sys

    from tests.hub_server import HubServer, new_token

    token = new_token("alice")
    server = HubServer({token: "alice"}).start()
    try:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=server.url, token=token)
        api.create_repo("alice/multi", repo_type="dataset")
        card = "---\nconfigs:\n- config_name: a\n  data_files: a/*.csv\n- config_name: b\n  data_files: b/*.csv\n---\n"
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="alice/multi",
                        repo_type="dataset")
        for subset in "ab":
            api.upload_file(path_or_fileobj=f"anchor,positive\n{subset}q,a\n{subset}q2,a2\n".encode(),
                            path_in_repo=f"{subset}/train.csv",
                            repo_id="alice/multi", repo_type="dataset")
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": token, "HF_HOME": str(tmp_path / "hf")}
        cases = [((), "dataset 'alice/multi' has several subsets (a, b); pass subset= one of them"),
                 (("c",), "dataset 'alice/multi' has no subset 'c' (subsets: a, b); pass subset= an existing"),
                 (("a", "test"), "dataset 'alice/multi' has no split 'test' (splits: train); pass split= an"),
                 ((None, None, "eval_data"), "has several subsets (a, b); pass eval_subset= one of them"),
                 (("c", None, "eval_data"), "has no subset 'c' (subsets: a, b); pass eval_subset= an existing")]
        code = f"""
from contrastkit.plugins.data import load_hub
from contrastkit.plugins.errors import UserError
for args in {[args for args, _ in cases]!r}:
    try:
        load_hub('alice/multi', *args)
    except UserError as exc:
        print(exc)
print(list(load_hub('alice/multi', 'b', None, 'eval_data')['anchor']))  # the subset asked for, its only split
"""
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        lines = r.stdout.strip().splitlines()
        assert len(lines) == len(cases) + 1, r.stdout + r.stderr[-1500:]
        for line, (_, said) in zip(lines, cases):
            assert said in line, line
        assert lines[-1] == "['bq', 'bq2']"
    finally:
        server.stop()


def test_eval_rows_are_compared_with_training_rows_by_the_texts_in_their_places_not_by_column_position(
        tmp_path, capsys):
    """Training columns q,a mapped by columns=; eval_data read by its own names, in the other order: the eval
    rows that are training pairs are found, and a row holding a training pair the other way round is not one."""
    from contrastkit.plugins.splits import load_splits
    from contrastkit.plugins.st.formats import used_columns

    path = _write(tmp_path, "qa.csv", "id,q,a\n" + "".join(f"{i},question {i},answer {i}\n" for i in range(20)))
    held = _write(tmp_path, "held.csv", "positive,anchor\nanswer 3,question 3\nquestion 5,answer 5\n"
                                        "answer 7,question 7\nanswer 1,question x\n")
    cfg = dataclasses.replace(_cfg(path, held), columns={"anchor": "q", "positive": "a"})
    load_splits(cfg, "unused", used_columns)
    assert "warning: 2 of 4 eval_data rows are also training rows (first: line 2)" in capsys.readouterr().out
    # the texts alone decide: another score for a training pair is still a trained-on pair
    scored = _write(tmp_path, "scored.csv", "sentence2,sentence1,score\nanswer 3,question 3,0.1\nb,a,0.9\n")
    load_splits(dataclasses.replace(cfg, eval_data=scored), "unused", used_columns)
    assert "warning: 1 of 2 eval_data rows are also training rows (first: line 2)" in capsys.readouterr().out


def _classes(tmp_path, per_class):
    rows = "".join(f"text {c} {i},class{c}\n" for c, n in enumerate(per_class) for i in range(n))
    return _write(tmp_path, "classes.csv", "text,label\n" + rows)


def test_class_labelled_rows_are_held_out_class_by_class_so_they_form_triplets(tmp_path, capsys):
    from collections import Counter

    from contrastkit.plugins.splits import load_splits
    from contrastkit.plugins.st.evaluation import labeled_triplets
    from contrastkit.plugins.st.formats import used_columns

    path = _classes(tmp_path, [5] * 10)  # 50 rows, 5 held out: drawn at random, 6 of seeds 0-19 drew no triplet
    held_outs = []
    for seed in range(20):
        train, held = load_splits(dataclasses.replace(_cfg(path), seed=seed), "unused", used_columns)
        assert len(held) == 5 and len(train) == 45 and labeled_triplets(held["text"], held["label"])
        assert set(train["label"]) == {f"class{c}" for c in range(10)}  # every class keeps training rows
        held_outs.append(held["__line__"])
    assert len(set(map(tuple, held_outs))) > 5  # the seed draws the classes and rows
    again = load_splits(dataclasses.replace(_cfg(path), seed=19), "unused", used_columns)[1]["__line__"]
    assert again == held_outs[19]
    sizes = [300, 150, 90, 48, 10, 2]
    held = Counter(load_splits(_cfg(_classes(tmp_path, sizes)), "unused", used_columns)[1]["label"])
    assert sum(held.values()) == 60 and all(abs(held[f"class{c}"] - n / 10) <= 1 for c, n in enumerate(sizes)), held
    assert "drawn at random" not in capsys.readouterr().out


def test_class_labelled_rows_that_cannot_be_held_out_by_class_are_drawn_at_random_and_said(tmp_path, capsys):
    from contrastkit.plugins.splits import load_splits
    from contrastkit.plugins.st.formats import used_columns

    path = _classes(tmp_path, [1] * 40)  # no class has a second row
    train, held = load_splits(_cfg(path), "unused", used_columns)
    assert (len(train), len(held)) == (36, 4)
    assert "data: held out: 4 rows drawn at random, not class by class, which takes 30 or more rows" in \
        capsys.readouterr().out
    pairs = _write(tmp_path, "pairs.csv", "anchor,positive\n" + "".join(f"q{i},a{i}\n" for i in range(40)))
    split = load_splits(_cfg(pairs), "unused", used_columns)[1]["__line__"]
    assert split == load_splits(_cfg(pairs), "unused")[1]["__line__"]  # other formats: the split as before
    assert "drawn at random" not in capsys.readouterr().out


@pytest.mark.parametrize("name, data, said", [
    ("excel.csv", "anchor,positive\ncafé,thé\n".encode("utf-16"), "it starts as UTF-16 does"),  # 'Unicode Text'
    ("latin.csv", "anchor,positive\ncafé,thé\n".encode("latin-1"), "byte 0xe9 at offset 19 is not UTF-8"),
    ("blob.csv", bytes(range(256)), "looks binary"),
])
def test_a_file_that_is_not_utf8_says_what_it_is_and_how_to_resave_it(name, data, said, tmp_path):
    """Excel's UTF-16 'Unicode Text' is named as such (it read as 'looks binary' for its zero bytes); the demo's
    corpus upload words the same check with the same function."""
    from contrastkit.plugins.data import load_file
    from contrastkit.plugins.errors import UserError

    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UserError, match=said) as err:
        load_file(path)
    assert name in str(err.value) and ("re-save it as UTF-8" in str(err.value)) == (said != "looks binary")
