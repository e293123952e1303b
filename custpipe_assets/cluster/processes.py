"""The cluster's processes: PostgreSQL (its own data folder, made with initdb), Redis and the Celery workers,
each started in a session of its own, waited for until it answers, recorded by PID and start time (never a
reused PID) and stopped by that record."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from custpipe_assets.cluster.config import DAGSTER_DB, LAKE_DB, ClusterError, ClusterPaths, Endpoints

QUEUE = "dagster"  # dagster-celery's queue
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


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


def alive(entry: Mapping) -> psutil.Process | None:
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


def _spawn(command: list[str], log: Path, **options) -> subprocess.Popen:
    """Start a server or worker with its output appended to `log`, no stdin, in a session of its own (so that `stop`
    can end its process group)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **options
        )


def start_postgres(paths: ClusterPaths, endpoints: Endpoints, workers: int) -> dict:
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
    server = _spawn(
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
        log,
        **_as_postgres(),
    )
    record = _record("postgres", psutil.Process(server.pid))

    def accepting() -> bool:
        if server.poll() is not None:
            raise ClusterError(f"postgres exited ({server.returncode}); see {log}")
        with connect_postgres(endpoints, "postgres"):
            return True

    _wait_for("PostgreSQL", accepting, log)
    with connect_postgres(endpoints, "postgres") as connection, connection.cursor() as cursor:
        for database in (DAGSTER_DB, LAKE_DB):
            cursor.execute("select 1 from pg_database where datname = %s", [database])
            if cursor.fetchone() is None:
                cursor.execute(f"create database {database}")
    return record


@contextlib.contextmanager
def connect_postgres(endpoints: Endpoints, database: str):
    import psycopg2

    connection = psycopg2.connect(endpoints.libpq(database), connect_timeout=3)
    connection.autocommit = True
    try:
        yield connection
    finally:
        connection.close()


def start_redis(paths: ClusterPaths, endpoints: Endpoints) -> dict:
    paths.redis_dir.mkdir(parents=True, exist_ok=True)
    log = paths.logs / "redis.log"
    server = _spawn(
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
        log,
    )
    record = _record("redis", psutil.Process(server.pid))

    def pong() -> bool:
        if server.poll() is not None:
            raise ClusterError(f"redis-server exited ({server.returncode}); see {log}")
        import redis

        return bool(redis.Redis(host=endpoints.host, port=endpoints.redis_port, socket_timeout=1).ping())

    _wait_for("Redis", pong, log)
    return record


def start_workers(paths: ClusterPaths, endpoints: Endpoints, count: int, environment: Mapping[str, str]) -> list:
    celery = Path(sys.executable).parent / "celery"
    python_path = os.pathsep.join(filter(None, [str(paths.celery_config.absolute()), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **environment, "PYTHONPATH": python_path}
    env.pop("PYTHONSTARTUP", None)
    records = []
    for number in range(1, count + 1):
        name = f"custpipe{number}@{socket.gethostname()}"
        log = paths.logs / f"worker{number}.log"
        worker = _spawn(
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
            log,
            env=env,
            cwd=str(paths.root.absolute()),
        )
        records.append({**_record(f"worker{number}", psutil.Process(worker.pid)), "hostname": name})

    def all_answer() -> bool:
        from celery import Celery

        app = Celery(broker=endpoints.broker, backend=endpoints.backend)
        replies = app.control.ping(timeout=1.0)
        return {name for reply in replies for name in reply} >= {record["hostname"] for record in records}

    _wait_for(f"{count} Celery workers", all_answer, paths.logs / "worker1.log")
    return records


def stop(entry: Mapping, *, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop one recorded process (and its process group) by PID: `sig`, then SIGKILL after `timeout_s`."""
    process = alive(entry)
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
