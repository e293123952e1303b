"""Segmentation as Dagster runs it: store purchases from the real bundled API, features, KMeans segments and
metrics in the warehouse, checked against the planted personas and against the features' own totals."""

import csv
from datetime import date

import dagster as dg
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.definitions import build_definitions
from custpipe_assets.sample.purchases_service import start_service

pytestmark = pytest.mark.slow  # end-to-end Dagster runs or several processes


def test_segments_recover_the_planted_personas(sample_run):
    warehouse = Warehouse(sample_run.settings.warehouse)
    segments = warehouse.read("gold.customer_segments")
    personas = {
        row["customer_id"]: row["persona"]
        for row in csv.DictReader(
            (sample_run.settings.landing_dir / "_truth" / "personas.csv").read_text().splitlines()
        )
    }
    joined = segments.filter(pl.col("customer_id").is_in(list(personas)))
    assert joined.height == len(personas)
    score = adjusted_rand_score([personas[c] for c in joined["customer_id"]], joined["segment_id"].to_list())
    print(f"adjusted Rand index vs planted personas: {score:.3f}")
    assert score >= 0.8


def test_segment_metrics_add_up_to_the_features_exactly(sample_run):
    warehouse = Warehouse(sample_run.settings.warehouse)
    metrics = warehouse.read("gold.segment_metrics")
    features = warehouse.read("gold.customer_features")
    assert metrics["customers"].sum() == features.height
    assert metrics["total_spend"].sum() == features["total_spend"].sum()  # decimals: exact, not approximate
    # and the features' spend is every accepted online line plus every matched store purchase, nothing else
    lines = warehouse.query("select sum(cast(price as decimal(18, 2))) as spend from silver.transaction_lines")[
        "spend"
    ][0]
    store = warehouse.query("select sum(cast(amount as decimal(18, 2))) as spend from silver.store_purchases")["spend"][
        0
    ]
    assert features["total_spend"].sum() == lines + store


def test_customers_without_purchases_get_zeros_and_every_check_passes(sample_run):
    features = Warehouse(sample_run.settings.warehouse).read("gold.customer_features")
    for column in ("purchases", "total_spend", "purchase_frequency", "avg_transaction_value", "clv"):
        assert features[column].null_count() == 0, column
    labels = sample_run.summary.checks_passed
    for expected in (
        "silver/store_purchases:match_rate",
        "silver/store_purchases:reconciles",
        "gold/customer_segments:every_segment_row_has_a_customer",
        "gold/segment_metrics:adds_up_to_features",
    ):
        assert expected in labels


def test_an_api_that_keeps_failing_fails_the_run_with_the_url(sample_run, tmp_path):
    landing = sample_run.settings.landing_dir
    with start_service(landing, faults="500:*") as service:
        settings = Settings(
            landing_dir=landing,
            warehouse=tmp_path / "w.duckdb",
            first_week=date(2018, 9, 3),
            purchases_api_url=service.url,
        )
        definitions = build_definitions(settings)
        job = definitions.resolve_implicit_global_asset_job_def().get_subset(
            asset_selection={dg.AssetKey(["bronze", "store_purchases"])}
        )
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance, partition_key="2018-09-03", raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[-1].step_failure_data
    assert service.url in failure.user_failure_data.description and "500" in failure.user_failure_data.description
    with pytest.raises(Exception):  # noqa: B017  nothing was written: any error reading the table will do
        Warehouse(tmp_path / "w.duckdb").read("bronze.store_purchases").get_column("mobile")
