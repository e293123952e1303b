"""Data checks for the product-views domain: Pandera schemas per table (derived from the transforms' pl.Schema,
with the reason codes imported from them), per-week reconciliation, landed files that could not be read or are not
all in materialized weeks, and event ids shared by different events."""

import dagster as dg
import pandera.polars as pa

from custpipe_assets.core.checks import (
    SAMPLE_ROWS,
    pandera_schema,
    quarantine_check,
    reconciliation_check,
    schema_check,
    sql_check,
    weekly_row_count_sql,
)
from custpipe_assets.core.columns import weekly
from custpipe_assets.core.metadata import markdown_table
from custpipe_assets.core.partitions import weeks_of
from custpipe_assets.core.warehouse import WarehouseResource
from custpipe_assets.product_views import assets
from custpipe_assets.product_views import transforms as t

PLATFORMS = [*t.VIEW_PLATFORMS, t.OTHER_PLATFORM]


CTR_PER_MINUTE = pandera_schema(
    weekly(t.GOLD_CTR_MINUTE_SCHEMA),
    checks={
        "platform": pa.Check.isin(PLATFORMS),
        "product": pa.Check.str_matches(t.PRODUCT_CODE_PATTERN),
        "views": pa.Check.ge(0),
        "purchases": pa.Check.ge(0),
    },
    unique=["minute_local", "platform", "product"],
    description="One row per minute, platform and product with non-negative counts.",
)
SILVER_VIEWS = pandera_schema(
    weekly(t.PRODUCT_VIEWS_SILVER_SCHEMA),
    checks={
        "platform": pa.Check.isin(list(t.VIEW_PLATFORMS)),
        "product": pa.Check.str_matches(t.PRODUCT_CODE_PATTERN),
        "event_hash": pa.Check.str_matches(r"^[0-9a-f]{32}$"),
        "batch_index": pa.Check.ge(0),
        "event_index": pa.Check.ge(0),
    },
    nullable=("event_id", "session_id", "mpid"),
    unique=["platform", "mpid", "event_hash"],
    description="Product views on a known platform, each event once (same platform, user and content).",
)
VIEW_FILES = pandera_schema(
    t.VIEW_FILES_SCHEMA,
    checks={
        "status": pa.Check.isin(list(t.VIEW_FILE_STATUSES)),
        "bytes": pa.Check.ge(0),
        "records": pa.Check.ge(0),
    },
    nullable=("platform_folder",),
    unique=["source_file"],
    description="One row per landed view file, with a known status and a week for its records.",
)
SILVER_PURCHASES = pandera_schema(
    t.PURCHASES_SILVER_SCHEMA,
    checks={
        "product": pa.Check.str_matches(t.PRODUCT_CODE_PATTERN),
        "order_status": pa.Check.isin(sorted(t.PURCHASE_STATUSES)),
        "platform": pa.Check.isin(PLATFORMS),
    },
    nullable=("user_id", "sku", "quantity", "device_type"),
    unique=["order_item_id"],
    description="Purchased order items, each item once.",
)
# Each quarantine table (the contract of `core/quarantine.py`), its reason codes, whether weekly, and its check.
QUARANTINES = (
    (
        assets.BRONZE_ORDER_REJECTS,
        t.ORDER_REJECT_REASONS,
        False,
        "Every rejected order or item line names its file, line and a known reason; a file not read, its file and "
        "reason.",
    ),
    (
        assets.BRONZE_VIEW_REJECTS,
        t.VIEW_REJECT_REASONS,
        True,
        "Every rejected view file, batch or event names its file, position and a known reason.",
    ),
    (
        assets.PURCHASE_QUARANTINE,
        t.PURCHASE_QUARANTINE_REASONS,
        False,
        "Every quarantined order or item names its file, line and a known reason.",
    ),
    (
        assets.VIEW_QUARANTINE,
        t.VIEW_QUARANTINE_REASONS,
        True,
        "Every quarantined product view names its file, batch and event and a known reason.",
    ),
)

_EVENTS_IN = weekly_row_count_sql("bronze.product_view_events")
_VIEWS_OUT = weekly_row_count_sql("silver.product_views")
_VIEWS_SET_ASIDE = """
    select week_start, sum(rows) as rows from (
        select week_start, count(*) as rows from silver.product_view_quarantine where week_start = any($weeks) group by 1
        union all
        select week_start, sum(events) from silver.ignored_view_events where week_start = any($weeks) group by 1
    ) group by 1"""


# Views of one week that share (platform, event_id) but are different events: all kept, and counted here.
_COLLISIONS_SQL = """
    select week_start, platform, event_id, count(*) as views, count(distinct session_id) as sessions,
           min(event_time_utc) as first_time, max(event_time_utc) as last_time
    from silver.product_views where week_start = any($weeks) and event_id is not null
    group by all having count(*) > 1 order by views desc, week_start, platform, event_id"""


def event_id_collisions_check(partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    """WARN when different views share an event_id within a week (the real export lost precision on its ids)."""

    @dg.asset_check(
        asset=assets.SILVER_VIEWS,
        name="event_id_collisions",
        description="Different product views (other content) sharing one event_id in a week: kept, not dropped, "
        "and counted here (the real AMARO export's 64-bit ids lost precision).",
        partitions_def=partitions_def,
        pool="warehouse",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        ids = warehouse.get().query(_COLLISIONS_SQL, {"weeks": weeks_of(context)})
        views = int(ids["views"].sum()) if ids.height else 0
        return dg.AssetCheckResult(
            passed=ids.is_empty(),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "failure_count": views,
                "colliding_ids": ids.height,
                "views_sharing_an_id": views,
                "sample_failing_rows": dg.MetadataValue.md(markdown_table(ids.head(SAMPLE_ROWS)) or "none"),
            },
        )

    return _check


def build_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    weekly = {"partitions_def": partitions_def}
    return [
        schema_check(assets.BRONZE_VIEW_FILES, VIEW_FILES),
        event_id_collisions_check(partitions_def),
        sql_check(
            assets.BRONZE_VIEW_FILES,
            name="files_readable",
            description="Landed view files that could not be read whole (empty, not JSON, not an array, outside a "
            "platform folder, no events or no event times): quarantined in their home week, named here.",
            failing_rows_sql="""select source_file, status, detail, records, home_week
                                from bronze.product_view_files where status <> 'ok' order by source_file""",
            severity=dg.AssetCheckSeverity.WARN,
        ),
        sql_check(
            assets.BRONZE_VIEW_FILES,
            name="every_record_in_a_materialized_week",
            description="Files whose records are not all in the weekly bronze tables (events + rejects): a week "
            "they feed was not run yet, or lies before CUSTPIPE_FIRST_WEEK.",
            failing_rows_sql="""
                with stored as (select source_file, count(*) as records from bronze.product_view_events group by 1
                                union all
                                select source_file, count(*) from bronze.product_view_rejects group by 1),
                     per_file as (select source_file, sum(records) as records from stored group by 1)
                select f.source_file, f.status, f.records, coalesce(s.records, 0) as records_in_weekly_tables,
                       f.first_week, f.last_week
                from bronze.product_view_files f left join per_file s using (source_file)
                where f.records <> coalesce(s.records, 0) order by f.source_file""",
            additional_deps=[assets.BRONZE_VIEW_EVENTS, assets.BRONZE_VIEW_REJECTS],
            severity=dg.AssetCheckSeverity.WARN,
        ),
        sql_check(
            assets.BRONZE_ORDER_REJECTS,
            name="files_readable",
            description="Order CSVs not read as a whole (absent, empty, header only, wrong header), named here.",
            failing_rows_sql="""select source_file, reason, detail, raw as header from bronze.order_rejects
                                where line_number is null order by source_file""",
            severity=dg.AssetCheckSeverity.WARN,
        ),
        schema_check(assets.CTR_PER_MINUTE, CTR_PER_MINUTE, **weekly),
        schema_check(assets.SILVER_VIEWS, SILVER_VIEWS, **weekly),
        schema_check(assets.SILVER_PURCHASES, SILVER_PURCHASES),
        *(
            quarantine_check(key, reasons, description=description, **(weekly if partitioned else {}))
            for key, reasons, partitioned, description in QUARANTINES
        ),
        reconciliation_check(
            assets.SILVER_VIEWS,
            description="Per week: bronze events = product views + quarantined views + ignored (non-view) events.",
            rows_in_sql=_EVENTS_IN,
            rows_out_sql=_VIEWS_OUT,
            rows_quarantined_sql=_VIEWS_SET_ASIDE,
            additional_deps=[assets.BRONZE_VIEW_EVENTS, assets.VIEW_QUARANTINE, assets.IGNORED_EVENTS],
            **weekly,
        ),
    ]
