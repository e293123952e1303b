"""The cluster's folder and what `custpipe cluster up` writes into it: the paths, the endpoints of PostgreSQL and
Redis, the Dagster instance's `dagster.yaml`, the Celery executor's run config and worker config, and the
`cluster.env` settings every process of the cluster shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from custpipe_assets.core.settings import (
    DUCKLAKE_DATA_PATH_ENV,
    WAREHOUSE_ENV,
    Settings,
    SettingsError,
)

DAGSTER_DB = "dagster"
LAKE_DB = "lake"


class ClusterError(SettingsError):
    """The cluster cannot be started or used; the message says what is missing and what to do."""


def _under_root(name: str) -> property:
    """A path in the cluster's folder: `root / name`."""
    return property(lambda paths: paths.root / name)


@dataclass(frozen=True)
class ClusterPaths:
    """Where everything of one cluster lives, under its root folder."""

    root: Path

    postgres_data = _under_root("postgres")
    redis_dir = _under_root("redis")
    lake = _under_root("lake")
    dagster_home = _under_root("dagster_home")
    celery_config = _under_root("celery")  # holds dagster_celery_config.py, which dagster-celery's app imports
    logs = _under_root("logs")
    pids = _under_root("pids.json")
    env = _under_root("cluster.env")
    run_config = _under_root("run_config.yaml")


@dataclass(frozen=True)
class Endpoints:
    postgres_port: int
    redis_port: int
    host: str = "127.0.0.1"

    @property
    def postgres_url(self) -> str:  # psycopg2 explicitly: SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3
        return f"postgresql+psycopg2://postgres@{self.host}:{self.postgres_port}/{DAGSTER_DB}"

    def libpq(self, database: str) -> str:
        return f"dbname={database} host={self.host} port={self.postgres_port} user=postgres"

    @property
    def broker(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def backend(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/1"


def instance_yaml(endpoints: Endpoints, workers: int) -> str:
    return f"""\
# Written by `custpipe cluster up`: the Dagster instance of the local cluster, in PostgreSQL.
storage:
  postgres:
    postgres_url: "{endpoints.postgres_url}"
# The warehouse is a DuckLake: several writers at once, so the warehouse pool gets one slot per worker.
concurrency:
  pools:
    default_limit: {workers}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
# custpipe's own log records (weeks written, DuckLake commit conflicts redone) go into the run's log.
python_logs:
  managed_python_loggers:
    - custpipe_assets
  python_log_level: INFO
nux:
  enabled: false
telemetry:
  enabled: false
"""


def run_config_yaml(endpoints: Endpoints) -> str:
    return f"""\
# Written by `custpipe cluster up`: run config for the cluster_<domain> jobs (the Celery executor).
execution:
  config:
    broker: "{endpoints.broker}"
    backend: "{endpoints.backend}"
    config_source:
      worker_prefetch_multiplier: 1
      task_acks_late: true
"""


def celery_config_module(endpoints: Endpoints) -> str:
    return (
        "# Written by `custpipe cluster up`: read by dagster-celery's worker app (dagster_celery.app).\n"
        f"broker_url = {endpoints.broker!r}\n"
        f"result_backend = {endpoints.backend!r}\n"
        "worker_prefetch_multiplier = 1\n"
        "task_acks_late = True\n"
    )


def cluster_environment(settings: Settings, paths: ClusterPaths, endpoints: Endpoints) -> dict[str, str]:
    """The CUSTPIPE_* settings of every cluster process: the user's, with the warehouse moved to the DuckLake."""
    environment = settings.environment({})
    environment[WAREHOUSE_ENV] = f"ducklake:postgres:{endpoints.libpq(LAKE_DB)}"
    environment[DUCKLAKE_DATA_PATH_ENV] = str(paths.lake.absolute())
    environment["DAGSTER_HOME"] = str(paths.dagster_home.absolute())
    return environment


def read_environment(root: Path) -> dict[str, str]:
    paths = ClusterPaths(Path(root))
    if not paths.env.exists():
        raise ClusterError(f"no cluster in {paths.root} (no {paths.env.name}): run `custpipe cluster up` first")
    pairs = (line.split("=", 1) for line in paths.env.read_text().splitlines() if "=" in line and line[0] != "#")
    return dict(pairs)
