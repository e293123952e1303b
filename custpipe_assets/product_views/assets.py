"""Dagster wiring for the product-views domain: orders and view events -> purchases and views -> CTR per minute,
plus the Parquet snapshot the CTR API serves (so the API never touches the warehouse file DuckDB locks).

Views are partitioned by the UTC week of each event's own time (a file crossing midnight or a week feeds both
weeks; `view_files.py` says where records without a usable time go); `bronze/product_view_files` lists every
landed view file with its status and weeks, so none is ignored unseen. Purchases are small and loaded whole from
the database tables; the gold table for a week takes that week's views and the purchases whose UTC time falls in
it, so every (minute, platform, product) row belongs to exactly one week.
"""

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from custpipe_assets.core.arrivals import LandedFiles
from custpipe_assets.core.conventions import FOLLOWS_INPUTS, POOL, table_asset, table_out, weekly_asset_args
from custpipe_assets.core.io_manager import SetAsidePerWeek, WeeklyBatches
from custpipe_assets.core.landed_versions import record_landed_fingerprints
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.metadata import counts_by
from custpipe_assets.core.partitions import weeks_of
from custpipe_assets.product_views import transforms
from custpipe_assets.product_views.serving import publish_serving_snapshot

AMARO_DIR = "amaro"

BRONZE_ORDERS = dg.AssetKey(["bronze", "orders"])
BRONZE_ORDER_ITEMS = dg.AssetKey(["bronze", "order_items"])
BRONZE_ORDER_REJECTS = dg.AssetKey(["bronze", "order_rejects"])
BRONZE_VIEW_EVENTS = dg.AssetKey(["bronze", "product_view_events"])
BRONZE_VIEW_REJECTS = dg.AssetKey(["bronze", "product_view_rejects"])
BRONZE_VIEW_FILES = dg.AssetKey(["bronze", "product_view_files"])
SILVER_PURCHASES = dg.AssetKey(["silver", "purchases"])
PURCHASE_QUARANTINE = dg.AssetKey(["silver", "purchase_quarantine"])
SILVER_VIEWS = dg.AssetKey(["silver", "product_views"])
VIEW_QUARANTINE = dg.AssetKey(["silver", "product_view_quarantine"])
IGNORED_EVENTS = dg.AssetKey(["silver", "ignored_view_events"])
CTR_PER_MINUTE = dg.AssetKey(["gold", "ctr_per_minute"])
CTR_SNAPSHOT = dg.AssetKey(["gold", "ctr_api_snapshot"])


def views_dir(landing_root: Path) -> Path:
    return landing_root / AMARO_DIR / "product_views"


@dg.multi_asset(
    outs={
        "orders": table_out(
            BRONZE_ORDERS, "amaro/orders.csv loaded into the database, typed, with file and line.", "csv"
        ),
        "items": table_out(
            BRONZE_ORDER_ITEMS, "amaro/order_items.csv loaded into the database, typed, with file and line.", "csv"
        ),
        "rejects": table_out(
            BRONZE_ORDER_REJECTS,
            "Order and item CSV rows that could not be read or typed, and files not read (absent, empty, wrong header), with the reason.",
        ),
    },
    pool=POOL,
)
def bronze_orders(context: dg.AssetExecutionContext, landing: LandingResource) -> Iterator[dg.Output]:
    root = landing.root()
    for name in (transforms.ORDERS_FILE, transforms.ORDER_ITEMS_FILE):
        if not (root / name).is_file():
            context.log.warning(f"{root / name} is absent: its table is empty this run")
    orders = transforms.parse_orders_csv(root / transforms.ORDERS_FILE, source_file=transforms.ORDERS_FILE)
    items = transforms.parse_order_items_csv(
        root / transforms.ORDER_ITEMS_FILE, source_file=transforms.ORDER_ITEMS_FILE
    )
    rejects = pl.concat([orders.quarantine, items.quarantine])
    yield dg.Output(orders.rows, output_name="orders")
    yield dg.Output(items.rows, output_name="items")
    yield dg.Output(
        rejects,
        output_name="rejects",
        metadata={"rejected_by_reason": dg.MetadataValue.json(counts_by(rejects, "reason"))},
    )


@dg.multi_asset(
    outs={
        "purchases": table_out(
            SILVER_PURCHASES, "Purchased order items (approved, invoiced, shipped, delivered) in UTC and GMT-03:00."
        ),
        "quarantine": table_out(
            PURCHASE_QUARANTINE, "Orders and items rejected (unknown status, duplicate id, orphan item...) with reason."
        ),
    },
    ins={"orders": dg.AssetIn(BRONZE_ORDERS), "items": dg.AssetIn(BRONZE_ORDER_ITEMS)},
    pool=POOL,
)
def silver_purchases(orders: pl.DataFrame, items: pl.DataFrame) -> Iterator[dg.Output]:
    result = transforms.build_silver_purchases(orders, items)
    status_counts = result.order_status_counts
    yield dg.Output(
        result.purchases,
        output_name="purchases",
        metadata={
            "rows_read": items.height,
            "orders_by_status": dg.MetadataValue.json(
                {row["order_status"]: row["orders"] for row in status_counts.iter_rows(named=True)}
            ),
        },
    )
    yield dg.Output(
        result.quarantine,
        output_name="quarantine",
        metadata={
            "quarantined_by_reason": dg.MetadataValue.json(counts_by(result.quarantine, "reason")),
        },
    )


def build_view_assets(
    partitions_def: dg.PartitionsDefinition, serving_path: Path, landed: LandedFiles
) -> list[dg.AssetsDefinition]:
    """The weekly view assets, the CTR table and its snapshot; bronze records, on each week it materializes, the
    fingerprint of that week's `landed` view files (what the arrival sensor compares with)."""
    weekly = weekly_asset_args(partitions_def)

    @dg.multi_asset(
        outs={
            "events": table_out(
                BRONZE_VIEW_EVENTS,
                "Every event whose UTC time falls in the week (all types), ids kept exact, with file, position and content hash.",
                "json",
            ),
            "rejects": table_out(
                BRONZE_VIEW_REJECTS,
                "Product-view files, batches or events that could not be read, with the reason, in their file's home week.",
            ),
        },
        **weekly,
    )
    def bronze_product_views(context: dg.AssetExecutionContext, landing: LandingResource) -> Iterator[dg.Output]:
        root, weeks = landing.root(), weeks_of(context)
        record_landed_fingerprints(context, landed, root, weeks, asset_key=BRONZE_VIEW_EVENTS)
        rejects = SetAsidePerWeek(weeks)
        files_by_week = transforms.view_files_by_week(views_dir(root), weeks, root)

        def parse(week: date) -> pl.DataFrame:
            parsed = transforms.parse_product_view_files(
                files_by_week[week], views_dir(root), landing_root=root, week=week
            )
            rejects.keep(week, parsed.quarantine)
            return parsed.rows

        yield dg.Output(WeeklyBatches(weeks, parse), output_name="events")
        yield dg.Output(rejects.batches(), output_name="rejects")

    @table_asset(
        BRONZE_VIEW_FILES,
        "Every landed file under amaro/product_views: status, records, and the UTC weeks its events fall in.",
        "json",
    )
    def product_view_files(context: dg.AssetExecutionContext, landing: LandingResource) -> pl.DataFrame:
        inventory = transforms.view_file_inventory(views_dir(landing.root()), landing.root())
        context.add_output_metadata({"files_by_status": dg.MetadataValue.json(counts_by(inventory, "status"))})
        return inventory

    @dg.multi_asset(
        outs={
            "views": table_out(
                SILVER_VIEWS,
                "Product views: canonical platform, UTC and GMT-03:00 time, each event once (same content, not same id).",
            ),
            "quarantine": table_out(
                VIEW_QUARANTINE, "Product views rejected (no product code, unknown platform, duplicate) with reason."
            ),
            "ignored": table_out(
                IGNORED_EVENTS, "Events that are not product views, counted per platform, type and name."
            ),
        },
        ins={"events": dg.AssetIn(BRONZE_VIEW_EVENTS)},
        **weekly,
    )
    def silver_product_views(events: WeeklyBatches) -> Iterator[dg.Output]:
        quarantine, ignored = SetAsidePerWeek(events.weeks), SetAsidePerWeek(events.weeks)

        def clean(week: date, week_events: pl.DataFrame) -> pl.DataFrame:
            result = transforms.build_silver_product_views(week_events)
            quarantine.keep(week, result.quarantine)
            ignored.keep(week, result.ignored_event_counts)
            return result.views

        yield dg.Output(events.map(clean), output_name="views")
        yield dg.Output(quarantine.batches(), output_name="quarantine")
        yield dg.Output(ignored.batches(), output_name="ignored")

    @table_asset(
        CTR_PER_MINUTE,
        "Product views and purchases per GMT-03:00 minute, platform and product: any CTR bucket sums these.",
        ins={"views": dg.AssetIn(SILVER_VIEWS), "purchases": dg.AssetIn(SILVER_PURCHASES)},
        **weekly,
    )
    def ctr_per_minute(views: WeeklyBatches, purchases: pl.DataFrame) -> WeeklyBatches:
        def per_minute(week: date, week_views: pl.DataFrame) -> pl.DataFrame:
            start = datetime.combine(week, time()).replace(tzinfo=None)
            in_week = (
                purchases.filter(
                    pl.col("event_time_utc")
                    .dt.convert_time_zone("UTC")
                    .dt.replace_time_zone(None)
                    .is_between(start, start + timedelta(days=7), closed="left")
                )
                if purchases.height
                else purchases
            )
            if week_views.is_empty() and in_week.is_empty():
                return transforms.GOLD_CTR_MINUTE_SCHEMA.to_frame()
            return transforms.build_gold_ctr_per_minute(
                week_views if week_views.width else transforms.PRODUCT_VIEWS_SILVER_SCHEMA.to_frame(), in_week
            )

        return views.map(per_minute)

    @dg.asset(
        key=CTR_SNAPSHOT,
        description="Publishes gold.ctr_per_minute as a Parquet snapshot for the CTR API (atomic replace).",
        kinds={"parquet"},
        ins={"ctr": dg.AssetIn(CTR_PER_MINUTE)},
        automation_condition=FOLLOWS_INPUTS,
    )
    def ctr_api_snapshot(context: dg.AssetExecutionContext, ctr: pl.DataFrame) -> None:
        snapshot = (
            ctr.drop("week_start") if "week_start" in ctr.columns else transforms.GOLD_CTR_MINUTE_SCHEMA.to_frame()
        )
        path = publish_serving_snapshot(snapshot, serving_path)
        context.add_output_metadata({"path": str(path), "dagster/row_count": snapshot.height})

    return [product_view_files, bronze_product_views, silver_product_views, ctr_per_minute, ctr_api_snapshot]


ORDER_ASSETS = [bronze_orders, silver_purchases]
