"""The warehouse as a DuckLake: catalog in PostgreSQL, Parquet data files on a shared path (or object storage).

`CUSTPIPE_WAREHOUSE=ducklake:postgres:dbname=lake host=db.internal` (any libpq connection string after
`ducklake:postgres:`) with `CUSTPIPE_DUCKLAKE_DATA_PATH` (where the Parquet files go; every worker must reach it)
turns the warehouse from one DuckDB file into a lake several processes and machines write at once. The same DuckDB
SQL runs unchanged: the lake is ATTACHed as `lake` and USEd, so `bronze.x` names the same table on both backends.

What belongs here: parsing the target, loading the DuckLake and PostgreSQL extensions (offline, from the
`duckdb-extension-*` wheels), attaching, the per-partition lock (a PostgreSQL advisory lock keyed by table and week)
and the retry of a transaction that lost a commit race. `warehouse.py` decides when to use them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import duckdb

from custpipe_assets.core.sql_text import sql_literal

PREFIX = "ducklake:"
CATALOG = "lake"  # the name the lake is attached under (what `current_database()` returns)
EXTENSIONS = ("ducklake", "postgres")
# Extensions are installed from the wheels into the environment, never from the network (which is not reachable
# from every worker): one folder per Python environment, filled on first use.
EXTENSION_DIRECTORY = Path(sys.prefix) / "share" / "custpipe" / "duckdb_extensions"

T = TypeVar("T")
logger = logging.getLogger(__name__)


def is_ducklake(target: str | Path) -> bool:
    return str(target).startswith(PREFIX)


@dataclass(frozen=True)
class DuckLakeTarget:
    """`ducklake:<catalog>` plus the data path; `catalog` is what DuckLake's ATTACH takes after `ducklake:`."""

    catalog: str
    data_path: str | None = None

    @classmethod
    def parse(cls, target: str, data_path: str | None = None) -> DuckLakeTarget:
        if not is_ducklake(target):
            raise ValueError(f"{target!r} is not a DuckLake target (ducklake:postgres:...)")
        return cls(target[len(PREFIX) :], data_path or None)

    @property
    def postgres_dsn(self) -> str | None:
        """The libpq connection string of a PostgreSQL catalog (None for a DuckDB/SQLite catalog)."""
        return self.catalog[len("postgres:") :] if self.catalog.startswith("postgres:") else None

    def attach_sql(self) -> str:
        options = f" (data_path {sql_literal(self.data_path)})" if self.data_path else ""
        return f"attach {sql_literal(PREFIX + self.catalog)} as {CATALOG}{options}"


def load_extensions(connection: duckdb.DuckDBPyConnection) -> None:
    """LOAD ducklake and postgres; the first time in this environment, install them from their wheels (one process
    at a time: another may be writing the same file)."""
    for name in EXTENSIONS:
        try:
            connection.execute(f"load {name}")
            continue
        except duckdb.Error:
            pass
        with _installing():
            try:
                connection.execute(f"load {name}")
            except duckdb.Error:
                import duckdb_extensions  # the offline wheels: duckdb-extension-ducklake, duckdb-extension-postgres

                duckdb_extensions.import_extension(name, con=connection)
                connection.execute(f"load {name}")


@contextlib.contextmanager
def _installing() -> Iterator[None]:
    """An exclusive lock on the extension folder while an extension is installed into it."""
    import fcntl

    EXTENSION_DIRECTORY.mkdir(parents=True, exist_ok=True)
    with open(EXTENSION_DIRECTORY / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _open(target: DuckLakeTarget, config: dict) -> duckdb.DuckDBPyConnection:
    EXTENSION_DIRECTORY.mkdir(parents=True, exist_ok=True)
    if target.data_path and "://" not in target.data_path:
        Path(target.data_path).mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(
        config={**config, "extension_directory": str(EXTENSION_DIRECTORY), "autoinstall_known_extensions": False}
    )
    try:
        load_extensions(connection)
        connection.execute(target.attach_sql())
    except BaseException:
        connection.close()
        raise
    return connection


# One in-memory DuckDB per process and lake, the lake attached once (loading the extensions and attaching cost about
# a second); each `connect` is a new connection to it, with its own transactions.
_DATABASES: dict[tuple, duckdb.DuckDBPyConnection] = {}
_DATABASES_LOCK = threading.Lock()


def connect(target: DuckLakeTarget, config: dict) -> duckdb.DuckDBPyConnection:
    """A connection with the lake attached and in use, so unqualified `bronze.x` is the lake's table."""
    key = (os.getpid(), target, tuple(sorted(config.items())))
    for attempt in (1, 2):
        with _DATABASES_LOCK:
            database = _DATABASES.get(key)
            if database is None:
                database = _DATABASES[key] = _open(target, config)
        connection = database.cursor()
        try:
            connection.execute(f"use {CATALOG}")
            connection.execute("select 1").fetchall()
            return connection
        except duckdb.Error:
            connection.close()
            with _DATABASES_LOCK:  # a broken database (the catalog restarted): open it anew, once
                if _DATABASES.get(key) is database:
                    del _DATABASES[key]
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def lock_key(table: str, week: date | None) -> int:
    """A signed 64-bit advisory-lock key for one table and week (or the whole table)."""
    name = f"custpipe:{table}:{week.isoformat() if week else '*'}"
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class PartitionLocks:
    """PostgreSQL advisory locks on the catalog database, one per table and week, held while that week is written.

    DuckLake commits concurrent inserts into an empty partition without a conflict, so two runs writing the same
    week would both delete nothing and both insert: the lock makes the second wait and then replace the first's
    rows. A session lock on its own connection: a writer that dies releases it with its connection.
    """

    def __init__(self, dsn: str, *, timeout_s: float = 600.0):
        self.dsn = dsn
        self.timeout_s = timeout_s
        self._connection = None

    def _cursor(self):
        if self._connection is None or self._connection.closed:
            import psycopg2

            self._connection = psycopg2.connect(self.dsn)
            self._connection.autocommit = True
        return self._connection.cursor()

    @contextlib.contextmanager
    def hold(self, table: str, week: date | None = None) -> Iterator[None]:
        key = lock_key(table, week)
        with self._cursor() as cursor:
            cursor.execute("set lock_timeout = %s", [f"{int(self.timeout_s * 1000)}ms"])
            cursor.execute("select pg_advisory_lock(%s)", [key])
        try:
            yield
        finally:
            with self._cursor() as cursor:
                cursor.execute("select pg_advisory_unlock(%s)", [key])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def is_conflict(error: BaseException) -> bool:
    """A commit DuckLake refused because a concurrent transaction changed the same table: safe to redo."""
    text = str(error).lower()
    return isinstance(error, duckdb.Error) and ("conflict" in text or "failed to commit ducklake" in text)


def retry_conflicts(attempt: Callable[[], T], *, attempts: int = 30, first_wait_s: float = 0.05) -> T:
    """Run `attempt` (one whole transaction) again while it fails on a DuckLake write conflict, with jittered
    exponential backoff (capped at 2 s); any other error, or the last conflict, is raised."""
    wait = first_wait_s
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except duckdb.Error as error:
            if not is_conflict(error) or number == attempts:
                raise
            logger.info(
                "DuckLake commit conflict (attempt %d of %d), redoing the transaction: %s", number, attempts, error
            )
        time.sleep(wait * (0.5 + random.random()))
        wait = min(wait * 2, 2.0)
    raise AssertionError("unreachable")
