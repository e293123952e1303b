"""The `custpipe cluster` commands: `up` (start or restart what is missing, write the cluster's files), `down`
(stop by the recorded PIDs), `status`, and `run` (a domain's job over weeks, its steps on the workers)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from custpipe_assets.cluster.config import (
    DAGSTER_DB,
    ClusterError,
    ClusterPaths,
    Endpoints,
    celery_config_module,
    cluster_environment,
    instance_yaml,
    read_environment,
    run_config_yaml,
)
from custpipe_assets.cluster.processes import (
    alive,
    missing_services,
    start_postgres,
    start_redis,
    start_workers,
    stop,
)
from custpipe_assets.core.settings import (
    DUCKLAKE_DATA_PATH_ENV,
    WAREHOUSE_ENV,
    Settings,
)

DEFAULT_ROOT = "data/cluster"
DEFAULT_POSTGRES_PORT = 15432
DEFAULT_REDIS_PORT = 16379
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class Cluster:
    paths: ClusterPaths
    endpoints: Endpoints
    processes: list[dict]

    @property
    def environment(self) -> dict[str, str]:
        return read_environment(self.paths.root)

    def worker_names(self) -> list[str]:
        return [entry["hostname"] for entry in self.processes if entry["name"].startswith("worker")]


def _read_pids(paths: ClusterPaths) -> dict:
    return json.loads(paths.pids.read_text()) if paths.pids.exists() else {"processes": []}


def _write_pids(paths: ClusterPaths, endpoints: Endpoints, processes: list[dict]) -> None:
    state = {"postgres_port": endpoints.postgres_port, "redis_port": endpoints.redis_port, "processes": processes}
    paths.pids.write_text(json.dumps(state, indent=2))


def _attach_lake(environment: Mapping[str, str]) -> None:
    """Attach the lake once before the workers start: its catalog is created here, not by two workers at once, and
    the extensions are installed into the environment's folder by one process."""
    from custpipe_assets.core.warehouse import Warehouse

    with Warehouse(environment[WAREHOUSE_ENV], data_path=environment[DUCKLAKE_DATA_PATH_ENV]).connect():
        pass


def _prepare_instance(paths: ClusterPaths, workers: int) -> None:
    """Create the instance's tables and set the warehouse pool's slots once, before any run: two runs starting
    together on a fresh instance would otherwise both insert the pool's default limit, and the loser fails
    (dagster-postgres: a unique violation, then an aborted transaction)."""
    from custpipe_assets.core.conventions import POOL

    with dg.DagsterInstance.from_config(str(paths.dagster_home)) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, workers)


def up(
    root: str | Path = DEFAULT_ROOT,
    *,
    settings: Settings | None = None,
    workers: int = DEFAULT_WORKERS,
    postgres_port: int = DEFAULT_POSTGRES_PORT,
    redis_port: int = DEFAULT_REDIS_PORT,
    log=print,
) -> Cluster:
    """Start PostgreSQL, Redis and `workers` Celery workers (or, when already up, restart only the workers)."""
    missing = missing_services()
    if missing:
        raise ClusterError(f"cannot start the cluster: missing {', '.join(missing)}")
    paths = ClusterPaths(Path(root).absolute())
    for folder in (paths.root, paths.logs, paths.lake, paths.dagster_home, paths.celery_config):
        folder.mkdir(parents=True, exist_ok=True)
    if paths.root.stat().st_mode & 0o005 != 0o005 and os.geteuid() == 0:
        paths.root.chmod(paths.root.stat().st_mode | 0o005)  # the postgres user reaches its data folder through it
    state = _read_pids(paths)
    running = {entry["name"]: entry for entry in state["processes"] if alive(entry)}
    if "postgres" in running or "redis" in running:
        endpoints = Endpoints(state["postgres_port"], state["redis_port"])
    else:
        endpoints = Endpoints(postgres_port, redis_port)
    settings = settings or Settings.from_env()
    environment = cluster_environment(settings, paths, endpoints)
    paths.env.write_text(
        "# Written by `custpipe cluster up`: the settings every process of the cluster shares.\n"
        + "".join(f"{name}={value}\n" for name, value in sorted(environment.items()))
    )
    (paths.dagster_home / "dagster.yaml").write_text(instance_yaml(endpoints, workers))
    paths.run_config.write_text(run_config_yaml(endpoints))
    (paths.celery_config / "dagster_celery_config.py").write_text(celery_config_module(endpoints))

    processes: list[dict] = []
    try:
        for name, start in (
            ("postgres", lambda: start_postgres(paths, endpoints, workers)),
            ("redis", lambda: start_redis(paths, endpoints)),
        ):
            if name in running:
                processes.append(running[name])
                log(f"{name}: already running (pid {running[name]['pid']})")
            else:
                processes.append(start())
                log(f"{name}: started (pid {processes[-1]['pid']})")
            _write_pids(paths, endpoints, processes + [e for n, e in running.items() if n not in ("postgres", "redis")])
        _attach_lake(environment)
        _prepare_instance(paths, workers)
        for name, entry in running.items():
            if name.startswith("worker"):
                log(f"{name}: restarting (workers keep the code they imported)")
                stop(entry)
        processes += start_workers(paths, endpoints, workers, environment)
        _write_pids(paths, endpoints, processes)
    except BaseException:
        _write_pids(paths, endpoints, processes)
        down(paths.root, log=lambda *_: None)
        raise
    for entry in processes:
        if entry["name"].startswith("worker"):
            log(f"{entry['name']}: {entry['hostname']} (pid {entry['pid']})")
    log(f"dagster instance: {paths.dagster_home} (PostgreSQL {endpoints.host}:{endpoints.postgres_port}/{DAGSTER_DB})")
    log(f"warehouse: {environment[WAREHOUSE_ENV]}, data in {paths.lake}")
    log(f"run config: {paths.run_config}; settings: {paths.env}")
    return Cluster(paths, endpoints, processes)


def down(root: str | Path = DEFAULT_ROOT, *, log=print) -> None:
    """Stop what `up` started, by the PIDs it recorded: workers first, then Redis, then PostgreSQL."""
    paths = ClusterPaths(Path(root).absolute())
    state = _read_pids(paths)
    order = {"redis": 1, "postgres": 2}
    for entry in sorted(state["processes"], key=lambda entry: order.get(entry["name"], 0)):
        if alive(entry) is None:
            log(f"{entry['name']}: not running")
            continue
        # PostgreSQL: SIGINT is its "fast" shutdown (disconnect clients, checkpoint, exit)
        stop(entry, sig=signal.SIGINT if entry["name"] == "postgres" else signal.SIGTERM)
        log(f"{entry['name']}: stopped (pid {entry['pid']})")
    if paths.pids.exists():
        paths.pids.unlink()


def status(root: str | Path = DEFAULT_ROOT) -> dict[str, bool]:
    state = _read_pids(ClusterPaths(Path(root).absolute()))
    return {entry["name"]: alive(entry) is not None for entry in state["processes"]}


def run(root: str | Path, domain: str, first_week: date, last_week: date | None = None) -> dg.JobExecutionResult:
    """One run of the domain's job over first_week..last_week, its steps on the cluster's workers.

    This process coordinates the run (submits steps to Celery as their inputs are ready) and records it in the
    cluster's instance; the workers compute and write the warehouse.
    """
    import yaml

    from custpipe_assets.core.partitions import week_range_tags

    paths = ClusterPaths(Path(root).absolute())
    os.environ.update(read_environment(paths.root))
    run_config = yaml.safe_load(paths.run_config.read_text())
    job = dg.build_reconstructable_job("custpipe_assets.cluster.jobs", "cluster_job", reconstructable_args=(domain,))
    with dg.DagsterInstance.get() as instance:
        return dg.execute_job(
            job, instance=instance, run_config=run_config, tags=week_range_tags(first_week, last_week or first_week)
        )


def weeks_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=7 * number) for number in range((last - first).days // 7 + 1)]
