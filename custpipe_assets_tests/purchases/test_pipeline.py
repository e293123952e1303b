"""The transactions pipeline end to end: generated sample -> Dagster run over several weeks -> a real DuckDB file,
checked against an expectation computed independently (plain Python and json over the raw landing files)."""

import csv
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from custpipe_assets.core.settings import Settings, SettingsError
from custpipe_assets.core.warehouse import Warehouse, WarehouseUnavailableError
from custpipe_assets.definitions import DOMAINS, EVERYTHING_JOB, build_definitions
from custpipe_assets.run import landed_weeks, run_everything

FIRST_WEEK = date(2018, 9, 3)


@pytest.fixture(scope="module")
def landing(sample_landing) -> Path:
    return sample_landing


@pytest.fixture(scope="module")
def materialized(sample_run):
    """The main job's one run over every landed week (the session's sample run)."""
    return sample_run.settings, sample_run.summary, sample_run.instance


def test_weekly_counts_match_an_independent_computation(materialized, landing, expected_counts_of):
    settings, summary, _ = materialized
    assert summary.success, summary
    assert len(summary.weeks) >= 2
    gold = Warehouse(settings.warehouse).read("gold.customer_product_purchases")
    assert gold.columns == [
        "week_start",
        "customer_id",
        "loyalty_score",
        "product_id",
        "product_category",
        "purchase_count",
    ]
    actual = Counter(
        {(w, c, p): n for w, c, p, n in gold.select("week_start", "customer_id", "product_id", "purchase_count").rows()}
    )
    expected = expected_counts_of(landing)
    assert actual == expected
    assert len({week for week, _, _ in actual}) >= 2


def test_every_check_passes_and_every_week_reconciles(materialized):
    _, summary, _ = materialized
    assert summary.checks_failed == []
    assert any(label.endswith(":reconciles") for label in summary.checks_passed)
    # the planted missing day folder is reported as a warning, not silently ignored
    assert "bronze/transactions:source_present" in summary.checks_warned


def test_the_planted_dirt_is_quarantined_with_its_reason(materialized, landing):
    settings, _, _ = materialized
    quarantine = Warehouse(settings.warehouse).read("silver.transaction_quarantine")
    rejected = {(row["source_file"], row["line_number"]): row["reason"] for row in quarantine.iter_rows(named=True)}
    expected_reason = {
        "malformed_json": {"malformed_json"},
        "missing_field": {"missing_customer_id", "missing_price"},
        "wrong_type": {"invalid_price"},
        "duplicate": {"duplicate_transaction"},
        "unknown_product": {"unknown_product"},
        "unknown_customer": {"unknown_customer"},
        "zero_price": {"non_positive_price"},
        "negative_price": {"non_positive_price"},
        "blank_line": {"blank_line"},
        "empty_basket": {"empty_basket"},
    }
    dirt = list(csv.DictReader((landing / "_truth" / "transaction_dirt.csv").read_text().splitlines()))
    line_dirt = [row for row in dirt if row["kind"] in expected_reason]
    assert {row["kind"] for row in line_dirt} == set(expected_reason)
    for row in line_dirt:
        reason = rejected.get((row["source_file"], int(row["line_number"])))
        assert reason in expected_reason[row["kind"]], (row, reason)


def test_rerunning_a_week_replaces_it(materialized):
    settings, _, instance = materialized
    warehouse = Warehouse(settings.warehouse)
    before = {
        table: warehouse.read(table).sort(warehouse.read(table).columns)
        for table in (
            "bronze.transactions",
            "silver.transaction_lines",
            "silver.transaction_quarantine",
            "gold.customer_product_purchases",
        )
    }
    job = build_definitions(settings).resolve_job_def(EVERYTHING_JOB)
    result = job.execute_in_process(instance=instance, partition_key=landed_weeks(settings)[1].isoformat())
    assert result.success
    for table, frame in before.items():
        assert warehouse.read(table).sort(frame.columns).equals(frame), table


def test_definitions_load_with_every_asset_described_grouped_and_checked():
    definitions = build_definitions(
        Settings(landing_dir=Path("/nonexistent"), warehouse=Path("/tmp/x.duckdb"), first_week=FIRST_WEEK)
    )
    graph = definitions.get_repository_def().asset_graph
    keys = graph.get_all_asset_keys()
    assert dg.AssetKey(["gold", "customer_product_purchases"]) in keys
    for key in keys:
        node = graph.get(key)
        assert node.description, key
        assert node.group_name in DOMAINS and node.tags.get("domain") == node.group_name, key
        assert key.path[0] in node.kinds and key.path[0] in ("bronze", "silver", "gold"), "the layer as a kind badge"
        assert node.owners, key
    checked = {check.asset_key for check in graph.asset_check_keys}
    assert checked >= {
        dg.AssetKey(["silver", "transaction_lines"]),
        dg.AssetKey(["gold", "customer_product_purchases"]),
    }


def test_a_missing_landing_folder_is_one_clear_error(tmp_path):
    settings = Settings(landing_dir=tmp_path / "nowhere", warehouse=tmp_path / "w.duckdb", first_week=FIRST_WEEK)
    with pytest.raises(SettingsError, match="CUSTPIPE_LANDING_DIR") as error:
        run_everything(settings, log=lambda *_: None)
    assert str(tmp_path / "nowhere") in str(error.value)


def test_an_unreadable_warehouse_is_one_clear_error_naming_the_path_and_setting(landing, tmp_path):
    broken = tmp_path / "w.duckdb"
    broken.write_text("not a database")
    settings = Settings(landing_dir=landing, warehouse=broken, first_week=FIRST_WEEK)
    with pytest.raises(WarehouseUnavailableError) as error:
        run_everything(settings, log=lambda *_: None)
    assert str(broken) in error.value.description and "CUSTPIPE_WAREHOUSE" in error.value.description
    # and a run launched anyway (from the UI, say) fails its steps with the same message
    with dg.instance_for_test() as instance:
        job = build_definitions(settings).resolve_job_def(EVERYTHING_JOB)
        result = job.execute_in_process(instance=instance, partition_key=FIRST_WEEK.isoformat(), raise_on_error=False)
    assert not result.success
    errors = " ".join(
        str(event.step_failure_data.user_failure_data.description)
        for event in result.get_step_failure_events()
        if event.step_failure_data.user_failure_data
    )
    assert str(broken) in errors and "CUSTPIPE_WAREHOUSE" in errors
    assert broken.read_text() == "not a database"  # and the file was left alone


def _week_metadata(instance: dg.DagsterInstance, key: dg.AssetKey, week: date) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[week.isoformat()]), limit=1
    ).records
    return {name: value.value for name, value in records[0].asset_materialization.metadata.items()}


def test_each_week_records_its_data_quality_figures_as_the_tables_hold_them(materialized):
    settings, summary, instance = materialized
    warehouse = Warehouse(settings.warehouse)
    for table, key in (
        ("silver.transaction_quarantine", ["silver", "transaction_quarantine"]),
        ("silver.conversion_quarantine", ["silver", "conversion_quarantine"]),
    ):
        stored = warehouse.query(f"select week_start, reason, count(*) as n from {table} group by all")
        for week in summary.weeks_of("purchases"):
            expected = {f"quarantined_{reason}": n for _, reason, n in stored.filter(week_start=week).rows()}
            metadata = _week_metadata(instance, dg.AssetKey(key), week)
            assert {name: v for name, v in metadata.items() if name.startswith("quarantined_")} == expected, (
                table,
                week,
            )
            assert metadata["dagster/row_count"] == sum(expected.values())
    lines = warehouse.query("select week_start, count(*) as n from silver.transaction_lines group by 1")
    quarantined = warehouse.query("select week_start, count(*) as n from silver.transaction_quarantine group by 1")
    for week in summary.weeks_of("purchases"):
        metadata = _week_metadata(instance, dg.AssetKey(["silver", "transaction_lines"]), week)
        assert metadata["rows_written"] == dict(lines.rows()).get(week, 0)
        assert metadata["records_quarantined"] == dict(quarantined.rows()).get(week, 0)


def test_each_week_of_bronze_transactions_names_its_own_missing_day_files(materialized, landing):
    _settings, summary, instance = materialized
    for week in summary.weeks_of("purchases"):
        absent = [
            f"transactions/d={day}/transactions.json"
            for day in (week + timedelta(days=offset) for offset in range(7))
            if not (landing / "transactions" / f"d={day}" / "transactions.json").is_file()
        ]
        metadata = _week_metadata(instance, dg.AssetKey(["bronze", "transactions"]), week)
        assert metadata["missing_day_files"] == len(absent) and metadata["missing_day_files_list"] == absent, week
