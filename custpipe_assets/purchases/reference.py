"""Reference data, pure transforms: customers.csv and products.csv -> bronze rows -> clean silver tables + quarantine.

Bronze is the core CSV reader's output: every data record with its file, line, text as landed and `read_issue`
(line 1 is the header). Silver types the columns, keeps the first row of each id and quarantines the rest (and the
unreadable records) with a reason code. A value that cannot be used but leaves the row usable (a loyalty score of
`n/a`, or `0.55` where the source scores 1..10) becomes null with its raw text and a `loyalty_score_issue`, and is
counted by a WARN check, so one bad score never turns a real customer's purchases into "unknown customer".

Source contract (read off the real Revolve export): `loyalty_score` is a whole number from 1 to 10.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from custpipe_assets.core.csv_reader import READ_ISSUES, csv_file_status, read_csv_export
from custpipe_assets.core.quarantine import QUARANTINE_SCHEMA, as_quarantine

CUSTOMERS_FILE = "customers.csv"
PRODUCTS_FILE = "products.csv"
CUSTOMER_COLUMNS = ("customer_id", "loyalty_score")
PRODUCT_COLUMNS = ("product_id", "product_description", "product_category")
LOYALTY_SCORE_RANGE = (1, 10)  # whole numbers, as the real export has them
LOYALTY_SCORE_ISSUES = ("missing", "not_a_number", "not_a_whole_number", "out_of_range")
REFERENCE_QUARANTINE_REASONS = (
    *READ_ISSUES,
    "missing_customer_id",
    "duplicate_customer_id",
    "missing_product_id",
    "duplicate_product_id",
)

PROVENANCE = {"source_file": pl.String, "line_number": pl.Int32}
SILVER_CUSTOMERS_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String,
        "loyalty_score": pl.Float64,
        "loyalty_score_raw": pl.String,
        "loyalty_score_issue": pl.String,
        **PROVENANCE,
    }
)
SILVER_PRODUCTS_SCHEMA = pl.Schema(
    {"product_id": pl.String, "product_description": pl.String, "product_category": pl.String, **PROVENANCE}
)
REFERENCE_QUARANTINE_SCHEMA = QUARANTINE_SCHEMA


def read_reference_csv(landing_dir: Path, file_name: str, columns: tuple[str, ...]) -> pl.DataFrame:
    """Bronze rows of a reference CSV (the core reader: any line ending, BOM, spaces; unreadable records kept
    with their `read_issue`, never raised); an absent file reads as empty and its source check warns."""
    read = read_csv_export(landing_dir / file_name, source_file=file_name, columns=columns)
    return read.rows.with_columns(pl.col("line_number").cast(pl.Int32))


def reference_file_status(landing_dir: Path, file_name: str, columns: tuple[str, ...]) -> pl.DataFrame:
    """Whether a reference file is readable (ok / empty_file / header_only / wrong_header), from its header."""
    return csv_file_status(landing_dir / file_name, source_file=file_name, columns=columns)


def raw_row(columns: tuple[str, ...]) -> pl.Expr:
    """The row's fields joined back into one CSV line (nulls as empty), where the landed text is not at hand."""
    return pl.concat_str([pl.col(column).fill_null("") for column in columns], separator=",")


def _first_per_id(frame: pl.DataFrame, id_column: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Readable rows with an id, the first of each id kept; the others (and unreadable records) quarantined."""
    frame = frame.with_columns(pl.col(id_column).str.strip_chars()).sort("line_number")
    readable = pl.col("read_issue").is_null()
    reason = (
        pl.when(~readable)
        .then(pl.col("read_issue"))
        .when(pl.col(id_column).is_null() | (pl.col(id_column) == ""))
        .then(pl.lit(f"missing_{id_column}"))
        .when(~pl.col(id_column).is_first_distinct())
        .then(pl.lit(f"duplicate_{id_column}"))
    )
    frame = frame.with_columns(reason.alias("reason"))
    rejected = as_quarantine(frame.filter(pl.col("reason").is_not_null()).with_columns(pl.col("raw_line").alias("raw")))
    return frame.filter(pl.col("reason").is_null()).drop("reason"), rejected


def loyalty_score_issue(raw: pl.Expr) -> pl.Expr:
    """Why a landed loyalty score is unusable (null when it is a whole number in LOYALTY_SCORE_RANGE)."""
    text = raw.str.strip_chars()
    number = text.cast(pl.Float64, strict=False)
    low, high = LOYALTY_SCORE_RANGE
    return (
        pl.when(text.is_null() | (text == ""))
        .then(pl.lit("missing"))
        .when(number.is_null() | ~number.is_finite())
        .then(pl.lit("not_a_number"))
        .when(number != number.round())
        .then(pl.lit("not_a_whole_number"))
        .when((number < low) | (number > high))
        .then(pl.lit("out_of_range"))
    )


def clean_customers(bronze: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """silver.customers (one row per customer, loyalty_score null unless a whole number 1..10) and its quarantine."""
    kept, rejected = _first_per_id(bronze, "customer_id")
    issue = loyalty_score_issue(pl.col("loyalty_score"))
    customers = kept.select(
        "customer_id",
        pl.when(issue.is_null())
        .then(pl.col("loyalty_score").str.strip_chars().cast(pl.Float64, strict=False))
        .alias("loyalty_score"),
        pl.col("loyalty_score").alias("loyalty_score_raw"),
        issue.alias("loyalty_score_issue"),
        "source_file",
        "line_number",
    ).cast(dict(SILVER_CUSTOMERS_SCHEMA))
    return customers, rejected


def clean_products(bronze: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """silver.products (one row per product) and its quarantine."""
    kept, rejected = _first_per_id(bronze, "product_id")
    products = kept.with_columns(pl.col("product_description", "product_category").str.strip_chars())
    return products.select(SILVER_PRODUCTS_SCHEMA.names()).cast(dict(SILVER_PRODUCTS_SCHEMA)), rejected
