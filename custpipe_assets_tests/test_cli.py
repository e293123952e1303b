"""The `custpipe` command's start-up: the module itself loads nothing heavy (the commands import Dagster and the
domains with garbage collection paused), and the clear one-line errors still come out."""

import gc
import subprocess
import sys

from custpipe_assets.cli import main


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
