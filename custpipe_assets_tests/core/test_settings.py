"""Settings read from the environment, and handed on to a child process exactly."""

from datetime import date
from pathlib import Path

from custpipe_assets.core.settings import Settings


def test_a_child_process_environment_carries_exactly_these_settings(tmp_path):
    settings = Settings(
        landing_dir=tmp_path / "landing",
        warehouse=tmp_path / "w.duckdb",
        first_week=date(2019, 1, 7),
        purchases_api_url="http://127.0.0.1:9/",
        ctr_snapshot=tmp_path / "ctr.parquet",
    )
    developer = {"PATH": "/usr/bin", "CUSTPIPE_WAREHOUSE": "/home/me/prod.duckdb", "CUSTPIPE_SOMETHING_OLD": "x"}
    environment = settings.environment(developer)
    assert environment["PATH"] == "/usr/bin" and "CUSTPIPE_SOMETHING_OLD" not in environment
    assert Settings.from_env(environment) == settings

    without_api = Settings(landing_dir=Path("/l"), warehouse=Path("/w.duckdb"), first_week=date(2018, 9, 3))
    assert "CUSTPIPE_PURCHASES_API_URL" not in without_api.environment({"CUSTPIPE_PURCHASES_API_URL": "http://x"})
