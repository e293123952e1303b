"""Metadata every asset attaches so a person can judge a table from the UI: row count, column schema, a preview."""

from __future__ import annotations

import dagster as dg
import polars as pl

PREVIEW_ROWS = 10


def markdown_table(frame: pl.DataFrame, *, max_cell: int = 80) -> str:
    """A small frame as a Markdown table (cells cut to `max_cell` characters so a raw JSON line stays readable)."""
    if frame.width == 0 or frame.height == 0:
        return ""

    def cell(value: object) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")
        return text if len(text) <= max_cell else text[: max_cell - 1] + "…"

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    body = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *body])


def column_schema(frame: pl.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()])


def table_metadata(frame: pl.DataFrame, *, preview: bool = True) -> dict[str, object]:
    """Row count, column schema and (optionally) a Markdown preview of the first rows."""
    metadata: dict[str, object] = {
        "dagster/row_count": frame.height,
        "dagster/column_schema": column_schema(frame),
    }
    if preview:
        metadata["preview"] = dg.MetadataValue.md(markdown_table(frame.head(PREVIEW_ROWS)) or "(no rows)")
    return metadata


def counts_by(frame: pl.DataFrame, column: str) -> dict[str, int]:
    """`{value: rows}` for a small categorical column (e.g. quarantine reasons), for plottable metadata."""
    if frame.is_empty():
        return {}
    counted = frame.group_by(column).len().sort(column)
    return {str(key): int(count) for key, count in counted.iter_rows()}
