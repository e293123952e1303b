"""Shared fixtures: temporary landing folders, warehouses and Dagster instances; never the repository's data/."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from custpipe_assets.core.settings import Settings
from custpipe_assets.run import RunSummary, run_everything
from custpipe_assets.sample import generate_sample

FIRST_WEEK = date(2018, 9, 3)


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
        landing_dir=root / "landing", warehouse=root / "warehouse.duckdb", first_week=FIRST_WEEK,
        ctr_snapshot=root / "serving" / "ctr_per_minute.parquet", reports_dir=root / "reports",
    )
    with dg.instance_for_test() as instance:
        yield SampleRun(settings, run_everything(settings, instance=instance, log=lambda *_: None), instance)


@pytest.fixture(scope="session")
def sample_landing(sample_run) -> Path:
    return sample_run.settings.landing_dir
