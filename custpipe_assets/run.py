"""The main job: materialize every asset, every week and every check into the warehouse, as one Dagster run
recorded in a persistent instance (so `make dev` shows it), then print what was written and where."""

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from custpipe_assets.core.partitions import week_range_tags, weekly_partitions
from custpipe_assets.core.settings import DEFAULT_LANDING_DIR, LANDING_DIR_ENV, Settings, SettingsError
from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.sample import generate_sample
from custpipe_assets.conversions.automation import LANDED_FILES as CONVERSION_FILES
from custpipe_assets.customers.automation import LANDED_FILES as TRANSACTION_FILES
from custpipe_assets.product_views.automation import LANDED_FILES as PRODUCT_VIEW_FILES
from custpipe_assets.definitions import EVERYTHING_JOB, build_definitions

DEFAULT_DAGSTER_HOME = "data/dagster_home"
LANDED_FILES = [TRANSACTION_FILES, CONVERSION_FILES, PRODUCT_VIEW_FILES]
INSTANCE_YAML = """\
# Written by `custpipe run` / `make dev` when absent. One concurrency slot for the warehouse pool: DuckDB allows
# one writing process, so runs started together by schedules, sensors and people queue instead of failing.
concurrency:
  pools:
    default_limit: 1
nux:
  enabled: false
telemetry:
  enabled: false
"""


@dataclass
class RunSummary:
    success: bool
    run_id: str
    weeks: list[date]
    tables: pl.DataFrame
    checks_passed: list[str] = field(default_factory=list)
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME (default data/dagster_home), created with our instance settings if new."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_DAGSTER_HOME).absolute())))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(INSTANCE_YAML)
    return home


def ensure_landing(settings: Settings, *, log=print) -> None:
    """Write the small sample into an empty landing folder; never touch one that has data; refuse a missing one.

    The default folder is created on first use so a fresh clone works; a folder the user named must exist.
    """
    landing = settings.landing_dir
    if not landing.exists():
        if landing != Path(DEFAULT_LANDING_DIR).absolute():
            raise SettingsError(f"landing folder {landing} does not exist. Set {LANDING_DIR_ENV} to an existing folder.")
        landing.mkdir(parents=True)
    if any(path.name != ".gitkeep" for path in landing.iterdir()):
        return
    log(f"landing folder {landing} is empty: writing the small sample data set (custpipe generate)")
    generate_sample(landing, first_week=settings.first_week)


def landed_weeks(settings: Settings) -> list[date]:
    """Mondays from CUSTPIPE_FIRST_WEEK to the last week any landed file has data for (transaction days,
    conversion and broker lines, product views), at least the first week and at most the last complete one."""
    found = set().union(*(landed.weeks(settings.landing_dir) for landed in LANDED_FILES))
    last_key = weekly_partitions(settings.first_week).get_last_partition_key()
    last_complete = date.fromisoformat(last_key) if last_key else settings.first_week
    last_week = min(max(found, default=settings.first_week), last_complete)
    weeks, week = [], settings.first_week
    while week <= last_week:
        weeks.append(week)
        week += timedelta(days=7)
    return weeks


def run_everything(settings: Settings, *, instance: dg.DagsterInstance | None = None, log=print) -> RunSummary:
    ensure_landing(settings, log=log)
    with Warehouse(settings.warehouse).connect():  # one clear error up front rather than a failure in every step
        pass
    weeks = landed_weeks(settings)
    job = build_definitions(settings).resolve_job_def(EVERYTHING_JOB)
    instance = instance or dg.DagsterInstance.get()
    log(f"materializing every asset and check for weeks {weeks[0]} .. {weeks[-1]} ({len(weeks)} weeks) in one run")
    result = job.execute_in_process(
        instance=instance,
        tags=week_range_tags(weeks[0], weeks[-1]),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},  # step events stay in the UI
        raise_on_error=False,
    )
    summary = RunSummary(result.success, result.run_id, weeks, Warehouse(settings.warehouse).table_counts())
    for evaluation in result.get_asset_check_evaluations():
        label = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if evaluation.passed:
            summary.checks_passed.append(label)
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            summary.checks_warned.append(label)
        else:
            summary.checks_failed.append(label)
    return summary


def print_summary(summary: RunSummary, settings: Settings, *, log=print) -> None:
    log("")
    log(f"run {summary.run_id}: {'succeeded' if summary.success else 'FAILED'}")
    log(f"warehouse: {settings.warehouse}")
    log(f"dagster instance: {os.environ.get('DAGSTER_HOME')} (open the UI with `make dev`)")
    log(f"weeks: {summary.weeks[0]} .. {summary.weeks[-1]}")
    log("tables:")
    for table, rows in summary.tables.iter_rows():
        log(f"  {table:<40} {rows:>12,} rows")
    log(
        f"checks: {len(summary.checks_passed)} passed, {len(summary.checks_failed)} failed, "
        f"{len(summary.checks_warned)} warned"
    )
    for label in summary.checks_failed:
        log(f"  FAILED  {label}")
    for label in summary.checks_warned:
        log(f"  WARNED  {label}")
