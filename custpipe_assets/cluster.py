"""Beyond one machine, on one machine: PostgreSQL, Redis and Celery workers on 127.0.0.1 running the same assets.

`custpipe cluster up` starts, under one folder (default `data/cluster`):
- PostgreSQL (Debian's `postgresql`, a cluster of its own made with `initdb` as the `postgres` user) holding the
  Dagster instance (runs, events, schedules: database `dagster`) and the DuckLake catalog (database `lake`);
- Redis (`redis-server`), the Celery broker and result backend;
- Celery workers (`dagster-celery`, two by default), each running one step at a time;
and writes `dagster_home/dagster.yaml` (PostgreSQL storage), `run_config.yaml` (the Celery executor's run config),
`cluster.env` (the CUSTPIPE_* settings every process of the cluster shares: the warehouse is the DuckLake, its
Parquet files under `lake/`) and `pids.json`. `custpipe cluster run --domain purchases --week 2018-09-03` runs a
domain's job over weeks with its steps on the workers; `custpipe cluster down` stops what `up` started, by PID.

A real cluster is the same configuration with host names instead of 127.0.0.1 (see the README, "Beyond one
machine"). Workers import the code once: `custpipe cluster up` on a running cluster restarts them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psutil

from custpipe_assets.core.settings import (
    DUCKLAKE_DATA_PATH_ENV,
    WAREHOUSE_ENV,
    Settings,
    SettingsError,
)

DEFAULT_ROOT = "data/cluster"
DEFAULT_POSTGRES_PORT = 15432
DEFAULT_REDIS_PORT = 16379
DEFAULT_WORKERS = 2
DAGSTER_DB = "dagster"
LAKE_DB = "lake"
QUEUE = "dagster"  # dagster-celery's queue
CLUSTER_JOB_PREFIX = "cluster"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


class ClusterError(SettingsError):
    """The cluster cannot be started or used; the message says what is missing and what to do."""


# -- the jobs the workers run -------------------------------------------------------------------------------------


def cluster_job_name(domain: str) -> str:
    return f"{CLUSTER_JOB_PREFIX}_{domain}"


@functools.cache
def cluster_definitions() -> dg.Definitions:
    """The project's definitions (from the CUSTPIPE_* environment) plus, per domain, a job with the Celery executor.

    Built once per process: a worker imports it on its first step and keeps it (restart workers after a change).
    """
    from dagster_celery import celery_executor

    from custpipe_assets.core.conventions import DOMAINS
    from custpipe_assets.core.partitions import weekly_partitions
    from custpipe_assets.definitions import build_definitions

    settings = Settings.from_env()
    jobs = [
        dg.define_asset_job(
            cluster_job_name(domain),
            selection=dg.AssetSelection.groups(domain),
            partitions_def=weekly_partitions(settings.first_week),
            executor_def=celery_executor,
            description=f"Every asset and check of the {domain} domain, its steps on the Celery workers.",
        )
        for domain in DOMAINS
    ]
    return dg.Definitions.merge(build_definitions(settings), dg.Definitions(jobs=jobs))


def cluster_job(domain: str) -> dg.JobDefinition:
    """What the run coordinator and every worker reconstruct (`build_reconstructable_job` points here)."""
    return cluster_definitions().resolve_job_def(cluster_job_name(domain))


# -- the folder and its files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterPaths:
    root: Path

    @property
    def postgres_data(self) -> Path:
        return self.root / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def celery_config(self) -> Path:
        return self.root / "celery"  # holds dagster_celery_config.py, which dagster-celery's app imports

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids.json"

    @property
    def env(self) -> Path:
        return self.root / "cluster.env"

    @property
    def run_config(self) -> Path:
        return self.root / "run_config.yaml"


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


# -- processes ----------------------------------------------------------------------------------------------------


def _postgres_bin(name: str) -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda path: int(path.parts[-3]))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise ClusterError(f"PostgreSQL's {name} not found: install Debian's postgresql (apt-get install postgresql)")


def missing_services() -> list[str]:
    """What `up` needs and this machine lacks (empty when the cluster can start)."""
    missing = []
    try:
        _postgres_bin("postgres")
        _postgres_bin("initdb")
    except ClusterError:
        missing.append("postgresql (initdb, postgres)")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if not shutil.which("celery", path=str(Path(sys.executable).parent)) and not shutil.which("celery"):
        missing.append("celery (pip: dagster-celery, celery[redis])")
    return missing


def _as_postgres() -> dict:
    """Popen arguments that run a command as the `postgres` user when we are root (initdb refuses root)."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def _record(name: str, process: psutil.Process) -> dict:
    return {"name": name, "pid": process.pid, "started": process.create_time()}


def _alive(entry: Mapping) -> psutil.Process | None:
    """The recorded process if it still runs (same PID and start time: never a reused PID)."""
    try:
        process = psutil.Process(entry["pid"])
        if abs(process.create_time() - entry["started"]) < 1 and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except psutil.Error:
        pass
    return None


def _wait_for(what: str, ready, log_file: Path, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
    raise ClusterError(f"{what} did not become ready within {timeout_s:.0f} s; its log ({log_file}) ends:\n{tail}")


def _start_postgres(paths: ClusterPaths, endpoints: Endpoints, workers: int) -> dict:
    data = paths.postgres_data
    log = paths.logs / "postgres.log"
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        data.chmod(0o700)
        command = [str(_postgres_bin("initdb")), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise ClusterError(
                f"initdb into {data} failed (the postgres user must be able to reach that folder):\n{done.stderr}"
            )
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [
                str(_postgres_bin("postgres")),
                "-D",
                str(data),
                "-h",
                endpoints.host,
                "-p",
                str(endpoints.postgres_port),
                "-c",
                "unix_socket_directories=",
                "-c",
                f"max_connections={100 + 50 * workers}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **_as_postgres(),
        )
    record = _record("postgres", psutil.Process(server.pid))

    def accepting() -> bool:
        if server.poll() is not None:
            raise ClusterError(f"postgres exited ({server.returncode}); see {log}")
        with _postgres(endpoints, "postgres"):
            return True

    _wait_for("PostgreSQL", accepting, log)
    with _postgres(endpoints, "postgres") as connection, connection.cursor() as cursor:
        for database in (DAGSTER_DB, LAKE_DB):
            cursor.execute("select 1 from pg_database where datname = %s", [database])
            if cursor.fetchone() is None:
                cursor.execute(f"create database {database}")
    return record


@contextlib.contextmanager
def _postgres(endpoints: Endpoints, database: str):
    import psycopg2

    connection = psycopg2.connect(endpoints.libpq(database), connect_timeout=3)
    connection.autocommit = True
    try:
        yield connection
    finally:
        connection.close()


def _start_redis(paths: ClusterPaths, endpoints: Endpoints) -> dict:
    paths.redis_dir.mkdir(parents=True, exist_ok=True)
    log = paths.logs / "redis.log"
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                endpoints.host,
                "--port",
                str(endpoints.redis_port),
                "--dir",
                str(paths.redis_dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    record = _record("redis", psutil.Process(server.pid))

    def pong() -> bool:
        if server.poll() is not None:
            raise ClusterError(f"redis-server exited ({server.returncode}); see {log}")
        import redis

        return bool(redis.Redis(host=endpoints.host, port=endpoints.redis_port, socket_timeout=1).ping())

    _wait_for("Redis", pong, log)
    return record


def _start_workers(paths: ClusterPaths, endpoints: Endpoints, count: int, environment: Mapping[str, str]) -> list:
    celery = Path(sys.executable).parent / "celery"
    python_path = os.pathsep.join(filter(None, [str(paths.celery_config.absolute()), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **environment, "PYTHONPATH": python_path}
    env.pop("PYTHONSTARTUP", None)
    records = []
    for number in range(1, count + 1):
        name = f"custpipe{number}@{socket.gethostname()}"
        log = paths.logs / f"worker{number}.log"
        with open(log, "ab") as out:
            worker = subprocess.Popen(
                [
                    str(celery) if celery.exists() else "celery",
                    "-A",
                    "dagster_celery.app",
                    "worker",
                    "--pool=solo",  # one step at a time, in the worker's own process: code imported once
                    "--prefetch-multiplier=1",
                    "-Q",
                    QUEUE,
                    "-n",
                    name,
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(paths.root.absolute()),
                start_new_session=True,
            )
        records.append({**_record(f"worker{number}", psutil.Process(worker.pid)), "hostname": name})

    def all_answer() -> bool:
        from celery import Celery

        app = Celery(broker=endpoints.broker, backend=endpoints.backend)
        replies = app.control.ping(timeout=1.0)
        return {name for reply in replies for name in reply} >= {record["hostname"] for record in records}

    _wait_for(f"{count} Celery workers", all_answer, paths.logs / "worker1.log")
    return records


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


def _stop(entry: Mapping, *, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop one recorded process (and its process group) by PID: `sig`, then SIGKILL after `timeout_s`."""
    process = _alive(entry)
    if process is None:
        return
    with contextlib.suppress(psutil.Error):
        process.send_signal(sig)
    with contextlib.suppress(psutil.Error):
        process.wait(timeout_s)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(entry["pid"], signal.SIGKILL)  # started with start_new_session: the group is the process's own
    with contextlib.suppress(psutil.Error):
        process.kill()
        process.wait(5)


# -- the commands -------------------------------------------------------------------------------------------------


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
    running = {entry["name"]: entry for entry in state["processes"] if _alive(entry)}
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
            ("postgres", lambda: _start_postgres(paths, endpoints, workers)),
            ("redis", lambda: _start_redis(paths, endpoints)),
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
                _stop(entry)
        processes += _start_workers(paths, endpoints, workers, environment)
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
        if _alive(entry) is None:
            log(f"{entry['name']}: not running")
            continue
        # PostgreSQL: SIGINT is its "fast" shutdown (disconnect clients, checkpoint, exit)
        _stop(entry, sig=signal.SIGINT if entry["name"] == "postgres" else signal.SIGTERM)
        log(f"{entry['name']}: stopped (pid {entry['pid']})")
    if paths.pids.exists():
        paths.pids.unlink()


def status(root: str | Path = DEFAULT_ROOT) -> dict[str, bool]:
    state = _read_pids(ClusterPaths(Path(root).absolute()))
    return {entry["name"]: _alive(entry) is not None for entry in state["processes"]}


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
    job = dg.build_reconstructable_job("custpipe_assets.cluster", "cluster_job", reconstructable_args=(domain,))
    with dg.DagsterInstance.get() as instance:
        return dg.execute_job(
            job, instance=instance, run_config=run_config, tags=week_range_tags(first_week, last_week or first_week)
        )


def weeks_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=7 * number) for number in range((last - first).days // 7 + 1)]
