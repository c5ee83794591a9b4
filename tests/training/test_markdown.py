"""The one Markdown-table writer: header, separator, one line per row, the cell formatter."""

from __future__ import annotations

from typing import Any

from training.reporting.markdown import markdown_table


def test_header_separator_and_rows() -> None:
    table = markdown_table(("Check", "Result"), [("AUPRC", 0.5), ("rows", 3)])
    assert table.splitlines() == [
        "| Check | Result |",
        "|---|---|",
        "| AUPRC | 0.5 |",
        "| rows | 3 |",
    ]
    assert not table.endswith("\n")


def test_a_header_alone_is_a_table_without_rows() -> None:
    assert markdown_table(("a", "b", "c"), []) == "| a | b | c |\n|---|---|---|"


def test_rows_may_be_a_generator() -> None:
    table = markdown_table(("n",), ((i,) for i in range(2)))
    assert table.splitlines()[2:] == ["| 0 |", "| 1 |"]


def test_cell_formats_every_value_not_the_header() -> None:
    table = markdown_table(("x", "y"), [(0.123456, 2.0)], cell=lambda v: f"{v:.2f}")
    assert table.splitlines() == ["| x | y |", "|---|---|", "| 0.12 | 2.00 |"]


def test_a_custom_cell_can_escape_a_pipe() -> None:
    def escaped(value: Any) -> str:
        return str(value).replace("|", "\\|")

    table = markdown_table(("Feature", "mean \\|SHAP\\|"), [("a|b", 1)], cell=escaped)
    assert table.splitlines()[2] == "| a\\|b | 1 |"
    # Without it the pipe splits the cell, as GitHub would render it.
    assert markdown_table(("f",), [("a|b",)]).splitlines()[2] == "| a|b |"
