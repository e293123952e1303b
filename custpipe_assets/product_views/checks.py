"""Data checks for the product-views domain: Pandera schemas per table and per-week reconciliation."""

import dagster as dg
import pandera.polars as pa
import polars as pl

from custpipe_assets.core.checks import reconciliation_check, schema_check, weekly_row_count_sql
from custpipe_assets.product_views import assets
from custpipe_assets.product_views.transforms import VIEW_PLATFORMS

CTR_PER_MINUTE = pa.DataFrameSchema(
    {
        "week_start": pa.Column(pl.Date),
        "minute_local": pa.Column(pl.Datetime("us")),
        "platform": pa.Column(pl.String, pa.Check.isin([*VIEW_PLATFORMS, "Other"])),
        "product": pa.Column(pl.String, pa.Check.str_matches(r"^[0-9]+_[0-9]+$")),
        "views": pa.Column(pl.Int64, pa.Check.ge(0)),
        "purchases": pa.Column(pl.Int64, pa.Check.ge(0)),
    },
    unique=["minute_local", "platform", "product"],
    description="One row per minute, platform and product with non-negative counts.",
)
SILVER_VIEWS = pa.DataFrameSchema(
    {
        "platform": pa.Column(pl.String, pa.Check.isin(list(VIEW_PLATFORMS))),
        "product": pa.Column(pl.String),
        "event_id": pa.Column(pl.String),
    },
    unique=["platform", "event_id"],
    description="Product views on a known platform, each event once.",
)
SILVER_PURCHASES = pa.DataFrameSchema(
    {"order_id": pa.Column(pl.Int64), "product": pa.Column(pl.String), "platform": pa.Column(pl.String)},
    unique=["order_item_id"],
    description="Purchased order items, each item once.",
)

_EVENTS_IN = weekly_row_count_sql("bronze.product_view_events")
_VIEWS_OUT = weekly_row_count_sql("silver.product_views")
_VIEWS_SET_ASIDE = """
    select week_start, sum(rows) as rows from (
        select week_start, count(*) as rows from silver.product_view_quarantine where week_start = any($weeks) group by 1
        union all
        select week_start, sum(events) from silver.ignored_view_events where week_start = any($weeks) group by 1
    ) group by 1"""


def build_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    weekly = {"partitions_def": partitions_def}
    return [
        schema_check(assets.CTR_PER_MINUTE, CTR_PER_MINUTE, **weekly),
        schema_check(assets.SILVER_VIEWS, SILVER_VIEWS, **weekly),
        schema_check(assets.SILVER_PURCHASES, SILVER_PURCHASES),
        reconciliation_check(
            assets.SILVER_VIEWS,
            name="reconciles",
            description="Per week: bronze events = product views + quarantined views + ignored (non-view) events.",
            rows_in_sql=_EVENTS_IN, rows_out_sql=_VIEWS_OUT, rows_quarantined_sql=_VIEWS_SET_ASIDE,
            additional_deps=[assets.BRONZE_VIEW_EVENTS, assets.VIEW_QUARANTINE, assets.IGNORED_EVENTS],
            **weekly,
        ),
    ]
