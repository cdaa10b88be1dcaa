"""Data that cannot teach a loss anything is an error; some useless rows are a warning with the count."""

from __future__ import annotations

import datasets
import pytest


def _ds(**columns):
    return datasets.Dataset.from_dict(columns)


def test_pairs_with_the_same_text_twice_warn_with_the_count_and_fail_when_all_are():
    from contrastkit.plugins.data import with_row_numbers
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.formats import detect_format

    _, fmt = detect_format(with_row_numbers(_ds(anchor=["a", "b", "c", "d"], positive=["x", "b", "c ", "y"])))
    assert fmt.kind == "pair"
    assert "warning: 2 of 4 rows have the same text in 'anchor' and 'positive' (first: row 2)" in fmt.notes[0]
    with pytest.raises(UserError, match="every row has the same text in 'anchor' and 'positive'"):
        detect_format(_ds(anchor=["a", "b"], positive=["a", "b"]))
    with pytest.raises(UserError, match="every row has the same text in 'sentence1' and 'sentence2'"):
        detect_format(_ds(sentence1=["a", "b"], sentence2=["a", "b"], score=[0.1, 0.9]))


@pytest.mark.parametrize("column, values", [("score", [0.7, 0.7, 0.7]), ("score", [3, 3, 3]),
                                            ("label", [1, 1, 1]), ("label", [0, 0, 0])])
def test_a_score_or_label_that_never_changes_is_an_error(column, values):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.formats import detect_format

    with pytest.raises(UserError, match=f"column '{column}' is {values[0]!r} on every row"):
        detect_format(_ds(sentence1=["a", "b", "c"], sentence2=["x", "y", "z"], **{column: values}))


def test_the_row_column_never_reaches_the_loss():
    from contrastkit.plugins.data import with_row_numbers
    from contrastkit.plugins.st.formats import detect_format

    ds, fmt = detect_format(with_row_numbers(_ds(text=["a", "b", "c"], label=["x", "y", "x"])))
    assert ds.column_names == ["text", "label"] and fmt.kind == "labeled" and not fmt.notes


def test_held_out_rows_need_not_teach_anything():
    from contrastkit.plugins.st.formats import detect_format

    ds, fmt = detect_format(_ds(sentence1=["a", "b"], sentence2=["a", "y"], label=[1, 1]), held_out=True)
    assert fmt.kind == "binary" and ds["label"] == [1, 1]


def test_columns_given_as_numbers_map_to_number_headers():
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.st.formats import detect_format
    from contrastkit.recipes.text import Config

    cfg = resolve(Config, columns={"anchor": 0, "positive": 1})  # as YAML reads columns={anchor: 0, positive: 1}
    assert cfg.columns == {"anchor": "0", "positive": "1"}
    _, fmt = detect_format(_ds(**{"0": ["q1", "q2"], "1": ["a1", "a2"]}), cfg.columns)
    assert fmt.kind == "pair" and fmt.text_columns == ["0", "1"]


def test_only_the_columns_a_run_reads_decide_whether_rows_repeat():
    from contrastkit.plugins.st.formats import used_columns

    ds = _ds(**{"Unnamed: 0": [0, 1, 2], "question": ["q", "q", "q"], "answer": ["a", "a", "a"], "notes": [1, 2, 3]})
    assert used_columns(ds) == {"question": "text", "answer": "text"}
    # what columns= maps is read in its place (the run refuses numbers as texts later); its look-alike is not read
    assert used_columns(ds, {"anchor": "notes"}) == {"notes": "text", "answer": "text"}
    classes = _ds(text=["a", "b"], label=["x", "y"], id=[1, 2])
    assert used_columns(classes) == {"text": "text", "label": "class"}
    assert used_columns(_ds(answer=["a"], question=["q"], score=[0.5])) == {"question": "text", "answer": "text",
                                                                           "score": "label"}
    # eval_data without the mapped columns is read by its own names, as detect_format reads it
    assert list(used_columns(_ds(positive=["a"], anchor=["q"]), {"anchor": "q", "positive": "a"})) == \
        ["anchor", "positive"]


def test_two_pairs_of_texts_are_refused_with_the_mapping_for_each_and_the_one_mapped_names_the_other_ignored():
    """anchor/positive and sentence1/sentence2 fill the same two places of a loss's inputs: with both in the data,
    the run asks which pair to train on instead of picking one of them silently."""
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.formats import detect_format

    rows = {"anchor": ["q1", "q2"], "positive": ["a1", "a2"], "sentence1": ["s1", "s2"], "sentence2": ["t1", "t2"],
            "score": [0.2, 0.9]}
    with pytest.raises(UserError, match=r"^columns 'anchor' and 'sentence1' both look like the first, and 'positive' "
                                        r"and 'sentence2' the second text of a pair .*; say which to train on: "
                                        r"columns=\{anchor: anchor, positive: positive\} or "
                                        r"columns=\{sentence1: sentence1, sentence2: sentence2\} \(found: "):
        detect_format(_ds(**rows))
    with pytest.raises(UserError, match=r"columns=\{anchor: question\} or columns=\{sentence1: text1\}"):
        detect_format(_ds(question=["q1", "q2"], text1=["s1", "s2"]))
    for mapping, read, ignored in [({"anchor": "anchor", "positive": "positive"}, ["anchor", "positive"],
                                    "sentence1, sentence2"),
                                   ({"sentence1": "sentence1", "sentence2": "sentence2"}, ["sentence1", "sentence2"],
                                    "anchor, positive")]:
        ds, fmt = detect_format(_ds(**rows), mapping)
        assert fmt.kind == "score" and ds.column_names == [*read, "score"]
        assert fmt.notes[0] == f"ignored columns: {ignored}"
        assert fmt.notes[1] == "scores in 'score' range 0.2..0.9; read as [0, 1]"  # nothing is mapped
    five = detect_format(_ds(sentence1=["a", "b"], sentence2=["c", "d"], score=[1, 4.5]))[1].notes
    assert five == ["scores in 'score' range 1..4.5; read as [0, 5] and mapped to [0, 1]"]
    # one text per place, whatever the family: nothing to choose
    assert detect_format(_ds(anchor=["q1", "q2"], sentence2=["a1", "a2"]))[1].text_columns == ["anchor", "sentence2"]


def test_a_column_named_like_a_role_the_format_does_not_read_is_named_ignored():
    from contrastkit.plugins.st.formats import detect_format

    _, fmt = detect_format(_ds(anchor=["q1", "q2"], positive=["a1", "a2"], text=["x", "y"]))
    assert fmt.kind == "pair" and fmt.notes == ["ignored columns: text"]
    _, fmt = detect_format(_ds(query=["q1", "q2"], text=["x", "y"]))
    assert fmt.text_columns == ["text"] and fmt.notes == ["ignored columns: query"]


def test_header_names_with_spaces_around_them_keep_their_role():
    from contrastkit.plugins.st.formats import detect_format

    _, fmt = detect_format(_ds(**{" anchor": ["q1", "q2"], " positive ": ["a1", "a2"]}))
    assert fmt.kind == "pair" and fmt.text_columns == [" anchor", " positive "]


def _csv(tmp_path, text):
    from contrastkit.plugins.data import to_dataset, with_row_numbers

    path = tmp_path / "data.csv"
    path.write_text(text)
    return with_row_numbers(to_dataset(str(path)))


def test_held_out_rows_of_one_class_are_accepted_and_keep_their_labels():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.formats import detect_format

    one_class = _ds(text=["a", "b", "c"], label=["bug", "bug", "bug"])
    ds, fmt = detect_format(one_class, held_out=True)
    assert fmt.kind == "labeled" and ds["label"] == ["bug", "bug", "bug"]
    with pytest.raises(UserError, match="column 'label' has a single class"):
        detect_format(one_class)
    ds, fmt = detect_format(_ds(text=["a", "b", "c"], label=["y", "x", "y"]))
    assert ds["label"] == [1, 0, 1] and fmt.classes == ["x", "y"]


@pytest.mark.parametrize("labels", [[0, 1, 0], ["spam", "ham", "spam"]])
def test_one_text_column_of_any_name_beside_a_label_column_is_class_data(labels):
    """sentence-transformers reads columns by place, so (review, label) is (text, label): class-labelled data."""
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.formats import detect_format

    ds, fmt = detect_format(_ds(review=["a", "b", "c"], label=labels))
    assert (fmt.kind, fmt.text_columns, fmt.label_column) == ("labeled", ["review"], "label")
    assert len(set(ds["label"])) == 2
    with pytest.raises(UserError, match="cannot tell the data format"):  # two texts of unknown names: no guess
        detect_format(_ds(review=["a", "b", "c"], other=["x", "y", "x"]))


def test_mined_triplets_with_a_list_of_scores_train_as_triplets_and_other_list_labels_are_one_line_errors():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.formats import detect_format

    mined = _ds(anchor=["q1", "q2"], positive=["a1", "a2"], negative=["a2", "a1"], scores=[[0.9, 0.3], [0.8, 0.2]])
    ds, fmt = detect_format(mined)
    assert fmt.kind == "triplet" and ds.column_names == ["anchor", "positive", "negative"]
    assert fmt.notes == ["ignored columns: scores (a list per row, as mined triplets carry their scores)"]
    with pytest.raises(UserError, match=r"column 'scores' holds a list on each row \(row 1: \[0.9, 0.3\]\); a scores "
                                        r"must be one number per row"):
        detect_format(mined.remove_columns("negative"))
    with pytest.raises(UserError, match="column 'label' holds a list on each row .* one class per row"):
        detect_format(_ds(text=["a", "b"], label=[["x"], ["y", "x"]]))


def test_only_negative_names_are_negatives_and_columns_leaves_unmapped_look_alikes_out():
    from contrastkit.plugins.st.formats import detect_format

    rows = {"query": ["q1", "q2"], "positive": ["a1", "a2"], "negative": ["a2", "a1"]}
    for extra, kept, note in [({"negation": ["no", "no"]}, [], "negation"),
                              ({"negative_score": [0.3, 0.4]}, [], "negative_score (not text)"),
                              ({"neg_2": ["a3", "a4"]}, ["neg_2"], None)]:
        _, fmt = detect_format(_ds(**rows, **extra))
        assert fmt.text_columns == ["query", "positive", "negative", *kept]
        assert fmt.notes == ([f"ignored columns: {note}"] if note else [])
    mapped = {"anchor": "query", "positive": "positive", "negative": "negative"}
    _, fmt = detect_format(_ds(**rows, neg_2=["a3", "a4"], anchor=["x", "y"]), mapped)
    assert fmt.text_columns == ["query", "positive", "negative"] and fmt.notes == ["ignored columns: neg_2, anchor"]


def test_eval_data_without_the_mapped_columns_is_read_by_its_own_names_or_named_in_the_error(capsys):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.formats import detect_format

    columns = {"anchor": "q", "positive": "a"}
    ds, fmt = detect_format(_ds(question=["q1", "q2"], answer=["a1", "a2"]), columns, held_out=True)
    assert fmt.kind == "pair" and ds.column_names == ["question", "answer"]
    assert "data: eval_data has no column 'q' (columns= maps anchor to it); its own columns question, answer are " \
           "read by their names" in capsys.readouterr().out
    with pytest.raises(UserError, match="columns= maps anchor to 'q', but eval_data has columns: foo, bar"):
        detect_format(_ds(foo=["x", "y"], bar=["z", "w"]), columns, held_out=True)
    with pytest.raises(UserError, match="columns= maps anchor to 'q', but the data has columns: question, answer"):
        detect_format(_ds(question=["q1", "q2"], answer=["a1", "a2"]), columns)


def test_held_out_soft_labels_that_drew_only_0_and_1_are_scores_like_the_training_rows():
    from contrastkit.plugins.st.formats import detect_format

    _, train = detect_format(_ds(sentence1=["a", "b", "c"], sentence2=["x", "y", "z"], label=[1.0, 0.5, 0.0]))
    held = _ds(sentence1=["d", "e"], sentence2=["u", "v"], label=[1.0, 0.0])
    assert train.kind == "score" and detect_format(held, held_out=True)[1].kind == "binary"
    ds, fmt = detect_format(held, held_out=train)
    assert fmt.kind == "score" and ds["label"] == [1.0, 0.0]


def test_mined_pairs_keep_the_notes_of_the_users_file(tmp_path, tiny_text_model, capsys):
    from types import SimpleNamespace

    from contrastkit.plugins.splits import split_train_eval
    from contrastkit.plugins.st.formats import detect_format
    from contrastkit.plugins.st.mining import mine_or_keep, mine_step
    from sentence_transformers import SentenceTransformer

    topics = ["router", "printer", "email", "vpn", "laptop", "phone", "camera", "keyboard", "mouse", "monitor"]
    lines = [f"{i},how do I reset the {t},hold the {t} button for {i} seconds" for i, t in enumerate(topics)]
    lines[5] = "5,reset the phone,reset the phone"  # the same text twice, on line 7 of the file
    data = _csv(tmp_path, "id,question,answer\n" + "\n".join(lines * 2) + "\n")
    train, _ = split_train_eval(data, seed=3)  # shuffled, as a run sees it
    train, fmt = detect_format(train, {"anchor": "question", "positive": "answer"})
    expected = ["ignored columns: id", (f"warning: 2 of {len(train)} rows have the same text in 'question' and "
                                        "'answer' (first: line 7); they teach nothing, remove them")]
    assert fmt.notes == expected
    model = SentenceTransformer(tiny_text_model, device="cpu")
    _, mined_fmt = mine_or_keep(model, train, fmt, {"anchor": "question", "positive": "answer"}, 1, True,
                                    "the retriever", print)
    assert mined_fmt.kind == "triplet" and mined_fmt.text_columns == ["anchor", "positive", "negative"]
    assert mined_fmt.notes == expected
    cfg = SimpleNamespace(mine_hard_negatives=True, loss="auto", columns={"anchor": "question", "positive": "answer"},
                          num_negatives=1)
    _, mined_fmt, columns = mine_step(cfg, model, train, fmt, None, print)
    assert columns is None and mined_fmt.notes == expected and mined_fmt.kind == "triplet"
