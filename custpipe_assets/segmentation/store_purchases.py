"""Store purchases, pure transforms: one week of raw purchase-history records -> matched purchases + quarantine.

What belongs here: typing the records the REST client returns as served (`purchases_client.PURCHASES_SCHEMA`),
rejecting what cannot be trusted, and matching the rest to customers by their E.164 mobile. Fetching belongs to
`purchases_client`; no Dagster here.

Every raw record ends up in exactly one of the two outputs (rows in = matched + quarantined), under the first
rule it breaks, in this order: `invalid_date` (none of STORE_DATE_FORMATS), `purchase_outside_week`,
`missing_amount`, `invalid_amount` (NaN or infinite), `non_positive_amount`, `invalid_mobile` (phonenumbers, default
region GB), `duplicate` (the same mobile, date, amount and store text as an earlier record of the week; the
first is kept), `unknown_mobile` (no customer has that mobile), `ambiguous_mobile` (several customers do).
Dates carry no zone or a `Z`: all are read as UTC, like the weekly partitions.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

import polars as pl

from custpipe_assets.core.quarantine import WEEKLY_QUARANTINE_SCHEMA, as_quarantine
from custpipe_assets.segmentation.profiles import DEFAULT_MOBILE_REGION, normalize_mobiles

RAW_COLUMNS = ("mobile", "date", "amount", "store", "page")
STORE_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%d/%m/%Y")
STORE_QUARANTINE_REASONS = (
    "invalid_date",
    "purchase_outside_week",
    "missing_amount",
    "invalid_amount",
    "non_positive_amount",
    "invalid_mobile",
    "duplicate",
    "unknown_mobile",
    "ambiguous_mobile",
)

MATCHED_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date,
        "purchased_at": pl.Datetime("us"),
        "customer_id": pl.String,
        "mobile_e164": pl.String,
        "amount": pl.Float64,
        "store": pl.String,
        "page": pl.Int64,
        "record_number": pl.Int64,  # 1-based position in the week's fetch, to trace a row back to what was served
    }
)
API_SOURCE = "api:/purchases"  # the quarantine's source_file: nothing landed as a file
STORE_QUARANTINE_SCHEMA = WEEKLY_QUARANTINE_SCHEMA  # position `page P record N`, raw the record as served (JSON)


def clean_store_purchases(
    raw: pl.DataFrame, week_start: date, customers_mobiles: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Matched store purchases of the week and the quarantined records, by the rules of the module docstring.

    `customers_mobiles` has `customer_id, mobile_e164` (silver profiles); customers without a mobile are ignored.
    """
    missing = [column for column in RAW_COLUMNS if column not in raw.columns]
    if missing:
        raise ValueError(f"raw store purchases lack column(s) {', '.join(missing)}")
    if week_start.weekday() != 0:
        raise ValueError(f"week_start must be a Monday, got {week_start.isoformat()}")
    week_begin = datetime.combine(week_start, time())
    week_end = week_begin + timedelta(days=7)
    owners = (
        customers_mobiles.select("customer_id", "mobile_e164")
        .filter(pl.col("mobile_e164").is_not_null())
        .unique()
        .group_by("mobile_e164")
        .agg(pl.col("customer_id").min(), pl.len().alias("owners"))
    )
    purchased_at = pl.coalesce(
        pl.col("date").str.strptime(pl.Datetime("us"), form, strict=False) for form in STORE_DATE_FORMATS
    )
    records = (
        raw.select(
            pl.col("mobile").cast(pl.String),
            pl.col("date").cast(pl.String).str.strip_chars(),
            pl.col("amount").cast(pl.Float64),
            pl.col("store").cast(pl.String),
            pl.col("page").cast(pl.Int64),
        )
        .with_row_index("record_number", offset=1)
        .with_columns(
            pl.col("record_number").cast(pl.Int64),
            purchased_at.alias("purchased_at"),
            normalize_mobiles(raw.get_column("mobile").cast(pl.String), DEFAULT_MOBILE_REGION).alias("mobile_e164"),
        )
        .join(owners, on="mobile_e164", how="left", maintain_order="left")
    )
    record_reason = (
        pl.when(pl.col("purchased_at").is_null())
        .then(pl.lit("invalid_date"))
        .when(~pl.col("purchased_at").is_between(week_begin, week_end, closed="left"))
        .then(pl.lit("purchase_outside_week"))
        .when(pl.col("amount").is_null())
        .then(pl.lit("missing_amount"))
        .when(~pl.col("amount").is_finite())
        .then(pl.lit("invalid_amount"))
        .when(pl.col("amount") <= 0)
        .then(pl.lit("non_positive_amount"))
        .when(pl.col("mobile_e164").is_null())
        .then(pl.lit("invalid_mobile"))
    )
    records = records.with_columns(record_reason.alias("reason"))
    served_as = pl.struct("mobile", "date", "amount", "store")
    is_repeat = pl.col("reason").is_null() & ~served_as.is_first_distinct().over(pl.col("reason").is_null())
    match_reason = (
        pl.when(pl.col("reason").is_not_null())
        .then(pl.col("reason"))
        .when(is_repeat)
        .then(pl.lit("duplicate"))
        .when(pl.col("owners").is_null())
        .then(pl.lit("unknown_mobile"))
        .when(pl.col("owners") > 1)
        .then(pl.lit("ambiguous_mobile"))
    )
    records = records.with_columns(match_reason.alias("reason"), pl.lit(week_start, pl.Date).alias("week_start"))
    matched = records.filter(pl.col("reason").is_null()).select(MATCHED_SCHEMA.names()).cast(dict(MATCHED_SCHEMA))
    rejected = records.filter(pl.col("reason").is_not_null())
    quarantine = as_quarantine(
        rejected.with_columns(
            pl.lit(API_SOURCE).alias("source_file"),
            pl.format("page {} record {}", "page", "record_number").alias("position"),
            pl.struct("mobile", "date", "amount", "store").struct.json_encode().alias("raw"),
        ),
        weekly=True,
    )
    return matched, quarantine


def match_rate(matched: pl.DataFrame, quarantine: pl.DataFrame) -> float:
    """Share of matchable records that found their customer: matched / (matched + unknown_mobile).

    NaN when no record got as far as matching, so an empty week never reads as a perfect (or a failed) match.
    """
    unknown = quarantine.filter(pl.col("reason") == "unknown_mobile").height
    attempted = matched.height + unknown
    return matched.height / attempted if attempted else math.nan
