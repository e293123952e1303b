"""Runs started at the same time (a schedule, a sensor and a person, say) on one warehouse and one Dagster
instance all succeed: DuckDB allows one writer, so each waits for the file instead of failing on its lock."""

import subprocess
import sys
import textwrap
from datetime import date

import dagster as dg
import pytest

from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.definitions import build_definitions
from custpipe_assets.run import INSTANCE_YAML
from custpipe_assets.sample.customers import generate_customers_landing

RUN_ONE_WEEK = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from custpipe_assets.definitions import defs
    job = defs.resolve_job_def("weekly_transactions")
    result = job.execute_in_process(instance=dg.DagsterInstance.get(), partition_key=sys.argv[1], raise_on_error=False)
    sys.exit(0 if result.success else 1)
    """
)

pytestmark = pytest.mark.slow  # end-to-end Dagster runs or several processes


def test_overlapping_weekly_runs_all_succeed(tmp_path):
    landing, home = tmp_path / "landing", tmp_path / "dagster_home"
    generate_customers_landing(landing, seed=3, scale="small")
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    settings = Settings(landing_dir=landing, warehouse=tmp_path / "w.duckdb", first_week=date(2018, 9, 3))
    env = {**settings.environment(), "DAGSTER_HOME": str(home)}  # none of the developer's own CUSTPIPE_* settings
    # the reference tables the weekly job reads
    reference = (
        build_definitions(settings)
        .resolve_implicit_global_asset_job_def()
        .get_subset(
            asset_selection={
                dg.AssetKey(["bronze", "customers"]),
                dg.AssetKey(["bronze", "products"]),
                dg.AssetKey(["silver", "customers"]),
                dg.AssetKey(["silver", "products"]),
                dg.AssetKey(["silver", "reference_quarantine"]),
            }
        )
    )
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        assert reference.execute_in_process(instance=instance).success

    weeks = ["2018-09-03", "2018-09-10", "2018-09-17"]
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RUN_ONE_WEEK, week],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for week in weeks
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], [output[-1500:] for output in outputs]

    gold = Warehouse(settings.warehouse).query(
        "select distinct cast(week_start as varchar) as week from gold.customer_product_purchases order by 1"
    )
    assert gold["week"].to_list() == weeks
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        statuses = [record.dagster_run.status for record in instance.get_run_records()]
    assert statuses.count(dg.DagsterRunStatus.SUCCESS) == len(weeks) + 1
