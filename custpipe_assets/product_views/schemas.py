"""What every layer of the product-views domain shares: constants, frame schemas, result tuples and the two small
expressions (platform names, local time) used by bronze, silver and gold alike.

Time: `order_date` is local time GMT-03:00 (a fixed offset, no daylight saving) and event timestamps are UTC
milliseconds. Silver keeps both `event_time_utc` (tz-aware UTC) and `event_time_local` (naive GMT-03:00).

Platforms: `iOS`, `Android`, `MobileWeb` (the view folders). Orders from any other device (desktop, empty, ...)
are kept and labelled `Other`; they have no views, so they never get a click-through rate.

Quarantine and reject tables follow the core contract (core/quarantine.py: `source_file, line_number, position,
reason, detail, raw`; weekly ones with `week_start` first). `line_number` is the physical line of a CSV record (the
header is line 1), null for JSON; `position` is `batch B event E` or `batch B` in a JSON file (0-based array
indexes), null for a CSV line; a whole file has neither. `reason` is a code from this module's enumerations
(ORDER_REJECT_REASONS, VIEW_REJECT_REASONS, PURCHASE_QUARANTINE_REASONS, VIEW_QUARANTINE_REASONS); the offending
value or rule is in `detail`. Source files are named relative to the landing root (`amaro/orders.csv`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

import polars as pl

from custpipe_assets.core.csv_reader import FILE_STATUSES, READ_ISSUES
from custpipe_assets.core.quarantine import QUARANTINE_SCHEMA, WEEKLY_QUARANTINE_SCHEMA

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
# Files with these statuses are parsed (their events, if any, are read); any other status rejects the whole file.
READABLE_VIEW_FILE_STATUSES = ("ok", "no_events", "no_event_times")


def invalid_value_reason(column: str) -> str:
    """The reject code of a CSV value that is not of its column's type: `invalid_order_date`, `invalid_quantity`."""
    return f"invalid_{column}"


# The reason codes, each enumeration defined here once (the checks import them). Codes name the rule; the offending
# value and the rule in words go to `detail`.
# bronze.order_rejects: a whole file not read (its CSV status, detail says why: absent, no header, missing column),
# a record the CSV reader could not read (its read issue), a value that is not of its column's type.
ORDER_REJECT_REASONS = tuple(
    dict.fromkeys(
        [
            *(status for status in FILE_STATUSES if status != "ok"),
            *READ_ISSUES,
            *(
                invalid_value_reason(column)
                for column, dtype in (*ORDER_COLUMN_TYPES.items(), *ORDER_ITEM_COLUMN_TYPES.items())
                if dtype != pl.String()
            ),
        ]
    )
)
# bronze.product_view_rejects: a whole file not read (its status in bronze.product_view_files), a batch that is not
# an object with an `events` array, an event whose timestamp_unixtime_ms is not a time.
VIEW_REJECT_REASONS = (
    *(status for status in VIEW_FILE_STATUSES if status not in READABLE_VIEW_FILE_STATUSES),
    "batch_without_events",
    "invalid_timestamp",
)
# silver.purchase_quarantine: orders, then order items, in the order the rules apply (first broken wins).
PURCHASE_QUARANTINE_REASONS = (
    "order_without_id",
    "order_without_date",
    "order_without_status",
    "unknown_order_status",  # in neither PURCHASE_STATUSES nor NON_PURCHASE_STATUSES
    "duplicate_order_id",  # the first line wins
    "item_without_id",
    "item_without_order_id",
    "item_without_code_color",
    "invalid_code_color",  # not a product code like 20005748_001
    "duplicate_item_id",  # the first line wins
    "orphan_item",  # its order is absent from orders or quarantined
)
# silver.product_view_quarantine: product views that cannot be counted, and the same event landed again.
VIEW_QUARANTINE_REASONS = (
    "unknown_platform",  # a platform folder that is not iOS, Android or MobileWeb
    "view_without_code_color",
    "invalid_code_color",  # not a product code like 20005748_001
    "view_without_timestamp",
    "duplicate_event",  # same platform, user and content as an earlier event (file/batch/event order)
)
ORDER_REJECTS_SCHEMA = QUARANTINE_SCHEMA
VIEW_REJECTS_SCHEMA = WEEKLY_QUARANTINE_SCHEMA
PURCHASE_QUARANTINE_SCHEMA = QUARANTINE_SCHEMA
VIEW_QUARANTINE_SCHEMA = WEEKLY_QUARANTINE_SCHEMA
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


def file_quarantine(source: str, raw: str, reason: str, detail: str | None) -> pl.DataFrame:
    """One quarantine row for a whole file: no line, no position."""
    return pl.DataFrame([(source, None, None, reason, detail or None, raw)], schema=QUARANTINE_SCHEMA, orient="row")


def excerpt(text: str, limit: int = 400) -> str:
    """Whole text when short; otherwise its head and tail (a cut-off upload shows at the end)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]} ... {text[-limit // 2 :]}"
