"""How the demo shows a result's rows: nulls as ``null`` and last, numbers in their own order."""

from __future__ import annotations

from demo.__main__ import cell, row_order


def test_rows_are_in_the_order_of_their_values_with_nulls_last():
    rows = [{"a": 10, "b": "x"}, {"a": 9, "b": None}, {"a": None, "b": "y"}, {"a": 9, "b": "w"}]

    assert sorted(rows, key=row_order) == [
        {"a": 9, "b": "w"}, {"a": 9, "b": None}, {"a": 10, "b": "x"}, {"a": None, "b": "y"}
    ]  # fmt: skip


def test_a_null_reads_null_and_a_float_has_one_decimal():
    shown = [cell(value) for value in (None, 1234.56, 7_000_000, "Budget Bytes")]
    assert shown == ["null", "1,234.6", "7000000", "Budget Bytes"]
