"""Dagster's SQLite event log, kept open: the instance's `event_log_storage` (see `run.INSTANCE_YAML`).

Dagster's own `SqliteEventLogStorage` builds a new SQLAlchemy engine for every event it stores: it opens the
database, compiles the insert afresh (a new engine has an empty statement cache), commits, closes, and the close of
the last connection checkpoints the write-ahead log. A run over 52 weeks stores about 360 events, and that cost
about 12 ms each here: 4 s of a run whose work took 15 s. This subclass keeps one engine per database file (the
index and the last few runs), so statements compile once and connections stay open, and it commits with
`synchronous = NORMAL`, which in SQLite's WAL mode (Dagster's) never corrupts the file but may lose the last
events if the machine itself loses power. Same files, same layout as the default: switching back keeps history.
"""

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy
from dagster import _check as check
from dagster._config import StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData

ENGINES_KEPT = 8  # the index database and the runs written or read last


class KeptOpenSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's per-run SQLite event log under `<dagster_home>/history/runs`, with engines kept open."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, sqlalchemy.Engine] = OrderedDict()  # before Dagster's set-up connects
        super().__init__(str(Path(dagster_home) / "history" / "runs"), inst_data)

    @classmethod
    def config_type(cls) -> dict:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> "KeptOpenSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sqlalchemy.Connection]:
        with self._db_lock:
            check.str_param(shard, "shard")
            engine = self._engine(shard)
            with engine.connect() as connection, connection.begin():
                yield connection

    def _engine(self, shard: str) -> sqlalchemy.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = sqlalchemy.create_engine(
            self.conn_string_for_shard(shard), connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        )
        sqlalchemy.event.listen(engine, "connect", _commit_without_waiting_for_the_disk)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > ENGINES_KEPT:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    def _close_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._close_engines()  # before Dagster deletes the run files under them
        super().wipe()

    def dispose(self) -> None:
        self._close_engines()
        super().dispose()


def _commit_without_waiting_for_the_disk(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")
