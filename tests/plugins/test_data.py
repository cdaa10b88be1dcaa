"""Loading text data files: the delimiter is detected, rows keep their place in the file through shuffles and
splits, and data that cannot teach or measure anything says so."""

from __future__ import annotations

import types

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


def _cfg(data, eval_data=None):
    return types.SimpleNamespace(data=data, eval_data=eval_data, subset=None, split=None, seed=42)


def test_an_error_names_the_line_in_the_file_after_the_shuffle_and_split(tmp_path):
    from contrastkit.plugins.data import load_splits
    from contrastkit.plugins.errors import UserError
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


@pytest.mark.parametrize("value", ["", "  ", "\t"])
def test_blank_data_is_an_error_not_the_current_folder(value):
    from contrastkit.plugins.data import to_dataset
    from contrastkit.plugins.errors import UserError

    with pytest.raises(UserError, match="data= is empty"):
        to_dataset(value)


def test_one_row_is_an_error(tmp_path):
    from contrastkit.plugins.data import load_splits
    from contrastkit.plugins.errors import UserError

    with pytest.raises(UserError, match="1 usable row; training needs at least 2"):
        load_splits(_cfg(_write(tmp_path, "one.csv", "anchor,positive\nq,a\n")), "unused")


def test_repeated_rows_and_eval_rows_from_training_are_warned(tmp_path, capsys):
    from contrastkit.plugins.data import load_splits

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
