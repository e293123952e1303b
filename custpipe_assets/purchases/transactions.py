"""Online transactions, pure transforms: landing JSON Lines -> bronze rows -> silver lines + quarantine -> weekly counts.

No Dagster here. The reconciliation unit is the *record*: one basket item, or the whole line when it has no usable
basket (malformed JSON, blank line, missing or empty basket). Every bronze record ends up either as a silver line or
as a quarantine row with a reason, so rows in = rows out + rows quarantined holds by construction and is checked
independently in SQL.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
import polars as pl

from custpipe_assets.core.quarantine import WEEKLY_QUARANTINE_SCHEMA, as_quarantine

TRANSACTIONS_DIR = "transactions"
TRANSACTIONS_FILE = "transactions.json"

BASKET_ITEM = pl.Struct({"product_id": pl.String, "price": pl.String})
BRONZE_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date,
        "day": pl.Date,
        "source_file": pl.String,
        "line_number": pl.Int32,
        "raw_line": pl.String,
        "parse_error": pl.String,
        "customer_id": pl.String,
        "date_of_purchase": pl.String,
        "basket": pl.List(BASKET_ITEM),
    }
)
LINES_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date,
        "purchased_at": pl.Datetime("us"),
        "customer_id": pl.String,
        "product_id": pl.String,
        "price": pl.Float64,
        "source_file": pl.String,
        "line_number": pl.Int32,
        "basket_position": pl.Int32,
    }
)
# Why a record is quarantined, in the order the rules apply (first broken wins): line rules, then per basket item.
QUARANTINE_REASONS = (
    "blank_line",
    "malformed_json",
    "not_a_json_object",
    "missing_customer_id",
    "missing_basket",
    "empty_basket",
    "invalid_date_of_purchase",
    "purchase_outside_week",
    "duplicate_transaction",
    "unknown_customer",
    "missing_product_id",
    "unknown_product",
    "missing_price",
    "invalid_price",
    "non_positive_price",
)
QUARANTINE_SCHEMA = WEEKLY_QUARANTINE_SCHEMA  # position: `basket[i]` for an item, null for the whole line
COUNTS_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date,
        "customer_id": pl.String,
        "loyalty_score": pl.Float64,
        "product_id": pl.String,
        "product_category": pl.String,
        "purchase_count": pl.Int64,
    }
)

# Prices stay JSON text in bronze ("506", "\"abc\"", null) so silver can tell a missing price from a wrong type.
_LINE_JSON_TYPE = (
    '{"customer_id":"VARCHAR","basket":[{"product_id":"VARCHAR","price":"JSON"}],"date_of_purchase":"VARCHAR"}'
)
_PURCHASE_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def day_folder(landing_dir: Path, day: date) -> Path:
    return landing_dir / TRANSACTIONS_DIR / f"d={day.isoformat()}"


def week_days(week: date) -> list[date]:
    return [week + timedelta(days=offset) for offset in range(7)]


def missing_transaction_days(landing_dir: Path, weeks: list[date]) -> list[str]:
    """Day files of these weeks that are absent (no folder, or a folder without its file)."""
    return [
        str((day_folder(landing_dir, day) / TRANSACTIONS_FILE).relative_to(landing_dir))
        for week in weeks
        for day in week_days(week)
        if not (day_folder(landing_dir, day) / TRANSACTIONS_FILE).is_file()
    ]


def read_transactions_week(landing_dir: Path, week: date) -> pl.DataFrame:
    """Bronze rows for one week: every line of the week's seven day files, parsed where it parses.

    Lines are read by Polars (keeping order, so line numbers are exact; `\\r\\n` endings are handled) and the
    whole week is parsed in one call to DuckDB's JSON functions, several times faster than Polars' on nested JSON.
    A line that is blank, not JSON or not an object keeps its raw text and a `parse_error`; nothing is dropped.
    A line that parsed keeps its file and line but not its text (`raw_line` null): storing every line's text cost
    over half of bronze's size (measured at 3M lines: 497 of 863 blocks) for what file and line already locate.
    """
    days = []
    for day in week_days(week):
        path = day_folder(landing_dir, day) / TRANSACTIONS_FILE
        if path.is_file() and path.stat().st_size > 0:
            lines = pl.read_lines(path, name="raw_line", row_index_name="line_number", row_index_offset=1)
            days.append(lines.with_columns(day=pl.lit(day), source_file=pl.lit(str(path.relative_to(landing_dir)))))
    if not days:
        return BRONZE_SCHEMA.to_frame()
    # a UTF-8 byte-order mark is not JSON whitespace: strip it rather than reject the first line
    lines = pl.concat(days).with_columns(pl.col("raw_line").str.strip_chars_start("\ufeff"))
    # One JSON parse per line; only lines that fail it are parsed again to say why (they are rare).
    parsed = duckdb.sql(
        f"""
        with attempted as (select raw_line, try(from_json(raw_line, '{_LINE_JSON_TYPE}')) as parsed from lines)
        select case when parsed is null
                      or (parsed.customer_id is null and parsed.basket is null and parsed.date_of_purchase is null)
                    then case when trim(raw_line) = '' then 'blank_line'
                              when not json_valid(raw_line) then 'malformed_json'
                              when json_type(raw_line) <> 'OBJECT' then 'not_a_json_object' end
               end as parse_error,
               parsed
        from attempted
        """
    ).pl()  # DuckDB keeps the row order of a plain projection, so the frames line up
    return (
        pl.concat([lines, parsed], how="horizontal")
        .select(
            pl.lit(week, dtype=pl.Date).alias("week_start"),
            "day",
            "source_file",
            "line_number",
            pl.when(pl.col("parse_error").is_not_null()).then(pl.col("raw_line")).alias("raw_line"),
            "parse_error",
            pl.col("parsed").struct.field("customer_id"),
            pl.col("parsed").struct.field("date_of_purchase"),
            pl.col("parsed").struct.field("basket").cast(pl.List(BASKET_ITEM)),
        )
        .cast(dict(BRONZE_SCHEMA))
    )


def bronze_record_count(bronze: pl.DataFrame) -> int:
    """Records a bronze week holds: one per basket item, or one for a line without a usable basket."""
    return int(bronze.select(pl.col("basket").list.len().fill_null(0).clip(lower_bound=1).sum()).item() or 0)


def split_transactions(
    bronze: pl.DataFrame, *, week: date, customer_ids: pl.Series, product_ids: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Silver lines and quarantine rows for one week of bronze transactions.

    A record is rejected for the first rule it breaks, checked line-wide first (parse error, missing customer,
    missing/empty basket, bad or out-of-week date, duplicate of an earlier transaction), then per basket item
    (unknown customer, missing/unknown product, missing/invalid/non-positive price). A duplicate is the same
    customer, purchase time and basket as an earlier line (by file and line) of the week: the first one is kept.
    """
    week_end = datetime.combine(week + timedelta(days=7), time())
    purchased_at = pl.coalesce(
        [
            pl.col("date_of_purchase").str.strptime(pl.Datetime("us"), fmt, strict=False)
            for fmt in _PURCHASE_TIME_FORMATS
        ]
    )
    # file order decides which copy of a duplicate is kept; within a week the day names the file
    lines = bronze.sort("day", "line_number").with_columns(purchased_at.alias("purchased_at"))
    line_reason = (
        pl.when(pl.col("parse_error").is_not_null())
        .then(pl.col("parse_error"))
        .when(pl.col("customer_id").is_null() | (pl.col("customer_id").str.strip_chars() == ""))
        .then(pl.lit("missing_customer_id"))
        .when(pl.col("basket").is_null())
        .then(pl.lit("missing_basket"))
        .when(pl.col("basket").list.len() == 0)
        .then(pl.lit("empty_basket"))
        .when(pl.col("purchased_at").is_null())
        .then(pl.lit("invalid_date_of_purchase"))
        .when((pl.col("purchased_at") < datetime.combine(week, time())) | (pl.col("purchased_at") >= week_end))
        .then(pl.lit("purchase_outside_week"))
    )
    lines = lines.with_columns(line_reason.alias("reason"))
    transaction_key = pl.struct("customer_id", "date_of_purchase", "basket")
    is_duplicate = pl.col("reason").is_null() & ~transaction_key.is_first_distinct().over(pl.col("reason").is_null())
    lines = lines.with_columns(
        pl.when(is_duplicate).then(pl.lit("duplicate_transaction")).otherwise("reason").alias("reason")
    )

    records = (
        lines.with_columns(
            pl.when(pl.col("basket").list.len() > 0)
            .then(pl.col("basket"))
            .otherwise(pl.lit([None], dtype=pl.List(BASKET_ITEM))),
            pl.when(pl.col("basket").list.len() > 0)
            .then(pl.int_ranges(pl.col("basket").list.len(), dtype=pl.Int32))
            .otherwise(pl.lit([None], dtype=pl.List(pl.Int32)))
            .alias("basket_position"),
        )
        .explode("basket", "basket_position")
        .with_columns(
            pl.col("basket").struct.field("product_id"),
            pl.col("basket").struct.field("price").alias("price_json"),
        )
        .with_columns(pl.col("price_json").cast(pl.Float64, strict=False).alias("price"))
    )
    item_reason = (
        pl.when(pl.col("reason").is_not_null())
        .then(pl.col("reason"))
        .when(~pl.col("customer_id").is_in(customer_ids.implode()))
        .then(pl.lit("unknown_customer"))
        .when(pl.col("product_id").is_null())
        .then(pl.lit("missing_product_id"))
        .when(~pl.col("product_id").is_in(product_ids.implode()))
        .then(pl.lit("unknown_product"))
        .when(pl.col("price_json").is_null() | (pl.col("price_json") == "null"))
        .then(pl.lit("missing_price"))
        .when(pl.col("price").is_null() | ~pl.col("price").is_finite())
        .then(pl.lit("invalid_price"))
        .when(pl.col("price") <= 0)
        .then(pl.lit("non_positive_price"))
    )
    records = records.with_columns(item_reason.alias("reason"), pl.lit(week, dtype=pl.Date).alias("week_start"))
    accepted = records.filter(pl.col("reason").is_null()).select(LINES_SCHEMA.names()).cast(dict(LINES_SCHEMA))
    quarantined = as_quarantine(
        records.filter(pl.col("reason").is_not_null()).with_columns(
            pl.format("basket[{}]", "basket_position").alias("position"),
            # the landed text of a line that did not parse, else the record as parsed (file and line locate it)
            pl.coalesce("raw_line", pl.struct("customer_id", "basket", "date_of_purchase").struct.json_encode()).alias(
                "raw"
            ),
        ),
        weekly=True,
    )
    return accepted, quarantined


def weekly_purchase_counts(lines: pl.DataFrame, customers: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """gold.customer_product_purchases: one row per week, customer and product bought; count = basket lines."""
    counts = lines.group_by("week_start", "customer_id", "product_id").agg(
        pl.len().cast(pl.Int64).alias("purchase_count")
    )
    return (
        counts.join(customers.select("customer_id", "loyalty_score"), on="customer_id", how="left")
        .join(products.select("product_id", "product_category"), on="product_id", how="left")
        .select(COUNTS_SCHEMA.names())
        .cast(dict(COUNTS_SCHEMA))
    )
