"""Silver schema checks block: a silver table that fails its schema never reaches gold in the same run."""

import dagster as dg
import pandera.polars as pa
import polars as pl

from custpipe_assets.core.checks import schema_check
from custpipe_assets.core.io_manager import WarehouseIOManager
from custpipe_assets.core.warehouse import Warehouse, WarehouseResource

POSITIVE = pa.DataFrameSchema({"amount": pa.Column(pl.Int64, pa.Check.gt(0))}, description="amounts are positive")


def _run(tmp_path, amounts: list[int]) -> tuple[dg.ExecuteInProcessResult, Warehouse]:
    path = tmp_path / "warehouse.duckdb"

    @dg.asset(key=["silver", "amounts"])
    def silver_amounts() -> pl.DataFrame:
        return pl.DataFrame({"amount": amounts}, schema={"amount": pl.Int64})

    @dg.asset(key=["gold", "total"], ins={"amounts": dg.AssetIn(["silver", "amounts"])})
    def gold_total(amounts: pl.DataFrame) -> pl.DataFrame:
        return amounts.select(pl.col("amount").sum())

    check = schema_check(dg.AssetKey(["silver", "amounts"]), POSITIVE)
    resources = {"io_manager": WarehouseIOManager(path=str(path)), "warehouse": WarehouseResource(path=str(path))}
    definitions = dg.Definitions(assets=[silver_amounts, gold_total], asset_checks=[check], resources=resources)
    result = definitions.resolve_implicit_global_asset_job_def().execute_in_process(raise_on_error=False)
    return result, Warehouse(path)


def test_a_failing_silver_schema_stops_gold_and_a_passing_one_does_not(tmp_path):
    bad, warehouse = _run(tmp_path / "bad", [5, -1])
    assert not bad.success
    evaluations = bad.get_asset_check_evaluations()
    assert [(e.check_name, e.passed) for e in evaluations] == [("schema", False)]
    materialized = {event.asset_key.to_user_string() for event in bad.get_asset_materialization_events()}
    assert materialized == {"silver/amounts"}, "gold/total never ran on a failing silver table"
    assert warehouse.read("gold.total").is_empty()

    good, warehouse = _run(tmp_path / "good", [5, 1])
    assert good.success
    assert warehouse.read("gold.total")["amount"].to_list() == [6]
