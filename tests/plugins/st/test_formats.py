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
    assert used_columns(ds) == ["question", "answer"]
    assert used_columns(ds, {"anchor": "notes"}) == ["question", "answer", "notes"]


def test_header_names_with_spaces_around_them_keep_their_role():
    from contrastkit.plugins.st.formats import detect_format

    _, fmt = detect_format(_ds(**{" anchor": ["q1", "q2"], " positive ": ["a1", "a2"]}))
    assert fmt.kind == "pair" and fmt.text_columns == [" anchor", " positive "]
