"""Dagster's SQLite event log with its engines kept: the instance's `event_log_storage` (see `run.INSTANCE_YAML`).

Dagster's own `SqliteEventLogStorage` builds a new SQLAlchemy engine for every event it stores, so it compiles each
insert afresh (a new engine has an empty statement cache), commits with SQLite's default `synchronous = FULL`, and
closes the file's only connection, on which SQLite checkpoints the write-ahead log and deletes it. A run over 52
weeks stores about 360 events, at about 12 ms each here. This subclass keeps one engine per database file (the index
and the last few runs), so statements compile once; keeps one idle connection to each of those files, so closing a
used one checkpoints nothing; and commits with `synchronous = NORMAL`, which in SQLite's WAL mode (Dagster's) never
corrupts the file but may lose the last events if the machine itself loses power. Each use still opens a fresh
connection: a pooled one kept an old read snapshot, and a process reading the instance then missed the runs another
process had written since. Same files, same layout as the default: switching back keeps history.

It also stores a batch of events in one transaction per file (`store_event_batch`; Dagster hands it a batch when
`DAGSTER_EVENT_BATCH_SIZE` is set, as `custpipe run` and `make dev` do: a run's planned materializations and checks,
and a step's per-week materializations of an asset). Dagster's SQLite log stores a batch event by event, two or three
commits each: 4 ms a week and asset here. A check's planned execution of each week is one row holding the whole
event, which Dagster serializes once per row; here once per check (21 checks x 52 weeks took 0.2-0.3 s of a run).
"""

import contextlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy
from alembic.runtime.migration import MigrationContext
from dagster import _check as check
from dagster._config import StringSource
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy.pool import NullPool

ENGINES_KEPT = 8  # the index database and the runs written or read last
# Dagster hands events to `store_event_batch` in batches of at most this many when the variable is set (it reads it
# at each event): a run's planned materializations and checks, and a step's per-week materializations of an asset.
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "1000"


class KeptEnginesSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's per-run SQLite event log under `<dagster_home>/history/runs`, with its engines kept."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, sqlalchemy.Engine] = OrderedDict()  # before Dagster's set-up connects
        self._tables_present: set[str] = set()
        self._keepers: dict[str, sqlite3.Connection] = {}
        # while `store_event_batch` runs (under the lock): each file's open connection, and what closes them
        self._batch_connections: dict[str, sqlalchemy.Connection] | None = None
        self._batch_transactions: contextlib.ExitStack | None = None
        super().__init__(str(Path(dagster_home) / "history" / "runs"), inst_data)
        self._db_lock = threading.RLock()  # Dagster asks `has_table` while it holds a connection

    @classmethod
    def config_type(cls) -> dict:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> "KeptEnginesSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    @contextlib.contextmanager
    def _connect(self, shard: str) -> Iterator[sqlalchemy.Connection]:
        with self._db_lock:
            check.str_param(shard, "shard")
            if self._batch_connections is not None:  # storing a batch: the file's one transaction, begun once
                if shard not in self._batch_connections:
                    connection = self._batch_transactions.enter_context(self._engine(shard).connect())
                    self._batch_transactions.enter_context(connection.begin())
                    self._batch_connections[shard] = connection
                yield self._batch_connections[shard]
                return
            engine = self._engine(shard)
            with engine.connect() as connection, connection.begin():
                yield connection

    def _engine(self, shard: str) -> sqlalchemy.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = sqlalchemy.create_engine(
            self.conn_string_for_shard(shard),
            poolclass=NullPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        sqlalchemy.event.listen(engine, "connect", _commit_without_waiting_for_the_disk)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        self._keepers[shard] = _keeper(self.path_for_shard(shard))
        while len(self._engines) > ENGINES_KEPT:
            oldest, oldest_engine = self._engines.popitem(last=False)
            oldest_engine.dispose()
            self._keepers.pop(oldest).close()
        return engine

    def _initdb(self, engine: sqlalchemy.Engine, for_index_shard: bool = False) -> None:
        """Dagster's set-up of a database file, skipped for a file it already stamped: Dagster then does nothing
        either, but first builds Alembic's revision map from its migration scripts (about 25 ms per run file a
        process opens: the check report reads every run's file, so that grew with the history)."""
        with engine.connect() as connection:
            if MigrationContext.configure(connection).get_current_revision():
                return
        super()._initdb(engine, for_index_shard)

    def has_table(self, table_name: str) -> bool:
        """Dagster's question, asked of the kept index engine and remembered once true (Dagster built an engine for
        each of the ~250 times a run asks)."""
        if table_name not in self._tables_present:
            with self._db_lock:
                engine = self._engine(INDEX_SHARD_NAME)
                with engine.connect() as connection:
                    if engine.dialect.has_table(connection, table_name):
                        self._tables_present.add(table_name)
        return table_name in self._tables_present

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Each event stored by Dagster's own `store_event`, all of them in one transaction per database file: the
        same rows as event by event, a commit per file instead of two or three per event. If any fails, none is
        stored (Dagster then stores the batch event by event)."""
        with self._db_lock, contextlib.ExitStack() as transactions:
            self._batch_connections, self._batch_transactions = {}, transactions
            try:
                for event in events:
                    self.store_event(event)
            finally:
                self._batch_connections = None
                self._batch_transactions = None

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's own rows, a planned execution per week of the check, with the event serialized once for all of
        them rather than once per row (21 checks x 52 weeks took 0.2-0.3 s of a run)."""
        planned = event.get_dagster_event().event_specific_data
        partition_keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        row = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as connection:
            connection.execute(
                AssetCheckExecutionsTable.insert(), [{**row, "partition": key} for key in partition_keys]
            )

    def _close_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
            for keeper in self._keepers.values():
                keeper.close()
            self._keepers.clear()
            self._tables_present.clear()

    def wipe(self) -> None:
        self._close_engines()  # before Dagster deletes the run files under them
        super().wipe()

    def dispose(self) -> None:
        self._close_engines()
        super().dispose()


def _keeper(path: str) -> sqlite3.Connection:
    """An idle connection to the file, kept while its engine is: SQLite checkpoints the write-ahead log and deletes
    it whenever the last connection to a file closes, and without this one each stored event was that last one.
    It read the file once (so it holds its place in the WAL index) and runs nothing else: it holds no snapshot."""
    keeper = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS, check_same_thread=False)
    keeper.execute("select count(*) from sqlite_master").fetchall()
    return keeper


def _commit_without_waiting_for_the_disk(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")
