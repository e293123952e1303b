"""The `custpipe` command's start-up: the module itself loads nothing heavy (the commands import Dagster and the
domains with garbage collection paused), and the clear one-line errors still come out."""

import gc
import re
import subprocess
import sys
from dataclasses import replace
from datetime import date

import dagster as dg
import pytest

from custpipe_assets.cli import main
from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import Warehouse


def test_importing_the_command_line_loads_neither_dagster_nor_the_data_libraries():
    probe = (
        "import sys, custpipe_assets.cli; print(sorted({'dagster', 'polars', 'duckdb', 'pandas'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_unopenable_warehouse_is_one_line_and_exit_code_2_with_collection_as_before(tmp_path, monkeypatch, capsys):
    landing, broken = tmp_path / "landing", tmp_path / "w.duckdb"
    landing.mkdir()
    (landing / "customers.csv").write_text("customer_id\n")  # landed: the sample generator leaves it alone
    broken.write_text("not a database")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("CUSTPIPE_LANDING_DIR", str(landing))
    monkeypatch.setenv("CUSTPIPE_WAREHOUSE", str(broken))
    frozen = gc.get_freeze_count()

    assert main(["run"]) == 2

    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("custpipe: cannot open the DuckDB warehouse at ")
    assert str(broken) in error[0] and "CUSTPIPE_WAREHOUSE" in error[0]
    assert gc.isenabled() and gc.get_freeze_count() == frozen  # what start-up froze is collectable again


def test_a_settings_error_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("CUSTPIPE_LANDING_DIR", str(tmp_path / "nowhere"))
    assert main(["run"]) == 2
    assert capsys.readouterr().err.startswith(f"custpipe: landing folder {tmp_path / 'nowhere'} does not exist")


@pytest.mark.slow
def test_the_command_run_as_a_process_leaves_its_run_and_tables_recorded(tmp_path):
    """`custpipe` freezes what is left at exit (so the interpreter does not collect it): the run, its events and
    the tables must all be there for the next process."""
    landing, home = tmp_path / "landing", tmp_path / "dagster_home"
    (landing / "transactions" / "d=2018-09-04").mkdir(parents=True)
    (landing / "customers.csv").write_text("customer_id,loyalty_score\nC000001,9\n")
    (landing / "products.csv").write_text("product_id,product_description,product_category\nP0001,Gym Bag,sports\n")
    (landing / "transactions" / "d=2018-09-04" / "transactions.json").write_text(
        '{"customer_id": "C000001", "basket": [{"product_id": "P0001", "price": 35}], '
        '"date_of_purchase": "2018-09-04 00:00:00"}\n'
    )
    settings = Settings(landing_dir=landing, warehouse=tmp_path / "w.duckdb", first_week=date(2018, 9, 3))
    settings = replace(settings, reports_dir=tmp_path / "reports")
    env = {**settings.environment(), "DAGSTER_HOME": str(home)}
    command = [sys.executable, "-c", "import sys; from custpipe_assets.cli import main; sys.exit(main())", "run"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "purchases: run " in done.stdout and "gold.customer_product_purchases" in done.stdout

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        [run] = instance.get_runs()
        evaluations = [
            record
            for record in instance.all_logs(run.run_id)
            if record.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ]
        assert run.status == dg.DagsterRunStatus.SUCCESS
    printed = re.search(r"checks: (\d+) passed, (\d+) failed, (\d+) warned", done.stdout)
    assert printed and len(evaluations) == sum(int(count) for count in printed.groups())
    counts = Warehouse(settings.warehouse).table_counts()
    assert dict(counts.iter_rows())["gold.customer_product_purchases"] == 1
    assert (tmp_path / "reports" / "check_report.json").exists()
