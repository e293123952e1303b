"""Reference data, pure transforms: customers.csv and products.csv -> bronze rows -> clean silver tables + quarantine.

Bronze keeps every CSV row as text with its file and line (line 1 is the header). Silver types the columns,
keeps the first row of each id and quarantines the rest with a reason. A value that cannot be typed but leaves
the row usable (a loyalty score of `n/a`) becomes null and is counted by a WARN check, so one bad score never
turns a real customer's purchases into "unknown customer".
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

CUSTOMERS_FILE = "customers.csv"
PRODUCTS_FILE = "products.csv"
CUSTOMER_COLUMNS = ("customer_id", "loyalty_score")
PRODUCT_COLUMNS = ("product_id", "product_description", "product_category")

PROVENANCE = {"source_file": pl.String, "line_number": pl.Int32}
SILVER_CUSTOMERS_SCHEMA = pl.Schema({"customer_id": pl.String, "loyalty_score": pl.Float64, "loyalty_score_raw": pl.String, **PROVENANCE})
SILVER_PRODUCTS_SCHEMA = pl.Schema(
    {"product_id": pl.String, "product_description": pl.String, "product_category": pl.String, **PROVENANCE}
)
REFERENCE_QUARANTINE_SCHEMA = pl.Schema({"source_file": pl.String, "line_number": pl.Int32, "reason": pl.String, "raw": pl.String})


class LandingFormatError(ValueError):
    """A landing file is not in its documented format; the message names the file and what is wrong."""


def read_reference_csv(landing_dir: Path, file_name: str, columns: tuple[str, ...]) -> pl.DataFrame:
    """Bronze rows of a reference CSV: its columns as text plus source_file and line_number; absent file -> empty."""
    schema = pl.Schema({**{column: pl.String for column in columns}, **PROVENANCE})
    path = landing_dir / file_name
    if not path.is_file() or path.stat().st_size == 0:
        return schema.to_frame()
    try:
        frame = pl.read_csv(path, infer_schema=False, row_index_name="line_number", row_index_offset=2)
    except pl.exceptions.PolarsError as error:
        raise LandingFormatError(f"{path}: not a readable CSV with header {','.join(columns)}: {error}") from error
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise LandingFormatError(f"{path}: missing column(s) {', '.join(missing)}; header is {','.join(frame.columns)}")
    return frame.select(*columns, pl.lit(file_name).alias("source_file"), "line_number").cast(dict(schema))


def raw_row(columns: tuple[str, ...]) -> pl.Expr:
    """The row's fields joined back into one CSV line (nulls as empty), for quarantine rows' `raw`."""
    return pl.concat_str([pl.col(column).fill_null("") for column in columns], separator=",")


def _first_per_id(frame: pl.DataFrame, id_column: str, columns: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows with an id, the first of each id kept; the others quarantined with a reason."""
    frame = frame.with_columns(pl.col(id_column).str.strip_chars()).sort("line_number")
    reason = (
        pl.when(pl.col(id_column).is_null() | (pl.col(id_column) == "")).then(pl.lit(f"missing_{id_column}"))
        .when(~pl.col(id_column).is_first_distinct()).then(pl.lit(f"duplicate_{id_column}"))
    )
    frame = frame.with_columns(reason.alias("reason"))
    rejected = frame.filter(pl.col("reason").is_not_null()).select(
        "source_file", "line_number", "reason", raw_row(columns).alias("raw")
    ).cast(dict(REFERENCE_QUARANTINE_SCHEMA))
    return frame.filter(pl.col("reason").is_null()).drop("reason"), rejected


def clean_customers(bronze: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """silver.customers (one row per customer, loyalty_score typed, null when not a number) and its quarantine."""
    kept, rejected = _first_per_id(bronze, "customer_id", CUSTOMER_COLUMNS)
    customers = kept.select(
        "customer_id",
        pl.col("loyalty_score").str.strip_chars().cast(pl.Float64, strict=False).alias("loyalty_score"),
        pl.col("loyalty_score").alias("loyalty_score_raw"),
        "source_file",
        "line_number",
    ).cast(dict(SILVER_CUSTOMERS_SCHEMA))
    return customers, rejected


def clean_products(bronze: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """silver.products (one row per product) and its quarantine."""
    kept, rejected = _first_per_id(bronze, "product_id", PRODUCT_COLUMNS)
    products = kept.with_columns(pl.col("product_description", "product_category").str.strip_chars())
    return products.select(SILVER_PRODUCTS_SCHEMA.names()).cast(dict(SILVER_PRODUCTS_SCHEMA)), rejected
