"""Shared fixtures: temporary landing folders, warehouses and Dagster instances; never the repository's data/."""

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from custpipe_assets.core.settings import Settings
from custpipe_assets.run import RunSummary, run_everything
from custpipe_assets.sample import generate_sample

FIRST_WEEK = date(2018, 9, 3)
# Fixtures that run Dagster end to end or start `dagster dev`: a test using one (directly or not) is `slow`.
SLOW_FIXTURES = {"sample_run", "run_cli", "dagster_ui"}


def pytest_collection_modifyitems(config, items):
    """`ui` for the browser tests, `slow` for end-to-end runs, so `make test-fast` can leave both out."""
    for item in items:
        if "ui" in item.path.parts:
            item.add_marker(pytest.mark.ui)
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def instance():
    """A real, temporary Dagster instance (run storage, event log) that lives for one test."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@dataclass
class SampleRun:
    settings: Settings
    summary: RunSummary
    instance: dg.DagsterInstance


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> SampleRun:
    """The main job, once per test process, over every domain's generated sample (seed 11), into temp paths."""
    root = tmp_path_factory.mktemp("sample_run")
    generate_sample(root / "landing", seed=11, first_week=FIRST_WEEK)
    settings = Settings(
        landing_dir=root / "landing",
        warehouse=root / "warehouse.duckdb",
        first_week=FIRST_WEEK,
        ctr_snapshot=root / "serving" / "ctr_per_minute.parquet",
        reports_dir=root / "reports",
    )
    with dg.instance_for_test() as instance:
        yield SampleRun(settings, run_everything(settings, instance=instance, log=lambda *_: None), instance)


@pytest.fixture(scope="session")
def sample_landing(sample_run) -> Path:
    return sample_run.settings.landing_dir


@dataclass
class CliRun:
    exit_code: int
    output: str
    settings: Settings


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capsys):
    """`custpipe run [args]` as a user runs it (the real command's `main`), over `landing` into temp paths and a
    fresh Dagster home; returns the exit code and what it printed."""
    from custpipe_assets.cli import main

    def run(landing: Path, *args: str) -> CliRun:
        monkeypatch.chdir(tmp_path)
        environment = {
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "CUSTPIPE_LANDING_DIR": str(landing),
            "CUSTPIPE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "CUSTPIPE_FIRST_WEEK": FIRST_WEEK.isoformat(),
            "CUSTPIPE_CTR_SNAPSHOT": str(tmp_path / "serving" / "ctr.parquet"),
            "CUSTPIPE_REPORTS_DIR": str(tmp_path / "reports"),
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("CUSTPIPE_PURCHASES_API_URL", raising=False)
        capsys.readouterr()
        exit_code = main(["run", *args])
        return CliRun(exit_code, capsys.readouterr().out, Settings.from_env())

    return run


@pytest.fixture
def landing_with(tmp_path):
    """`landing_with(source, *entries)`: a new landing folder holding only `entries` (files or folders) of
    `source`, as when one system's exports land alone."""

    def copy(source: Path, *entries: str) -> Path:
        target = tmp_path / "landing"
        target.mkdir()
        for entry in entries:
            if (source / entry).is_dir():
                shutil.copytree(source / entry, target / entry)
            else:
                (target / entry).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / entry, target / entry)
        return target

    return copy
