"""Silver rules of the product-views domain (Polars frames in, frames out, no Dagster): which events are product
views and which are the same event landed twice, which orders are purchases, canonical platforms and local time.

A duplicate is the same event: same platform, same user (mpid) and the same event object as landed (its md5,
`event_hash`: id, session, timestamp, product and every other field). Two events that merely share an `event_id`
are a key collision, not a duplicate: the real AMARO export lost precision on its 64-bit ids, so nearly all of its
views share one id. Both are kept; the `event_id_collisions` check counts them.

Quarantine rows follow the core contract with a code from VIEW_QUARANTINE_REASONS or PURCHASE_QUARANTINE_REASONS
(`detail` holds the offending value): views by file and `batch B event E`, orders and items by file and line.
"""

from __future__ import annotations

import polars as pl

from custpipe_assets.core.quarantine import as_quarantine
from custpipe_assets.product_views.schemas import (
    IGNORED_EVENTS_SCHEMA,
    LOCAL_UTC_OFFSET,
    NON_PURCHASE_STATUSES,
    ORDER_COLUMN_TYPES,
    ORDER_ITEM_COLUMN_TYPES,
    ORDER_STATUS_COUNTS_SCHEMA,
    OTHER_PLATFORM,
    PRODUCT_CODE_PATTERN,
    PRODUCT_VIEWS_SILVER_SCHEMA,
    PURCHASE_STATUSES,
    PURCHASES_SILVER_SCHEMA,
    STATUS_ALIASES,
    VIEW_EVENTS_BRONZE_SCHEMA,
    VIEW_LINEAGE,
    VIEW_PLATFORMS,
    SilverProductViews,
    SilverPurchases,
    canonical_platform,
    utc_to_local,
)

SAME_EVENT = ("platform", "mpid", "event_hash")


def build_silver_product_views(bronze_events: pl.DataFrame) -> SilverProductViews:
    """Product views (custom_event named `product`), each event once (SAME_EVENT), in UTC and local time.

    Every other event is ignored and counted per platform, event_type and event_name. A product view from an
    unknown platform folder, without codeColor, with a codeColor that is not a product code, or without a
    timestamp is quarantined; the same event again (a batch delivered twice) is quarantined as a duplicate of its
    first occurrence in file/batch/event order. Views that only share an event_id are all kept.
    """
    events = bronze_events.with_columns(canonical_platform(pl.col("platform_folder")).alias("platform"))
    is_product_view = ((pl.col("event_type") == "custom_event") & (pl.col("event_name") == "product")).fill_null(False)
    ignored_event_counts = (
        events.filter(~is_product_view)
        .group_by("platform", "event_type", "event_name")
        .agg(pl.len().alias("events"))
        .sort("platform", "event_type", "event_name", nulls_last=True)
        .cast(dict(IGNORED_EVENTS_SCHEMA))
    )
    code_color = pl.col("code_color")
    problems = [  # (rule broken, code, detail), in the order the rules apply: the first broken wins
        (
            pl.col("platform") == OTHER_PLATFORM,
            "unknown_platform",
            pl.format("platform folder '{}' is not one of {}", "platform_folder", pl.lit(", ".join(VIEW_PLATFORMS))),
        ),
        (
            code_color.is_null() | (code_color.str.strip_chars() == ""),
            "view_without_code_color",
            pl.lit("product view without codeColor"),
        ),
        (
            ~code_color.str.contains(PRODUCT_CODE_PATTERN),
            "invalid_code_color",
            pl.format("codeColor '{}' is not a product code like 20005748_001", "code_color"),
        ),
        (
            pl.col("timestamp_unixtime_ms").is_null(),
            "view_without_timestamp",
            pl.lit("product view without timestamp_unixtime_ms"),
        ),
    ]
    same_event = ["__keyed", *SAME_EVENT]
    position_in_file = pl.format("batch {} event {}", "batch_index", "event_index")
    first_seen = pl.format("{} {}", "source_file", position_in_file).first().over(same_event)
    again = pl.col("__keyed") & (pl.int_range(pl.len()).over(same_event) > 0)
    views = (
        events.filter(is_product_view)
        .with_columns(_first_problem(problems))
        .with_columns((pl.col("reason").is_null() & pl.col("event_hash").is_not_null()).alias("__keyed"))
        .with_columns(
            pl.when(again).then(pl.lit("duplicate_event")).otherwise("reason").alias("reason"),
            pl.when(again)
            .then(pl.format("the same event first seen in {}", first_seen))
            .otherwise("detail")
            .alias("detail"),
        )
    )
    raw_fields = [name for name in VIEW_EVENTS_BRONZE_SCHEMA.names() if name not in VIEW_LINEAGE]
    quarantine = as_quarantine(
        views.filter(pl.col("reason").is_not_null()).with_columns(
            position_in_file.alias("position"), pl.struct(raw_fields).struct.json_encode().alias("raw")
        ),
        weekly=True,
    )
    microseconds = (pl.col("timestamp_unixtime_ms") * 1000).floor().cast(pl.Int64)
    event_time_utc = microseconds.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    clean = (
        views.filter(pl.col("reason").is_null())
        .with_columns(event_time_utc.alias("event_time_utc"))
        .with_columns(
            pl.col("code_color").str.strip_chars().alias("product"),
            utc_to_local(pl.col("event_time_utc")).alias("event_time_local"),
        )
        .select(PRODUCT_VIEWS_SILVER_SCHEMA.names())
    )
    return SilverProductViews(clean, quarantine, ignored_event_counts)


def build_silver_purchases(bronze_orders: pl.DataFrame, bronze_items: pl.DataFrame) -> SilverPurchases:
    """Order items joined to their orders, keeping only purchases (see PURCHASE_STATUSES), in UTC and local time.

    Statuses are compared lower-cased with `canceled` read as `cancelled`. Quarantined: orders without id, date
    or status, with a status in neither PURCHASE_STATUSES nor NON_PURCHASE_STATUSES, or repeating an id (the first
    line wins); items without order_id, without or with a malformed code_color, repeating an item id, or whose
    order is absent or quarantined. Items of valid non-purchase orders are not errors: `order_status_counts` shows
    how many orders and items each status holds and whether it counts as a purchase.
    """
    known_statuses = sorted(PURCHASE_STATUSES | NON_PURCHASE_STATUSES)
    orders = bronze_orders.with_columns(
        pl.col("order_status").str.strip_chars().str.to_lowercase().replace(STATUS_ALIASES).alias("__status")
    )
    order_problems = [
        (pl.col("id").is_null(), "order_without_id", pl.lit("order without id")),
        (pl.col("order_date").is_null(), "order_without_date", pl.lit("order without order_date")),
        (pl.col("__status").is_null(), "order_without_status", pl.lit("order without order_status")),
        (
            ~pl.col("__status").is_in(known_statuses),
            "unknown_order_status",
            pl.format(
                "order_status '{}' is not a known status ({})", "order_status", pl.lit(", ".join(known_statuses))
            ),
        ),
    ]
    orders, orders_quarantine = _split_problems(
        orders, order_problems, duplicate="duplicate_order_id", what="order id", raw_columns=list(ORDER_COLUMN_TYPES)
    )
    items = bronze_items.with_columns(pl.col("code_color").str.strip_chars())
    item_problems = [
        (pl.col("id").is_null(), "item_without_id", pl.lit("order item without id")),
        (pl.col("order_id").is_null(), "item_without_order_id", pl.lit("order item without order_id")),
        (pl.col("code_color").is_null(), "item_without_code_color", pl.lit("order item without code_color")),
        (
            ~pl.col("code_color").str.contains(PRODUCT_CODE_PATTERN),
            "invalid_code_color",
            pl.format("code_color '{}' is not a product code like 20005748_001", "code_color"),
        ),
    ]
    items, items_quarantine = _split_problems(
        items,
        item_problems,
        duplicate="duplicate_item_id",
        what="order item id",
        raw_columns=list(ORDER_ITEM_COLUMN_TYPES),
    )
    joined = items.join(
        orders.select(
            pl.col("id").alias("order_id"),
            "user_id",
            "order_date",
            pl.col("__status").alias("order_status"),
            "device_type",
        ),
        on="order_id",
        how="left",
        maintain_order="left",
    )
    orphans = joined.filter(pl.col("order_date").is_null())
    orphans_quarantine = _quarantine_rows(
        orphans.with_columns(
            pl.lit("orphan_item").alias("reason"),
            pl.format("order_id {} is not a valid order (absent from orders or quarantined)", "order_id").alias(
                "detail"
            ),
        ),
        list(ORDER_ITEM_COLUMN_TYPES),
    )
    lines = joined.filter(pl.col("order_date").is_not_null()).with_columns(
        pl.col("order_status").is_in(sorted(PURCHASE_STATUSES)).alias("counts_as_purchase")
    )
    order_status_counts = (
        lines.group_by("order_status", "counts_as_purchase")
        .agg(pl.col("order_id").n_unique().alias("orders"), pl.len().alias("items"))
        .sort("order_status")
        .cast(dict(ORDER_STATUS_COUNTS_SCHEMA))
    )
    purchases = (
        lines.filter(pl.col("counts_as_purchase"))
        .with_columns(
            pl.col("order_date").alias("event_time_local"),
            (pl.col("order_date") - LOCAL_UTC_OFFSET).dt.replace_time_zone("UTC").alias("event_time_utc"),
            pl.col("id").alias("order_item_id"),
            pl.col("code_color").alias("product"),
            canonical_platform(pl.col("device_type")).alias("platform"),
        )
        .select(PURCHASES_SILVER_SCHEMA.names())
        .sort("event_time_utc", "order_id", "order_item_id")
    )
    quarantine = pl.concat([orders_quarantine, items_quarantine, orphans_quarantine])
    return SilverPurchases(purchases, quarantine, order_status_counts)


def _first_problem(problems: list[tuple[pl.Expr, str, pl.Expr]]) -> list[pl.Expr]:
    """`reason`, the code of the first rule broken (in list order), and its `detail`; both null when none is."""
    (broken, code, text), *rest = problems
    reason, detail = pl.when(broken).then(pl.lit(code)), pl.when(broken).then(text)
    for broken, code, text in rest:
        reason, detail = reason.when(broken).then(pl.lit(code)), detail.when(broken).then(text)
    return [reason.alias("reason"), detail.alias("detail")]


def _split_problems(
    frame: pl.DataFrame,
    problems: list[tuple[pl.Expr, str, pl.Expr]],
    *,
    duplicate: str,
    what: str,
    raw_columns: list[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows without problems and unique on `id` (first line wins) vs. quarantine rows with their reason code; a
    repeated id is quarantined as `duplicate`."""
    frame = frame.sort("source_file", "line_number").with_columns(_first_problem(problems))
    valid = frame.filter(pl.col("reason").is_null()).with_columns(
        pl.format("{} line {}", "source_file", "line_number").first().over("id").alias("__first"),
        (pl.int_range(pl.len()).over("id") > 0).alias("__repeated"),
    )
    repeated = valid.filter("__repeated").with_columns(
        pl.lit(duplicate).alias("reason"),
        pl.format("{} {} first at {}", pl.lit(what), pl.col("id"), "__first").alias("detail"),
    )
    quarantine = pl.concat(
        [
            _quarantine_rows(frame.filter(pl.col("reason").is_not_null()), raw_columns),
            _quarantine_rows(repeated, raw_columns),
        ]
    )
    kept = valid.filter(~pl.col("__repeated")).drop("reason", "detail", "__first", "__repeated")
    return kept, quarantine


def _quarantine_rows(frame: pl.DataFrame, raw_columns: list[str]) -> pl.DataFrame:
    """Rows of a typed frame (with `reason` and `detail`) as quarantine rows at their file and line; `raw` is the
    row as JSON (the typed values, dates ISO)."""
    return as_quarantine(frame.with_columns(pl.struct(raw_columns).struct.json_encode().alias("raw")))
