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
