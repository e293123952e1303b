"""Data checks for customer segmentation: Pandera schemas, the store match rate, and the reporting schema's keys
and relationships (unique keys, every segment row has a customer, metrics add up to the features)."""

import dagster as dg
import pandera.polars as pa
import polars as pl

from custpipe_assets.core.checks import (
    files_readable_check,
    pandera_schema,
    quarantine_check,
    schema_check,
    sql_check,
    weekly_reconciliation,
)
from custpipe_assets.core.metadata import markdown_table
from custpipe_assets.core.partitions import weeks_of
from custpipe_assets.core.warehouse import WarehouseResource
from custpipe_assets.purchases import reference
from custpipe_assets.segmentation import assets, features, profiles, segments
from custpipe_assets.segmentation.store_purchases import STORE_QUARANTINE_REASONS

MIN_STORE_MATCH_RATE = 0.95

PROFILES = pandera_schema(
    profiles.SILVER_PROFILES_SCHEMA,
    checks={
        "age": pa.Check.in_range(*profiles.AGE_RANGE),
        "gender": pa.Check.isin(sorted(set(profiles.GENDER_SPELLINGS.values()))),
        "gender_female": pa.Check.isin([0, 1]),
        "mobile_e164": pa.Check.str_matches(r"^\+[1-9][0-9]{6,14}$"),
        "merged_records": pa.Check.ge(1),
    },
    nullable=("name", "age", "income", "gender", "mobile_e164", "joined_at"),
    unique=["customer_id"],
    description="One profile per customer; ages in 16..110, genders F/M, E.164 mobiles, ISO dates.",
)
ROLLUPS = pandera_schema(
    features.ROLLUP_SCHEMA,
    checks={name: pa.Check.ge(0) for name in ("online_purchases", "online_spend", "store_purchases", "store_spend")},
    unique=["week_start", "customer_id"],
    description="One row per customer and week (features count active weeks as rows).",
)
FEATURES = pandera_schema(
    features.FEATURES_SCHEMA,
    checks={
        **{
            name: pa.Check.ge(0)
            for name in (
                "purchases",
                "active_weeks",
                "total_spend",
                "avg_transaction_value",
                "purchase_frequency",
                "recency_days",
                "clv",
            )
        },
        "gender_female": pa.Check.isin([0, 1]),
    },
    nullable=("age", "income", "loyalty_score", "first_purchase_date", "last_purchase_date"),
    unique=["customer_id"],
    description="One row per customer; customers with no purchases have zeros, not nulls.",
)
SEGMENTS = pandera_schema(
    segments.SEGMENTS_SCHEMA,
    unique=["customer_id"],
    description="Primary key customer_id: each customer in exactly one segment.",
)
METRICS = pandera_schema(
    segments.SEGMENT_METRICS_SCHEMA,
    checks={
        "customers": pa.Check.ge(0),
        "customer_share": pa.Check.in_range(0, 1),
        "spend_share": pa.Check.in_range(0, 1),
    },
    unique=["segment_id"],
    description="Primary key segment_id; shares between 0 and 1.",
)


def build_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    weekly = {"partitions_def": partitions_def}

    @dg.asset_check(
        asset=assets.SILVER_STORE_PURCHASES,
        name="match_rate",
        pool="warehouse",
        partitions_def=partitions_def,
        additional_deps=[assets.STORE_QUARANTINE],
        description=f"Per week, at least {MIN_STORE_MATCH_RATE:.0%} of store purchases match a customer's mobile.",
    )
    def store_match_rate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        rates = warehouse.get().query(
            """
            with matched as (select week_start, count(*) as matched from silver.store_purchases
                             where week_start = any($weeks) group by 1),
                 unknown as (select week_start, count(*) as unknown from silver.store_purchase_quarantine
                             where week_start = any($weeks) and reason = 'unknown_mobile' group by 1)
            select week_start, coalesce(matched, 0) as matched, coalesce(unknown, 0) as unknown,
                   coalesce(matched, 0) / nullif(coalesce(matched, 0) + coalesce(unknown, 0), 0) as match_rate
            from matched full join unknown using (week_start) order by week_start
            """,
            {"weeks": weeks_of(context)},
        )
        below = rates.filter(pl.col("match_rate") < MIN_STORE_MATCH_RATE)
        return dg.AssetCheckResult(
            passed=below.is_empty(),
            metadata={
                "failure_count": below.height,
                "match_rate": float(rates["match_rate"].min()) if rates.height else float("nan"),
                "threshold": MIN_STORE_MATCH_RATE,
                "sample_failing_rows": dg.MetadataValue.md(markdown_table(below.head(10)) or "none"),
            },
        )

    return [
        store_match_rate,
        files_readable_check(
            assets.BRONZE_PROFILES,
            description=f"Warns when {profiles.PROFILES_FILE} is absent, empty, header only or lacks a column.",
            file_reports=lambda root: [
                reference.reference_file_status(root, profiles.PROFILES_FILE, profiles.PROFILE_COLUMNS)
            ],
        ),
        schema_check(assets.SILVER_PROFILES, PROFILES),
        quarantine_check(
            assets.STORE_QUARANTINE,
            STORE_QUARANTINE_REASONS,
            description="Every rejected store purchase carries a known reason.",
            **weekly,
        ),
        schema_check(assets.WEEKLY_ROLLUPS, ROLLUPS, **weekly),
        schema_check(assets.CUSTOMER_FEATURES, FEATURES),
        schema_check(assets.CUSTOMER_SEGMENTS, SEGMENTS),
        schema_check(assets.SEGMENT_METRICS, METRICS),
        weekly_reconciliation(
            assets.SILVER_STORE_PURCHASES,
            assets.BRONZE_STORE_PURCHASES,
            assets.STORE_QUARANTINE,
            description="Per week: records served by the API = matched store purchases + quarantined records.",
            **weekly,
        ),
        sql_check(
            assets.CUSTOMER_SEGMENTS,
            name="every_segment_row_has_a_customer",
            description="Foreign key: customer_segments.customer_id references customer_features.customer_id.",
            failing_rows_sql="select s.* from gold.customer_segments s anti join gold.customer_features f using (customer_id)",
            additional_deps=[assets.CUSTOMER_FEATURES],
        ),
        sql_check(
            assets.SEGMENT_METRICS,
            name="adds_up_to_features",
            description="Segment metrics add up to the feature table: same customers, same total spend, exactly.",
            failing_rows_sql="""
                select m.customers, f.customers as feature_customers, m.spend, f.spend as feature_spend
                from (select sum(customers) as customers, sum(total_spend) as spend from gold.segment_metrics) m,
                     (select count(*) as customers, sum(total_spend) as spend from gold.customer_features) f
                where m.customers <> f.customers or m.spend <> f.spend""",
            additional_deps=[assets.CUSTOMER_FEATURES],
        ),
    ]
