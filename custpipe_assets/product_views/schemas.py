"""What every layer of the product-views domain shares: constants, frame schemas, result tuples and the two small
expressions (platform names, local time) used by bronze, silver and gold alike.

Time: `order_date` is local time GMT-03:00 (a fixed offset, no daylight saving) and event timestamps are UTC
milliseconds. Silver keeps both `event_time_utc` (tz-aware UTC) and `event_time_local` (naive GMT-03:00).

Platforms: `iOS`, `Android`, `MobileWeb` (the view folders). Orders from any other device (desktop, empty, ...)
are kept and labelled `Other`; they have no views, so they never get a click-through rate.

Quarantine frames share QUARANTINE_SCHEMA (`source_file, line_number_or_position, raw, reason`). Positions are
`line N` for CSV (1-based, the header is line 1), `batch B, event E` for JSON (0-based array indexes) and `file`
when the whole file is unreadable. Source files are named relative to the landing root (`amaro/orders.csv`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

import polars as pl

LOCAL_UTC_OFFSET = timedelta(hours=-3)
VIEW_PLATFORMS = ("Android", "MobileWeb", "iOS")
OTHER_PLATFORM = "Other"
# Device and folder names, lower-cased with everything but letters and digits removed, to canonical platforms.
PLATFORM_ALIASES = {
    "ios": "iOS",
    "iphone": "iOS",
    "ipad": "iOS",
    "android": "Android",
    "mobileweb": "MobileWeb",
    "mweb": "MobileWeb",
    "msite": "MobileWeb",
}
# An order is a purchase once its payment is approved, whatever happened to the parcel afterwards.
# pending_payment is not (yet) one: it turns into cancelled more often than not, and counting it would rewrite
# history when it does. cancelled and refunded orders are not purchases.
PURCHASE_STATUSES = frozenset({"payment_approved", "invoiced", "shipped", "delivered"})
NON_PURCHASE_STATUSES = frozenset({"pending_payment", "cancelled", "refunded"})
STATUS_ALIASES = {"canceled": "cancelled"}
PRODUCT_CODE_PATTERN = r"^[0-9]+_[0-9]+$"

LOCAL_DATETIME = pl.Datetime("us")
UTC_DATETIME = pl.Datetime("us", "UTC")
ORDER_COLUMN_TYPES: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "user_id": pl.Int64(),
    "order_date": LOCAL_DATETIME,
    "order_subtotal": pl.Float64(),
    "order_discount": pl.Float64(),
    "order_total": pl.Float64(),
    "order_status": pl.String(),
    "payment_type": pl.String(),
    "shipping_cost": pl.Float64(),
    "shipping_service": pl.String(),
    "address_city": pl.String(),
    "address_state": pl.String(),
    "utm_source_medium": pl.String(),
    "device_type": pl.String(),
}
ORDER_ITEM_COLUMN_TYPES: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "order_id": pl.Int64(),
    "sku": pl.String(),
    "quantity": pl.Int64(),
    "code_color": pl.String(),
}
_LINEAGE = {"source_file": pl.String(), "line_number": pl.Int64()}
ORDERS_BRONZE_SCHEMA = pl.Schema({**_LINEAGE, **ORDER_COLUMN_TYPES})
ORDER_ITEMS_BRONZE_SCHEMA = pl.Schema({**_LINEAGE, **ORDER_ITEM_COLUMN_TYPES})
VIEW_LINEAGE = ("week_start", "source_file", "platform_folder", "batch_index", "event_index")
VIEW_EVENTS_BRONZE_SCHEMA = pl.Schema(
    {
        # the UTC week of the event's own time; an event without a usable time takes its file's home week
        "week_start": pl.Date(),
        "source_file": pl.String(),
        "platform_folder": pl.String(),
        "batch_index": pl.Int64(),
        "event_index": pl.Int64(),
        "mpid": pl.String(),
        "batch_id": pl.String(),
        "message_id": pl.String(),
        "event_type": pl.String(),
        "custom_event_type": pl.String(),
        "event_name": pl.String(),
        "event_id": pl.String(),
        "session_id": pl.String(),
        "timestamp_unixtime_ms": pl.Float64(),
        "code_color": pl.String(),
        # md5 of the event object as landed (minified JSON): two events are the same event when this and mpid agree
        "event_hash": pl.String(),
    }
)
QUARANTINE_SCHEMA = pl.Schema(
    {"source_file": pl.String(), "line_number_or_position": pl.String(), "raw": pl.String(), "reason": pl.String()}
)
VIEW_REJECTS_SCHEMA = pl.Schema({"week_start": pl.Date(), **QUARANTINE_SCHEMA})
# One row per landed file under amaro/product_views: what it holds and the weeks its records belong to.
VIEW_FILE_STATUSES = (
    "ok",
    "empty_file",
    "not_an_array",
    "unreadable_json",
    "no_events",
    "no_event_times",
    "not_json",
    "outside_platform_folder",
)
VIEW_FILES_SCHEMA = pl.Schema(
    {
        "source_file": pl.String(),
        "platform_folder": pl.String(),
        "bytes": pl.Int64(),
        "status": pl.String(),
        "detail": pl.String(),
        "records": pl.Int64(),
        "home_week": pl.Date(),
        "first_week": pl.Date(),
        "last_week": pl.Date(),
        "weeks": pl.String(),
    }
)
PURCHASES_SILVER_SCHEMA = pl.Schema(
    {
        "order_id": pl.Int64(),
        "order_item_id": pl.Int64(),
        "user_id": pl.Int64(),
        "product": pl.String(),
        "sku": pl.String(),
        "quantity": pl.Int64(),
        "order_status": pl.String(),
        "device_type": pl.String(),
        "platform": pl.String(),
        "event_time_local": LOCAL_DATETIME,
        "event_time_utc": UTC_DATETIME,
    }
)
PRODUCT_VIEWS_SILVER_SCHEMA = pl.Schema(
    {
        "platform": pl.String(),
        "product": pl.String(),
        "event_time_local": LOCAL_DATETIME,
        "event_time_utc": UTC_DATETIME,
        "event_id": pl.String(),
        "session_id": pl.String(),
        "mpid": pl.String(),
        "event_hash": pl.String(),
        "source_file": pl.String(),
        "batch_index": pl.Int64(),
        "event_index": pl.Int64(),
    }
)
IGNORED_EVENTS_SCHEMA = pl.Schema(
    {"platform": pl.String(), "event_type": pl.String(), "event_name": pl.String(), "events": pl.Int64()}
)
ORDER_STATUS_COUNTS_SCHEMA = pl.Schema(
    {"order_status": pl.String(), "counts_as_purchase": pl.Boolean(), "orders": pl.Int64(), "items": pl.Int64()}
)
GOLD_CTR_MINUTE_SCHEMA = pl.Schema(
    {
        "minute_local": LOCAL_DATETIME,
        "platform": pl.String(),
        "product": pl.String(),
        "views": pl.Int64(),
        "purchases": pl.Int64(),
    }
)


class ParseResult(NamedTuple):
    """Bronze rows plus the rows or files that could not be read."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame


class SilverProductViews(NamedTuple):
    views: pl.DataFrame
    quarantine: pl.DataFrame
    ignored_event_counts: pl.DataFrame


class SilverPurchases(NamedTuple):
    purchases: pl.DataFrame
    quarantine: pl.DataFrame
    order_status_counts: pl.DataFrame


def canonical_platform(device_or_folder: pl.Expr) -> pl.Expr:
    """`ios`, `iPhone`, `mobile web`, `mobile_web`... -> iOS / Android / MobileWeb; anything else -> Other."""
    key = device_or_folder.str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")
    return key.replace_strict(PLATFORM_ALIASES, default=OTHER_PLATFORM, return_dtype=pl.String).fill_null(
        OTHER_PLATFORM
    )


def utc_to_local(utc: pl.Expr) -> pl.Expr:
    """Tz-aware UTC -> naive GMT-03:00 wall-clock time."""
    return utc.dt.replace_time_zone(None) + LOCAL_UTC_OFFSET


def file_quarantine(source: str, raw: str, reason: str) -> pl.DataFrame:
    """One quarantine row for a whole file."""
    return pl.DataFrame([(source, "file", raw, reason)], schema=QUARANTINE_SCHEMA, orient="row")


def excerpt(text: str, limit: int = 400) -> str:
    """Whole text when short; otherwise its head and tail (a cut-off upload shows at the end)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]} ... {text[-limit // 2 :]}"
