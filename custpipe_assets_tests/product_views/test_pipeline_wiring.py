"""The product-views assets as Dagster runs them: the gold table and the published snapshot equal an independent
computation over the raw landing files, the API serves them, and every week reconciles."""

from collections import Counter
from datetime import timedelta

import polars as pl

from custpipe_assets.core.warehouse import Warehouse


def _as_counts(frame: pl.DataFrame) -> Counter:
    return Counter({(m, p, c): (v, n) for m, p, c, v, n in frame.select("minute_local", "platform", "product", "views", "purchases").rows()})


def test_gold_ctr_per_minute_matches_the_raw_files(sample_run, reference_counts_of):
    settings = sample_run.settings
    assert sample_run.summary.success
    gold = Warehouse(settings.warehouse).read("gold.ctr_per_minute")
    expected = {key: (views, len(orders)) for key, (views, orders) in reference_counts_of(settings.landing_dir / "amaro").items()
                if views or orders}
    actual = _as_counts(gold)
    # the warehouse holds only the materialized weeks (UTC); compare on the minutes they cover
    first = min(sample_run.summary.weeks_of("product_views"))
    last = max(sample_run.summary.weeks_of("product_views")) + timedelta(days=7)
    in_range = {key: value for key, value in expected.items()
                if first <= (key[0] + timedelta(hours=3)).date() < last}
    assert dict(actual) == in_range
    assert gold["week_start"].n_unique() >= 2


def test_the_snapshot_is_published_for_the_api(sample_run):
    snapshot = pl.read_parquet(sample_run.settings.ctr_snapshot)
    gold = Warehouse(sample_run.settings.warehouse).read("gold.ctr_per_minute")
    assert _as_counts(snapshot) == _as_counts(gold)


def test_view_weeks_reconcile(sample_run):
    passed = sample_run.summary.checks_passed
    assert "silver/product_views:reconciles" in passed and "gold/ctr_per_minute:schema" in passed
