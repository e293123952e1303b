"""The product-views assets as Dagster runs them: the gold table and the published snapshot equal an independent
computation over the raw landing files, the API serves them, and every week reconciles."""

from collections import Counter
from datetime import timedelta

import dagster as dg
import polars as pl

from custpipe_assets.core.warehouse import Warehouse


def _as_counts(frame: pl.DataFrame) -> Counter:
    return Counter(
        {
            (m, p, c): (v, n)
            for m, p, c, v, n in frame.select("minute_local", "platform", "product", "views", "purchases").rows()
        }
    )


def test_gold_ctr_per_minute_matches_the_raw_files(sample_run, reference_counts_of):
    settings = sample_run.settings
    assert sample_run.summary.success
    gold = Warehouse(settings.warehouse).read("gold.ctr_per_minute")
    expected = {
        key: (views, len(orders))
        for key, (views, orders) in reference_counts_of(settings.landing_dir / "amaro").items()
        if views or orders
    }
    actual = _as_counts(gold)
    # the warehouse holds only the materialized weeks (UTC); compare on the minutes they cover
    first = min(sample_run.summary.weeks_of("product_views"))
    last = max(sample_run.summary.weeks_of("product_views")) + timedelta(days=7)
    in_range = {key: value for key, value in expected.items() if first <= (key[0] + timedelta(hours=3)).date() < last}
    assert dict(actual) == in_range
    assert gold["week_start"].n_unique() >= 2


def test_the_snapshot_is_published_for_the_api(sample_run):
    snapshot = pl.read_parquet(sample_run.settings.ctr_snapshot)
    gold = Warehouse(sample_run.settings.warehouse).read("gold.ctr_per_minute")
    assert _as_counts(snapshot) == _as_counts(gold)


def test_view_weeks_reconcile(sample_run):
    passed = sample_run.summary.checks_passed
    assert "silver/product_views:reconciles" in passed and "gold/ctr_per_minute:schema" in passed


def test_the_planted_dirt_is_quarantined_under_reason_codes_in_the_core_contract(sample_run):
    """The generator plants (see sample/product_views.py): a ragged order line, an order date with slashes, an
    unknown status, a duplicated order line, two items with a malformed code_color, an item of an absent order, a
    truncated MobileWeb file, a view without codeColor, one with a non-numeric timestamp, a batch delivered twice."""
    warehouse = Warehouse(sample_run.settings.warehouse)
    contract = ["source_file", "line_number", "position", "reason", "detail", "raw"]
    tables = {}
    for table, weekly in [
        ("bronze.order_rejects", False),
        ("bronze.product_view_rejects", True),
        ("silver.purchase_quarantine", False),
        ("silver.product_view_quarantine", True),
    ]:
        tables[table] = warehouse.read(table)
        assert tables[table].columns == (["week_start"] if weekly else []) + contract, table
        assert f"{table.replace('.', '/')}:schema" in sample_run.summary.checks_passed

    def codes(table: str) -> set[str]:
        return set(tables[table]["reason"])

    assert codes("bronze.order_rejects") == {"too_few_fields", "invalid_order_date"}
    assert tables["bronze.order_rejects"]["source_file"].unique().to_list() == ["amaro/orders.csv"]
    assert codes("bronze.product_view_rejects") == {"unreadable_json", "invalid_timestamp"}
    truncated = tables["bronze.product_view_rejects"].filter(reason="unreadable_json").row(0, named=True)
    assert truncated["source_file"].startswith("amaro/product_views/MobileWeb/")
    assert truncated["line_number"] is None and truncated["position"] is None, "a whole file"
    assert (
        tables["bronze.product_view_rejects"]
        .filter(reason="invalid_timestamp")["position"]
        .str.contains(r"^batch \d+ event \d+$")
        .all()
    )
    purchases = codes("silver.purchase_quarantine")
    assert {"unknown_order_status", "duplicate_order_id", "orphan_item"} <= purchases
    assert purchases - {"unknown_order_status", "duplicate_order_id", "orphan_item"} <= {
        "item_without_code_color",
        "invalid_code_color",
    }, "the two malformed code_colors ('', N/A or 20005748-001)"
    assert tables["silver.purchase_quarantine"]["line_number"].null_count() == 0, "every row names its CSV line"
    assert codes("silver.product_view_quarantine") == {"duplicate_event", "view_without_code_color"}


def test_each_week_of_view_rejects_reports_its_rows_per_reason_code(sample_run):
    warehouse = Warehouse(sample_run.settings.warehouse)
    for key in (["bronze", "product_view_rejects"], ["silver", "product_view_quarantine"]):
        table = warehouse.read(".".join(key))
        records = sample_run.instance.fetch_materializations(dg.AssetKey(key), limit=100).records
        reported = {}
        for record in records:
            materialization = record.asset_materialization
            for name, value in materialization.metadata.items():
                if name.startswith("quarantined_"):
                    reported[(materialization.partition, name.removeprefix("quarantined_"))] = value.value
        expected = {
            (str(week), reason): count for week, reason, count in table.group_by("week_start", "reason").len().rows()
        }
        assert reported == expected, key
