"""Bronze for the order exports (`amaro/orders.csv`, `amaro/order_items.csv`): the shared core CSV reader gives
every record as text with its file and line; here the columns are typed and what cannot be read or typed is
rejected in the core quarantine contract with a code from ORDER_REJECT_REASONS. No Dagster, no warehouse: paths in,
frames out.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from custpipe_assets.core.csv_reader import read_csv_export
from custpipe_assets.core.quarantine import as_quarantine
from custpipe_assets.product_views.schemas import (
    LOCAL_DATETIME,
    ORDER_COLUMN_TYPES,
    ORDER_ITEM_COLUMN_TYPES,
    ORDER_ITEMS_BRONZE_SCHEMA,
    ORDER_REJECTS_SCHEMA,
    ORDERS_BRONZE_SCHEMA,
    ParseResult,
    file_quarantine,
    invalid_value_reason,
)

ORDERS_FILE = "amaro/orders.csv"
ORDER_ITEMS_FILE = "amaro/order_items.csv"


def parse_orders_csv(path: Path, *, source_file: str | None = None) -> ParseResult:
    """Bronze orders: typed columns named as landed; an absent file gives an empty frame and a file-level row."""
    return _parse_csv(Path(path), source_file, ORDER_COLUMN_TYPES, ORDERS_BRONZE_SCHEMA)


def parse_order_items_csv(path: Path, *, source_file: str | None = None) -> ParseResult:
    """Bronze order items: typed columns named as landed; an absent file gives an empty frame and a file-level row."""
    return _parse_csv(Path(path), source_file, ORDER_ITEM_COLUMN_TYPES, ORDER_ITEMS_BRONZE_SCHEMA)


def _parse_csv(
    path: Path, source_file: str | None, column_types: dict[str, pl.DataType], schema: pl.Schema
) -> ParseResult:
    """Records the reader could not read are rejected under their `read_issue`; a record with values that are not
    of their column's type under `invalid_<column>` of its first such column (every such value in `detail`). A file
    that is not `ok` (absent, empty, header only, wrong header) also gets one row without a line saying so, for the
    `files_readable` check. `source_file` names the file in every row (the asset passes it relative to the landing
    root; by default the path as given)."""
    source = source_file or str(path)
    read = read_csv_export(path, source_file=source, columns=list(column_types), separator=",")
    report = read.file.row(0, named=True)
    file_rows = [ORDER_REJECTS_SCHEMA.to_frame()]
    if report["status"] != "ok":
        file_rows.append(file_quarantine(source, report["header"] or "", report["status"], report["detail"]))
    records = read.rows.with_columns(pl.col(column).replace("", None) for column in column_types)
    unread = records.filter(pl.col("read_issue").is_not_null()).with_columns(
        pl.col("read_issue").alias("reason"), pl.lit(None, pl.String).alias("detail")
    )
    typed = records.filter(pl.col("read_issue").is_null()).with_columns(
        _typed(pl.col(column), dtype).alias(f"__typed_{column}") for column, dtype in column_types.items()
    )
    mistyped_columns = [
        (column, pl.col(column).is_not_null() & pl.col(f"__typed_{column}").is_null(), dtype)
        for column, dtype in column_types.items()
    ]
    first_failure = pl.coalesce(
        pl.when(failed).then(pl.lit(invalid_value_reason(column))) for column, failed, _ in mistyped_columns
    )
    failures = pl.concat_str(
        [
            pl.when(failed).then(
                pl.format("{} '{}' is not {}", pl.lit(column), pl.col(column), pl.lit(_type_description(dtype)))
            )
            for column, failed, dtype in mistyped_columns
        ],
        separator="; ",
        ignore_nulls=True,
    )
    typed = typed.with_columns(first_failure.alias("reason"), failures.alias("detail"))
    rows = typed.filter(pl.col("reason").is_null()).select(
        "source_file", "line_number", *(pl.col(f"__typed_{column}").alias(column) for column in column_types)
    )
    mistyped = typed.filter(pl.col("reason").is_not_null())
    records_rejected = pl.concat(
        [as_quarantine(frame.rename({"raw_line": "raw"})) for frame in (unread, mistyped)]
    ).sort("line_number")
    quarantine = pl.concat([*file_rows, records_rejected])
    return ParseResult(rows.cast(dict(schema)), quarantine)


def _typed(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == LOCAL_DATETIME:
        return text.str.strptime(LOCAL_DATETIME, "%Y-%m-%d %H:%M:%S", strict=False)
    return text.cast(dtype, strict=False)


def _type_description(dtype: pl.DataType) -> str:
    if dtype == LOCAL_DATETIME:
        return "a YYYY-MM-DD HH:MM:SS timestamp"
    if dtype == pl.Int64():
        return "an integer"
    if dtype == pl.Float64():
        return "a number"
    return str(dtype)
