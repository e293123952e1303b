"""The warehouse as a DuckLake behind the same interface: the IO manager, the SQL checks and the main job work on
it as on the DuckDB file. A DuckDB-file catalog here (no server needed); the cluster tests use PostgreSQL."""

from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from custpipe_assets.core import ducklake
from custpipe_assets.core.checks import reconcile, weekly_row_count_sql
from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import Warehouse, WarehouseUnavailableError
from custpipe_assets.run import run_everything
from custpipe_assets.sample import generate_sample

WEEK_1, WEEK_2 = date(2018, 9, 3), date(2018, 9, 10)


def lake(tmp_path: Path) -> Warehouse:
    return Warehouse(f"ducklake:{tmp_path / 'catalog.ducklake'}", data_path=str(tmp_path / "lake"))


def week_frame(week: date, rows: int) -> pl.DataFrame:
    return pl.DataFrame({"week_start": [week] * rows, "customer_id": [f"C{n}" for n in range(rows)]})


def test_settings_take_a_ducklake_target_as_written_and_its_data_path(tmp_path):
    settings = Settings.from_env(
        {
            "CUSTPIPE_WAREHOUSE": "ducklake:postgres:dbname=lake host=db.internal",
            "CUSTPIPE_DUCKLAKE_DATA_PATH": "s3://bucket/lake/",
        }
    )
    assert settings.warehouse == "ducklake:postgres:dbname=lake host=db.internal"
    assert settings.ducklake_data_path == "s3://bucket/lake/"
    assert Settings.from_env(settings.environment({})).warehouse == settings.warehouse
    relative = Settings.from_env({"CUSTPIPE_WAREHOUSE": "ducklake:x", "CUSTPIPE_DUCKLAKE_DATA_PATH": "data/lake"})
    assert Path(relative.ducklake_data_path).is_absolute()
    assert Settings.from_env({}).warehouse == Path("data/warehouse.duckdb").absolute()  # the default is unchanged


def test_weeks_are_replaced_and_read_by_the_same_names_as_in_the_duckdb_file(tmp_path):
    warehouse = lake(tmp_path)
    written = warehouse.replace_weeks(
        "silver.lines", [(WEEK_1, week_frame(WEEK_1, 3)), (WEEK_2, week_frame(WEEK_2, 2))]
    )
    assert written.rows == {WEEK_1: 3, WEEK_2: 2}
    warehouse.replace_week("silver.lines", WEEK_1, week_frame(WEEK_1, 1))  # a re-run replaces its week only
    assert warehouse.read("silver.lines", [WEEK_1]).height == 1
    assert warehouse.read("silver.lines").height == 3
    warehouse.replace_table("gold.totals", pl.DataFrame({"n": [1, 2]}))
    warehouse.replace_table("gold.totals", pl.DataFrame({"n": [3]}))
    assert warehouse.read("gold.totals")["n"].to_list() == [3]
    assert warehouse.read("gold.never_written").is_empty()
    assert dict(warehouse.table_counts().iter_rows()) == {"gold.totals": 1, "silver.lines": 3}


def test_reconciliation_sql_runs_on_the_lake(tmp_path):
    warehouse = lake(tmp_path)
    warehouse.replace_weeks("bronze.records", [(WEEK_1, week_frame(WEEK_1, 5))])
    warehouse.replace_weeks("silver.records", [(WEEK_1, week_frame(WEEK_1, 4))])
    warehouse.replace_weeks("silver.records_quarantine", [(WEEK_1, week_frame(WEEK_1, 1))])
    report = reconcile(
        warehouse.query,
        weekly_row_count_sql("bronze.records"),
        weekly_row_count_sql("silver.records"),
        weekly_row_count_sql("silver.records_quarantine"),
        [WEEK_1],
    )
    assert report.select("rows_in", "rows_out", "rows_quarantined", "difference").row(0) == (5, 4, 1, 0)


def test_an_unreachable_catalog_names_both_settings(tmp_path):
    warehouse = Warehouse(f"ducklake:{tmp_path / 'missing' / 'no' / 'catalog.ducklake'}")
    with pytest.raises(WarehouseUnavailableError) as raised, warehouse.connect():
        pass
    assert "CUSTPIPE_WAREHOUSE" in raised.value.description
    assert "CUSTPIPE_DUCKLAKE_DATA_PATH" in raised.value.description


def test_a_lost_commit_race_is_redone_and_other_errors_are_not():
    calls = []

    def conflicting() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise duckdb.TransactionException("Failed to commit DuckLake transaction: Transaction conflict")
        return "committed"

    assert ducklake.retry_conflicts(conflicting, first_wait_s=0.001) == "committed"
    assert len(calls) == 3

    def broken() -> None:
        calls.append(1)
        raise duckdb.CatalogException("Table with name nope does not exist")

    calls.clear()
    with pytest.raises(duckdb.CatalogException):
        ducklake.retry_conflicts(broken, first_wait_s=0.001)
    assert len(calls) == 1


def test_lock_keys_are_per_table_and_week():
    keys = {ducklake.lock_key(table, week) for table in ("silver.a", "silver.b") for week in (WEEK_1, WEEK_2, None)}
    assert len(keys) == 6
    assert ducklake.lock_key("silver.a", WEEK_1) == ducklake.lock_key("silver.a", WEEK_1)


@pytest.mark.slow
def test_the_purchases_domain_on_a_ducklake_matches_the_oracle(tmp_path, expected_counts_of, settings_under):
    """The main job (every asset and check of the purchases domain) into a DuckLake: checks pass, counts match."""
    settings = settings_under(
        tmp_path, warehouse=f"ducklake:{tmp_path / 'catalog.ducklake'}", ducklake_data_path=str(tmp_path / "lake")
    )
    generate_sample(settings.landing_dir, seed=11, first_week=settings.first_week)
    with dg.instance_for_test() as instance:
        summary = run_everything(settings, instance=instance, domains=["purchases"], log=lambda *_: None)
    assert summary.success
    assert not summary.checks_failed
    gold = Warehouse(settings.warehouse, data_path=settings.ducklake_data_path).read("gold.customer_product_purchases")
    counts = Counter(
        {
            (w, c, p): n
            for w, c, p, n in gold.select("week_start", "customer_id", "product_id", "purchase_count").iter_rows()
        }
    )
    assert gold.height == len(counts)
    assert counts == expected_counts_of(settings.landing_dir)
