"""Column schemas for the UI at definition time: every warehouse table shows its columns, their types and what each
means before it is ever materialized (`dagster/column_schema` on the asset).

Names and types come from the transform's `pl.Schema` (the same constant its Pandera check is built from); the
descriptions from `SHARED_DESCRIPTIONS` for the columns that mean the same in every table (lineage, the quarantine
contract, the weekly partition), else from the table's own descriptions, which may also say more about a shared
column where it means more there. Each domain maps its asset keys to `table_schema(...)`s, and the domain's
definitions attach them (`core.conventions.with_column_schemas`). A column nobody described gets no description:
`custpipe_assets_tests/core/test_columns.py` names it.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import polars as pl

from custpipe_assets.core.warehouse import PARTITION_COLUMN

COLUMN_SCHEMA = "dagster/column_schema"

SHARED_DESCRIPTIONS: dict[str, str] = {
    PARTITION_COLUMN: "Monday (UTC) of the week the row belongs to: the table's weekly partition.",
    "source_file": "The landed file the row comes from, relative to the landing folder (for a source that lands no "
    "file, its name, e.g. `api:/purchases`).",
    "line_number": "Physical line of the record in its file (the header is line 1); null when the record is not a "
    "line of a text file.",
    "position": "Where inside the line or file the record is (a basket index, `batch 3 event 7`, `page 2 record 14`); "
    "null when the line is the record.",
    "reason": "Why the record was set aside: a code from the domain's enumeration of reasons.",
    "detail": "For the reader: the offending value, the rule broken, or the line a duplicate repeats; null when the "
    "reason says it all.",
    "raw": "The record as landed (the line's text, or the record as served, in JSON).",
    "raw_line": "The line as landed, line ends removed.",
    "read_issue": "Why the line could not be split into fields (a core CSV reader issue, e.g. `too_many_fields`); "
    "null when it was read.",
    "customer_id": "The customer's id, as in customers.csv.",
    "product_id": "The product's id, as in products.csv.",
}


def weekly(schema: pl.Schema | Mapping[str, pl.DataType]) -> pl.Schema:
    """A weekly table's columns as the warehouse stores them: the partition column first, unless the frame has it."""
    schema = pl.Schema(schema)
    return schema if PARTITION_COLUMN in schema else pl.Schema({PARTITION_COLUMN: pl.Date(), **schema})


def table_schema(
    schema: pl.Schema | Mapping[str, pl.DataType], descriptions: Mapping[str, str] | None = None
) -> dg.TableSchema:
    """The UI's column schema of a table: every column of `schema` with its Polars type (written as the
    materialization metadata writes it, `core.metadata.column_schema`) and its description: the table's own,
    else the shared one."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, str(dtype), description=descriptions.get(name) or SHARED_DESCRIPTIONS.get(name))
            for name, dtype in pl.Schema(schema).items()
        ]
    )


def undescribed(schema: dg.TableSchema) -> list[str]:
    """The columns of `schema` without a description."""
    return [column.name for column in schema.columns if not (column.description or "").strip()]
