"""The main job: materialize every asset, week and check of each domain whose sources landed, one Dagster run per
domain over its own weeks, recorded in a persistent instance (so `make dev` shows them), then print what was
written and where. A domain with nothing landed is listed as skipped; `custpipe run --domain NAME` picks domains."""

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from custpipe_assets.conversions.automation import LANDED_FILES as CONVERSION_FILES
from custpipe_assets.core.arrivals import LandedFiles
from custpipe_assets.core.conventions import DOMAINS, domain_job_name
from custpipe_assets.core.event_log import EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_ENV
from custpipe_assets.core.partitions import week_range_tags, weekly_partitions
from custpipe_assets.core.settings import DEFAULT_LANDING_DIR, LANDING_DIR_ENV, Settings, SettingsError
from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.definitions import build_definitions
from custpipe_assets.product_views.automation import LANDED_FILES as PRODUCT_VIEW_FILES
from custpipe_assets.purchases.automation import LANDED_FILES as TRANSACTION_FILES

DEFAULT_DAGSTER_HOME = "data/dagster_home"
PLANNED_EVENTS_AS_RANGES = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
INSTANCE_YAML = """\
# Written by `custpipe run` / `make dev` when absent (delete it, or `make clean`, to get a newer version's).
# One concurrency slot for the warehouse pool: DuckDB allows one writing process, so runs started together by
# schedules, sensors and people queue instead of failing.
concurrency:
  pools:
    default_limit: 1
# Log records of custpipe's own modules (a backfill's line per week written, the purchase-history client's
# retries) go into the run's log, beside Dagster's events.
python_logs:
  managed_python_loggers:
    - custpipe_assets
  python_log_level: INFO
# Freshness policies of the gold tables are evaluated by the daemon (`make dev` runs it).
freshness:
  enabled: true
nux:
  enabled: false
telemetry:
  enabled: false
# Dagster's SQLite event log with its engines kept (custpipe_assets/core/event_log.py): same files as the default,
# faster per stored event. It reads DAGSTER_HOME (set by `make run`/`make dev`, and by `custpipe run` when unset).
event_log_storage:
  module: custpipe_assets.core.event_log
  class: KeptEnginesSqliteEventLogStorage
  config:
    dagster_home:
      env: DAGSTER_HOME
"""


@dataclass(frozen=True)
class DomainSources:
    """What a domain reads from the landing folder: globs whose any file means it landed, and how its weeks are
    found (the weekly files). A domain whose sources did not land is skipped by the main job, not run empty."""

    name: str
    sources: tuple[str, ...]
    weekly_files: LandedFiles

    def landed_files(self, landing_dir: Path) -> list[Path]:
        return sorted({path for pattern in self.sources for path in landing_dir.glob(pattern) if path.is_file()})


DOMAIN_SOURCES = (
    DomainSources("purchases", ("customers.csv", "products.csv", "transactions/**/*"), TRANSACTION_FILES),
    DomainSources("segmentation", ("customer_profiles.csv",), TRANSACTION_FILES),
    DomainSources("conversions", ("brokerchooser/**/*",), CONVERSION_FILES),
    DomainSources("product_views", ("amaro/**/*",), PRODUCT_VIEW_FILES),
)


@dataclass
class DomainRun:
    domain: str
    run_id: str
    success: bool
    weeks: list[date]


@dataclass
class RunSummary:
    success: bool
    runs: list[DomainRun]
    skipped: dict[str, str]  # domain -> why
    tables: pl.DataFrame
    checks_passed: list[str] = field(default_factory=list)
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return ", ".join(run.run_id for run in self.runs)

    @property
    def weeks(self) -> list[date]:
        return sorted({week for run in self.runs for week in run.weeks})

    def weeks_of(self, domain: str) -> list[date]:
        return next((run.weeks for run in self.runs if run.domain == domain), [])


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
            raise SettingsError(
                f"landing folder {landing} does not exist. Set {LANDING_DIR_ENV} to an existing folder."
            )
        landing.mkdir(parents=True)
    if any(path.name != ".gitkeep" for path in landing.iterdir()):
        return
    log(f"landing folder {landing} is empty: writing the small sample data set (custpipe generate)")
    from custpipe_assets.sample import generate_sample  # the generators, only for an empty landing folder

    generate_sample(landing, first_week=settings.first_week)


def week_range(settings: Settings, found: set[date]) -> list[date]:
    """Mondays from CUSTPIPE_FIRST_WEEK to the last week in `found`, at least the first week and at most the last
    complete one."""
    last_key = weekly_partitions(settings.first_week).get_last_partition_key()
    last_complete = date.fromisoformat(last_key) if last_key else settings.first_week
    last_week = min(max(found, default=settings.first_week), last_complete)
    weeks, week = [], settings.first_week
    while week <= last_week:
        weeks.append(week)
        week += timedelta(days=7)
    return weeks


def landed_weeks(settings: Settings, domain: DomainSources | None = None) -> list[date]:
    """The weeks the main job runs: of one domain's weekly files, or of every domain's (transaction days,
    conversion and broker lines, product views) when no domain is given."""
    sources = [domain] if domain else DOMAIN_SOURCES
    return week_range(settings, set().union(*(source.weekly_files.weeks(settings.landing_dir) for source in sources)))


# Not sources: the generator's answer key (read by tests) and the bundled stand-in service's own state.
NOT_SOURCES = {".gitkeep", "_truth", "_stand_in"}


def unread_landing_entries(landing_dir: Path) -> list[str]:
    """Top-level landing entries no domain reads (a misnamed file or folder): the main job names them."""
    known = {pattern.split("/")[0] for source in DOMAIN_SOURCES for pattern in source.sources}
    return sorted(path.name for path in landing_dir.iterdir() if path.name not in known | NOT_SOURCES)


def run_everything(
    settings: Settings,
    *,
    instance: dg.DagsterInstance | None = None,
    domains: list[str] | None = None,
    log=print,
) -> RunSummary:
    """Every landed domain (or the chosen ones) as one run each over its own weeks: a domain's job holds all of
    its assets and checks. A domain whose sources did not land is listed as skipped."""
    unknown = sorted(set(domains or []) - {source.name for source in DOMAIN_SOURCES})
    if unknown:
        raise SettingsError(f"unknown domain(s) {', '.join(unknown)}; choose from {', '.join(DOMAINS)}")
    ensure_landing(settings, log=log)
    warehouse = Warehouse(settings.warehouse, data_path=settings.ducklake_data_path)
    with warehouse.connect():  # one clear error up front rather than a failure in every step
        pass
    definitions = build_definitions(settings)
    instance = instance or dg.DagsterInstance.get()
    # One "materialization planned" event per asset for the run's range instead of one per asset and week: Dagster
    # stores each event in its own SQLite transaction, and 9 assets x 52 weeks of them took 4 s before the first
    # step. The cost, as Dagster documents it: if the run fails, its weeks are not marked failed in the UI (they
    # keep their last materialization; the run itself shows as failed, and `custpipe run` says so).
    os.environ.setdefault(PLANNED_EVENTS_AS_RANGES, "1")
    # The run's planned events, and a step's per-week materializations of an asset, each stored in one transaction
    # per file (core/event_log.py)
    os.environ.setdefault(EVENT_BATCH_SIZE_ENV, EVENT_BATCH_SIZE)
    runs, skipped, evaluations = [], {}, []
    for entry in unread_landing_entries(settings.landing_dir):
        log(f"WARNING: {settings.landing_dir / entry} is not read by any domain (see the README's landing layout)")
    for source in DOMAIN_SOURCES:
        if domains and source.name not in domains:
            continue
        if not source.landed_files(settings.landing_dir):
            where = ", ".join(str(settings.landing_dir / pattern) for pattern in source.sources)
            skipped[source.name] = f"nothing landed in {where}: skipped"
            continue
        weeks = landed_weeks(settings, source)
        log(f"{source.name}: every asset and check for weeks {weeks[0]} .. {weeks[-1]} ({len(weeks)} weeks), one run")
        result = definitions.resolve_job_def(domain_job_name(source.name)).execute_in_process(
            instance=instance,
            tags=week_range_tags(weeks[0], weeks[-1]),
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},  # step events stay in the UI
            raise_on_error=False,
        )
        runs.append(DomainRun(source.name, result.run_id, result.success, weeks))
        evaluations += result.get_asset_check_evaluations()
    summary = RunSummary(all(run.success for run in runs), runs, skipped, warehouse.table_counts())
    for evaluation in evaluations:
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
    for run in summary.runs:
        weeks = f"weeks {run.weeks[0]} .. {run.weeks[-1]}"
        log(f"{run.domain}: run {run.run_id} {'succeeded' if run.success else 'FAILED'} ({weeks})")
    for domain, why in summary.skipped.items():
        log(f"{domain}: {why}")
    log(f"warehouse: {settings.warehouse}")
    log(f"dagster instance: {os.environ.get('DAGSTER_HOME')} (open the UI with `make dev`)")
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
