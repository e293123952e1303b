"""Shared fixtures: temporary landing folders, warehouses and Dagster instances; never the repository's data/."""

import csv
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
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


@pytest.fixture(scope="session")
def settings_under():
    """`settings_under(root, **changes)`: Settings with every path under `root`, laid out as `data/` is by default
    (landing/, warehouse.duckdb, serving/ctr_per_minute.parquet, reports/), from FIRST_WEEK."""

    def make(root: Path, **changes) -> Settings:
        settings = Settings(
            landing_dir=root / "landing",
            warehouse=root / "warehouse.duckdb",
            first_week=FIRST_WEEK,
            ctr_snapshot=root / "serving" / "ctr_per_minute.parquet",
            reports_dir=root / "reports",
        )
        return replace(settings, **changes)

    return make


@dataclass
class SampleRun:
    settings: Settings
    summary: RunSummary
    instance: dg.DagsterInstance


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, settings_under) -> SampleRun:
    """The main job, once per test process, over every domain's generated sample (seed 11), into temp paths."""
    settings = settings_under(tmp_path_factory.mktemp("sample_run"))
    generate_sample(settings.landing_dir, seed=11, first_week=settings.first_week)
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
def run_cli(tmp_path, monkeypatch, capsys, settings_under):
    """`custpipe run [args]` as a user runs it (the real command's `main`), over `landing` into temp paths and a
    fresh Dagster home; returns the exit code and what it printed."""
    from custpipe_assets.cli import main

    def run(landing: Path, *args: str) -> CliRun:
        monkeypatch.chdir(tmp_path)
        environment = {
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            **settings_under(tmp_path, landing_dir=landing).environment(base={}),
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


def _csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows by header, whatever the line ends (`\\r\\r\\n`, `\\r\\n`, `\\n`), BOM and spaces around fields dropped."""
    lines = [line for line in re.split(r"\r*\n|\r", path.read_text(encoding="utf-8-sig")) if line.strip()]
    return [{key.strip(): (value or "").strip() for key, value in row.items()} for row in csv.DictReader(lines)]


def expected_counts(landing: Path) -> Counter:
    """The contract computed by hand: json.loads each line, skip what the README says is rejected, count items."""
    customers = {row["customer_id"] for row in _csv_rows(landing / "customers.csv")}
    products = {row["product_id"] for row in _csv_rows(landing / "products.csv")}
    seen, counts = set(), Counter()
    for path in sorted((landing / "transactions").glob("d=*/transactions.json")):
        day = date.fromisoformat(path.parent.name[2:])
        week = day - timedelta(days=day.weekday())
        for raw in path.read_text(encoding="utf-8-sig").splitlines():
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if (
                not isinstance(record, dict)
                or not record.get("customer_id")
                or not isinstance(record.get("basket"), list)
            ):
                continue
            try:
                purchased = datetime.strptime(record.get("date_of_purchase") or "", "%Y-%m-%d %H:%M:%S")
            except ValueError:
                continue
            if not week <= purchased.date() < week + timedelta(days=7):
                continue
            key = (record["customer_id"], record["date_of_purchase"], json.dumps(record["basket"], sort_keys=True))
            if key in seen or not record["basket"]:
                continue
            seen.add(key)
            for item in record["basket"]:
                price = item.get("price")
                if (
                    record["customer_id"] in customers
                    and item.get("product_id") in products
                    and isinstance(price, int | float)
                    and not isinstance(price, bool)
                    and price > 0
                ):
                    counts[(week, record["customer_id"], item["product_id"])] += 1
    return counts


@pytest.fixture(scope="session")
def expected_counts_of():
    return expected_counts
