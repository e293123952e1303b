"""Dagster wiring for customer segmentation: profiles, store purchases from the REST API, weekly rollups,
features, the KMeans model, segments and segment metrics (the reporting tables in `gold`).

Thin wrappers over `profiles.py`, `store_purchases.py`, `features.py` and `segments.py`. The weekly update never
rescans the transaction history: a week adds one partition of `silver.customer_weekly_rollups`, and features are
aggregated from the rollups inside DuckDB.
"""

import base64
import pickle
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import polars as pl

from custpipe_assets.core.conventions import (
    FOLLOWS_INPUTS,
    POOL,
    following_table,
    table_asset,
    table_out,
    weekly_asset_args,
)
from custpipe_assets.core.io_manager import SetAsidePerWeek, WeeklyBatches
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.metadata import counts_by, markdown_table
from custpipe_assets.core.partitions import weeks_of
from custpipe_assets.core.warehouse import WarehouseResource
from custpipe_assets.purchases import reference
from custpipe_assets.purchases.assets import SILVER_CUSTOMERS, TRANSACTION_LINES
from custpipe_assets.segmentation import features, profiles, segments, store_purchases
from custpipe_assets.segmentation.resources import PurchasesApiResource

BRONZE_PROFILES = dg.AssetKey(["bronze", "customer_profiles"])
SILVER_PROFILES = dg.AssetKey(["silver", "customer_profiles"])
PROFILE_ISSUES = dg.AssetKey(["silver", "customer_profile_issues"])
BRONZE_STORE_PURCHASES = dg.AssetKey(["bronze", "store_purchases"])
SILVER_STORE_PURCHASES = dg.AssetKey(["silver", "store_purchases"])
STORE_QUARANTINE = dg.AssetKey(["silver", "store_purchase_quarantine"])
WEEKLY_ROLLUPS = dg.AssetKey(["silver", "customer_weekly_rollups"])
CUSTOMER_FEATURES = dg.AssetKey(["gold", "customer_features"])
SEGMENT_MODEL = dg.AssetKey(["gold", "segment_model"])
CUSTOMER_SEGMENTS = dg.AssetKey(["gold", "customer_segments"])
SEGMENT_METRICS = dg.AssetKey(["gold", "segment_metrics"])


class SegmentationConfig(dg.Config):
    """Launchpad settings of the segmentation."""

    n_clusters: int = 4
    random_state: int = 42


@table_asset(BRONZE_PROFILES, "customer_profiles.csv as landed: every row as text, with its file and line.", "csv")
def bronze_customer_profiles(context: dg.AssetExecutionContext, landing: LandingResource) -> pl.DataFrame:
    root = landing.root()
    if not (root / profiles.PROFILES_FILE).is_file():
        context.log.warning(f"{root / profiles.PROFILES_FILE} is absent: profiles are empty this run")
    return reference.read_reference_csv(root, profiles.PROFILES_FILE, profiles.PROFILE_COLUMNS)


@dg.multi_asset(
    outs={
        "profiles": table_out(
            SILVER_PROFILES,
            "One profile per customer: merged duplicates, imputed ages, ISO dates, F/M + binary gender, E.164 mobiles.",
        ),
        "issues": table_out(
            PROFILE_ISSUES,
            "Every profile value that was unusable, conflicting or merged: file, line, field, raw value, reason.",
        ),
    },
    ins={"bronze": dg.AssetIn(BRONZE_PROFILES)},
    pool=POOL,
)
def silver_customer_profiles(bronze: pl.DataFrame) -> Iterator[dg.Output]:
    cleaned, issues = profiles.clean_profiles(bronze)
    yield dg.Output(
        cleaned,
        output_name="profiles",
        metadata={
            "rows_read": bronze.height,
            "ages_imputed": int(cleaned["age_imputed"].sum() or 0) if cleaned.height else 0,
            "mobiles_missing": cleaned.filter(pl.col("mobile_e164").is_null()).height,
        },
    )
    yield dg.Output(
        issues, output_name="issues", metadata={"issues_by_reason": dg.MetadataValue.json(counts_by(issues, "reason"))}
    )


def build_segmentation_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    weekly = weekly_asset_args(partitions_def)

    @table_asset(
        BRONZE_STORE_PURCHASES,
        "Store purchases of the week exactly as the purchase-history REST API served them.",
        "api",
        **weekly,
    )
    def bronze_store_purchases(
        context: dg.AssetExecutionContext, purchases_api: PurchasesApiResource
    ) -> dg.Output[WeeklyBatches]:
        weeks = weeks_of(context)

        def fetch(week: date) -> pl.DataFrame:
            result = purchases_api.fetch_week(week)
            if result.retries:
                context.log.warning(f"week {week}: {result.retries} request(s) retried ({result.retry_reasons})")
            return result.frame

        return dg.Output(
            WeeklyBatches(weeks, fetch), metadata={"api_url": purchases_api.base_url or "(bundled service)"}
        )

    @dg.multi_asset(
        outs={
            "matched": table_out(
                SILVER_STORE_PURCHASES,
                "Store purchases of the week: typed, deduplicated, matched to customers on E.164 mobile.",
            ),
            "quarantine": table_out(
                STORE_QUARANTINE,
                "Store purchase records rejected (duplicate, bad date or amount, unknown mobile) with reason.",
            ),
        },
        ins={"raw": dg.AssetIn(BRONZE_STORE_PURCHASES), "customer_profiles": dg.AssetIn(SILVER_PROFILES)},
        **weekly,
    )
    def silver_store_purchases(raw: WeeklyBatches, customer_profiles: pl.DataFrame) -> Iterator[dg.Output]:
        mobiles = customer_profiles.select("customer_id", "mobile_e164")
        rejected = SetAsidePerWeek(raw.weeks)

        def match(week: date, week_raw: pl.DataFrame) -> pl.DataFrame:
            matched, week_rejected = store_purchases.clean_store_purchases(week_raw, week, mobiles)
            rejected.keep(week, week_rejected)
            return matched

        yield dg.Output(raw.map(match), output_name="matched")
        # per week, the IO manager records the quarantine's row count and `quarantined_<reason>` figures
        yield dg.Output(rejected.batches(), output_name="quarantine")

    @table_asset(
        WEEKLY_ROLLUPS,
        "Per customer and week: online and store purchases and spend, first and last purchase time.",
        **weekly,
        ins={"lines": dg.AssetIn(TRANSACTION_LINES), "store": dg.AssetIn(SILVER_STORE_PURCHASES)},
    )
    def customer_weekly_rollups(lines: WeeklyBatches, store: WeeklyBatches) -> WeeklyBatches:
        return lines.map(lambda week, week_lines: features.weekly_rollup(week_lines, store.load(week), week))

    @table_asset(
        CUSTOMER_FEATURES,
        "One row per customer: frequency, spend, recency, CLV, loyalty and the scaled model inputs.",
        deps=[WEEKLY_ROLLUPS],
        automation_condition=FOLLOWS_INPUTS,
        ins={"customer_profiles": dg.AssetIn(SILVER_PROFILES), "customers": dg.AssetIn(SILVER_CUSTOMERS)},
    )
    def customer_features(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        customer_profiles: pl.DataFrame,
        customers: pl.DataFrame,
    ) -> pl.DataFrame:
        store = warehouse.get()
        aggregated = store.query(features.aggregate_rollups_sql("silver.customer_weekly_rollups"))
        history_start, last_week = store.query(features.rollup_weeks_sql("silver.customer_weekly_rollups")).row(0)
        if last_week is None:
            raise dg.Failure("silver/customer_weekly_rollups is empty: materialize some weeks of history first")
        as_of = last_week + timedelta(days=6)  # the Sunday ending the last complete week
        result = features.customer_features(
            aggregated, customer_profiles, customers, as_of, history_start=history_start
        )
        context.add_output_metadata(
            {"as_of": as_of.isoformat(), "weeks_of_history": int((last_week - history_start).days // 7 + 1)}
        )
        return result

    @dg.asset(
        key=SEGMENT_MODEL,
        kinds={"scikit-learn", "duckdb"},
        pool=POOL,
        ins={"customer_features": dg.AssetIn(CUSTOMER_FEATURES)},
        automation_condition=FOLLOWS_INPUTS,
        description="The fitted KMeans segmentation (scaler, centroids, names), pickled in one row.",
    )
    def segment_model(
        context: dg.AssetExecutionContext, config: SegmentationConfig, customer_features: pl.DataFrame
    ) -> pl.DataFrame:
        model = segments.fit_segments(customer_features, n_clusters=config.n_clusters, random_state=config.random_state)
        image = base64.b64encode(model.plot_png).decode()
        context.add_output_metadata(
            {
                "n_clusters": config.n_clusters,
                "inertia": float(model.inertia),
                "silhouette_score": float(model.silhouette),
                "segment_sizes": dg.MetadataValue.json(model.sizes),
                "segment_profile": dg.MetadataValue.md(markdown_table(model.profile)),
                "plot": dg.MetadataValue.md(f"![segments](data:image/png;base64,{image})"),
            }
        )
        return pl.DataFrame(
            [
                (
                    config.n_clusters,
                    config.random_state,
                    float(model.inertia),
                    float(model.silhouette),
                    pickle.dumps(model),
                )
            ],
            schema=segments.SEGMENT_MODEL_SCHEMA,
            orient="row",
        )

    @following_table(
        CUSTOMER_SEGMENTS,
        "Each customer's segment (id and name) from the stored model.",
        model=SEGMENT_MODEL,
        customer_features=CUSTOMER_FEATURES,
    )
    def customer_segments(model: pl.DataFrame, customer_features: pl.DataFrame) -> pl.DataFrame:
        return segments.assign_segments(load_segment_model(model), customer_features)

    @following_table(
        SEGMENT_METRICS,
        "Per segment: customers, total spend, average CLV, share of customers and of spend.",
        customer_segments=CUSTOMER_SEGMENTS,
        customer_features=CUSTOMER_FEATURES,
    )
    def segment_metrics(customer_segments: pl.DataFrame, customer_features: pl.DataFrame) -> pl.DataFrame:
        return segments.segment_metrics(customer_segments, customer_features)

    return [
        bronze_store_purchases,
        silver_store_purchases,
        customer_weekly_rollups,
        customer_features,
        segment_model,
        customer_segments,
        segment_metrics,
    ]


def load_segment_model(stored: pl.DataFrame) -> segments.SegmentModel:
    """The model pickled by `segment_model` (the warehouse is ours: we unpickle only what we wrote)."""
    return pickle.loads(stored["model_pickle"][0])


SEGMENTATION_REFERENCE_ASSETS = [bronze_customer_profiles, silver_customer_profiles]
