"""The conversions assets as Dagster runs them: the weekly matches in the warehouse, put together, meet the accuracy
targets against the planted truth, and every landed line is accounted for."""

import polars as pl

from custpipe_assets.conversions.generate import read_planted_truth
from custpipe_assets.conversions.matching import match_quality
from custpipe_assets.core.warehouse import Warehouse


def test_weekly_matches_meet_the_accuracy_targets(sample_run):
    warehouse = Warehouse(sample_run.settings.warehouse)
    matches = warehouse.read("silver.conversion_matches")
    quality = match_quality(matches, read_planted_truth(sample_run.settings.landing_dir))
    print(f"pipeline matches: precision {quality.precision:.4f}, recall {quality.recall:.4f}")
    assert quality.precision >= 0.98 and quality.recall >= 0.95
    assert matches["registration_key"].n_unique() == matches.height  # one-to-one across weeks


def test_gold_has_every_conversion_and_the_checks_pass(sample_run):
    warehouse = Warehouse(sample_run.settings.warehouse)
    gold = warehouse.read("gold.conversions_matched")
    conversions = warehouse.read("silver.conversions")
    assert sorted(gold["conversion_id"]) == sorted(conversions["conversion_id"])
    matched = gold.filter(pl.col("registration_key").is_not_null())
    assert matched.height == warehouse.read("silver.conversion_matches").height
    assert matched["registration_registered_at"].null_count() == 0
    for label in ("silver/conversion_quarantine:reconciles", "silver/conversions:schema",
                  "silver/conversion_matches:registration_used_once"):
        assert label in sample_run.summary.checks_passed, label
    report_files = list((sample_run.settings.reports_dir / "conversions").glob("*.png"))
    assert report_files
