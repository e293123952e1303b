"""The shared check builders of `core.checks` over a small weekly warehouse: what they report, and that a check opens
the warehouse file once however many queries it runs (an opening costs about 15 ms)."""

import contextlib
from datetime import date

import dagster as dg
import pandera.polars as pa
import polars as pl
import pytest

from custpipe_assets.core.checks import schema_check, weekly_reconciliation
from custpipe_assets.core.partitions import week_range_tags, weekly_partitions
from custpipe_assets.core.warehouse import Warehouse, WarehouseResource

W1, W2 = date(2018, 9, 3), date(2018, 9, 10)
WEEKLY = weekly_partitions(W1)
BRONZE, SILVER, QUARANTINE = (dg.AssetKey(key) for key in (["bronze", "lines"], ["silver", "lines"], ["silver", "bad"]))


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    """Week 1 balances (3 in = 2 out + 1 quarantined); week 2 lost a row (2 in, 1 out)."""
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    warehouse.replace_weeks("bronze.lines", [(W1, pl.DataFrame({"x": [1, 2, 3]})), (W2, pl.DataFrame({"x": [4, 5]}))])
    warehouse.replace_weeks("silver.lines", [(W1, pl.DataFrame({"x": [1, 2]})), (W2, pl.DataFrame({"x": [4]}))])
    warehouse.replace_weeks("silver.bad", [(W1, pl.DataFrame({"x": [3]})), (W2, pl.DataFrame(schema={"x": pl.Int64}))])
    return warehouse


@pytest.fixture
def openings(monkeypatch) -> list[str]:
    """Every `Warehouse.connect` while a check runs, by warehouse path."""
    opened: list[str] = []
    original = Warehouse.connect

    @contextlib.contextmanager
    def counted(self):
        opened.append(str(self.path))
        with original(self) as connection:
            yield connection

    monkeypatch.setattr(Warehouse, "connect", counted)
    return opened


def _evaluate(warehouse: Warehouse, check: dg.AssetChecksDefinition) -> dg.AssetCheckEvaluation:
    """Run `check` alone over weeks 1 and 2 of tables that exist already (the assets as specs)."""
    definitions = dg.Definitions(
        assets=[dg.AssetSpec(key, partitions_def=WEEKLY) for key in (BRONZE, SILVER, QUARANTINE)],
        asset_checks=[check],
        jobs=[dg.define_asset_job("checks", selection=dg.AssetSelection.checks(check), partitions_def=WEEKLY)],
        resources={"warehouse": WarehouseResource(path=str(warehouse.path))},
    )
    with dg.instance_for_test() as instance:
        result = definitions.resolve_job_def("checks").execute_in_process(
            instance=instance, tags=week_range_tags(W1, W2), raise_on_error=False
        )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_a_weekly_reconciliation_counts_each_side_per_week_over_one_opening(warehouse, openings):
    check = weekly_reconciliation(
        SILVER, BRONZE, QUARANTINE, description="in = out + quarantined", partitions_def=WEEKLY
    )
    evaluation = _evaluate(warehouse, check)
    metadata = {name: value.value for name, value in evaluation.metadata.items()}
    assert not evaluation.passed
    assert {name: metadata[name] for name in ("failure_count", "rows_in", "rows_out", "rows_quarantined")} == {
        "failure_count": 1,
        "rows_in": 5,
        "rows_out": 3,
        "rows_quarantined": 1,
    }
    assert "| 2018-09-10 | 2 | 1 | 0 | 1 |" in metadata["sample_failing_rows"]
    assert openings == [str(warehouse.path)], "the three counts share one connection"


def test_a_schema_with_a_custom_check_is_validated_week_by_week_in_polars(warehouse, openings):
    odd = pa.Check(lambda column: column % 2 == 1, element_wise=False, error="odd")  # no SQL for it: Pandera
    schema = pa.DataFrameSchema({"x": pa.Column(pl.Int64, odd)}, strict=False, description="odd x")
    evaluation = _evaluate(warehouse, schema_check(SILVER, schema, partitions_def=WEEKLY, blocking=False))
    metadata = {name: value.value for name, value in evaluation.metadata.items()}
    assert not evaluation.passed
    assert (metadata["rows_checked"], metadata["failure_count"]) == (3, 2)  # x = 2 and 4 are even
    assert "validated_in" not in metadata
    assert len(openings) == 1 + 2  # the check's connection, then a read per week while it is still open
