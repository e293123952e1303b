"""The DuckDB warehouse: one file, one schema per layer, and `Warehouse`, the plain access to it shared by the Dagster
IO manager (`io_manager.py`, which says why it is our own), checks, SQL steps, the CLI summary and tests.

A week is replaced in one transaction and rows are inserted BY NAME; asset key `[layer, table]` is the table
`<layer>.<table>`, and weekly tables carry their partition in a DATE column named `week_start`.

The same interface serves a DuckLake (`CUSTPIPE_WAREHOUSE=ducklake:postgres:...`, see `ducklake.py`): the lake is
attached and USEd, a week is written under a per-partition lock, and a transaction that loses a commit race to
another writer is redone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import polars as pl
import polars.selectors as cs

from custpipe_assets.core import ducklake
from custpipe_assets.core.metadata import PREVIEW_ROWS, counts_by
from custpipe_assets.core.settings import DUCKLAKE_DATA_PATH_ENV, WAREHOUSE_ENV

logger = logging.getLogger(__name__)
PARTITION_COLUMN = "week_start"
LAYERS = ("bronze", "silver", "gold")
# DuckDB's buffer pool defaults to 80% of RAM and keeps what it read; a cap keeps a long backfill's memory flat
# (DuckDB spills to disk past it).
DUCKDB_MEMORY_LIMIT = "1GB"
DUCKDB_CONFIG = {"memory_limit": DUCKDB_MEMORY_LIMIT}
# A new warehouse file is written in DuckDB 1.4's storage format, not the 0.10 one DuckDB picks by default for old
# readers: its string compression (DICT_FSST) took about 30% less CPU to write the three transaction tables of 3M
# transactions, at the same size (measured with duckdb 1.5.5). A file made before keeps its format.
STORAGE_VERSION = "v1.4.0"
# A step that computes in SQL (`rewrite_weeks`) has the process to itself: more buffer before spilling (measured at
# 3M transactions: silver 3.8 s at 1GB, 1.7 s at 4GB), and no row order to keep (tables are read by week and key).
SQL_STEP_SETTINGS = "set memory_limit = '3GB'; set preserve_insertion_order = false"
SQL_WRITERS = max(1, min(4, os.cpu_count() or 1))


_FILE_CONFIG = {**DUCKDB_CONFIG, "storage_compatibility_version": STORAGE_VERSION}


def _create_whole(path: Path) -> None:
    """Make a new warehouse file appear whole, never empty.

    DuckDB creates a file first and writes its header after: a process that opens it in between (two runs starting
    on a new warehouse) finds "not a valid DuckDB database file" and fails. So a new file is made under a private
    name and hard-linked into place, which no other process can see half done, and which never replaces a file
    another process linked first.
    """
    if path.exists():
        return
    private = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.new")
    try:
        duckdb.connect(str(private), config=_FILE_CONFIG).close()
        os.link(private, path)
    except FileExistsError:
        pass  # another process linked its own first: open that one
    except OSError as error:
        # No hard links on this filesystem: DuckDB creates the file in place, as it would by itself.
        logger.debug("cannot link a new warehouse file into place (%s)", error)
    finally:
        private.unlink(missing_ok=True)


class WarehouseUnavailableError(dg.Failure):
    """The warehouse file cannot be opened; the message names the path and the setting to change."""


def detached(frame: pl.DataFrame) -> pl.DataFrame:
    """A compact copy of a small frame cut from a big one.

    Polars string columns are views into the original buffers: a few quarantined rows kept from a week would keep
    that whole week's text alive. Weekly assets detach what they hold on to between weeks (measured: a two-year
    backfill otherwise grows by one week of bronze per week).
    """
    return pl.from_arrow(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))


def table_name(asset_key: dg.AssetKey) -> str:
    """`["gold", "x"]` -> `gold.x`; asset keys are always layer + table."""
    if len(asset_key.path) != 2 or asset_key.path[0] not in LAYERS:
        raise ValueError(f"asset key {asset_key.to_user_string()} is not <layer>/<table> with a layer in {LAYERS}")
    return f"{asset_key.path[0]}.{asset_key.path[1]}"


@dataclass(frozen=True)
class WrittenWeeks:
    """What a weekly write did: rows per week, and a copy of the first rows of the last week that had any."""

    rows: dict[date, int]
    reasons: dict[date, dict[str, int]]  # for quarantine tables (a `reason` column): rows per reason code
    preview: pl.DataFrame | None


class Warehouse:
    """Plain access to the warehouse file, shared by the IO manager, checks, the CLI summary and tests."""

    def __init__(self, path: str | Path, *, lock_timeout_s: float = 120.0, data_path: str | None = None):
        self.lake = ducklake.DuckLakeTarget.parse(str(path), data_path) if ducklake.is_ducklake(path) else None
        self.path = Path(path) if self.lake is None else path
        self.lock_timeout_s = lock_timeout_s

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file, waiting while another process holds DuckDB's single-writer lock (or attach the lake)."""
        if self.lake is not None:
            try:
                connection = ducklake.connect(self.lake, DUCKDB_CONFIG)
            except (duckdb.Error, OSError) as error:
                raise WarehouseUnavailableError(self._unavailable(str(error))) from error
            try:
                yield connection
            finally:
                connection.close()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WarehouseUnavailableError(self._unavailable(str(error))) from error
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                _create_whole(self.path)
                connection = duckdb.connect(str(self.path), config=_FILE_CONFIG)
                break
            except duckdb.IOException as error:
                if "lock" in str(error).lower() and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise WarehouseUnavailableError(self._unavailable(str(error))) from error
            except duckdb.Error as error:
                raise WarehouseUnavailableError(self._unavailable(str(error))) from error
        try:
            yield connection
        finally:
            connection.close()

    def _unavailable(self, reason: str) -> str:
        if self.lake is not None:
            return (
                f"cannot attach the DuckLake {ducklake.PREFIX}{self.lake.catalog} "
                f"(data path {self.lake.data_path or 'as stored in its catalog'}): {reason}. "
                f"Set {WAREHOUSE_ENV} to a reachable ducklake:postgres:... catalog and {DUCKLAKE_DATA_PATH_ENV} "
                "to a path every worker can write."
            )
        return (
            f"cannot open the DuckDB warehouse at {self.path}: {reason}. "
            f"Set {WAREHOUSE_ENV} to a writable DuckDB file path."
        )

    # -- writing -------------------------------------------------------------------------------------------------

    def replace_table(self, table: str, frame: pl.DataFrame | pd.DataFrame) -> None:
        """Replace an unpartitioned table with `frame`, atomically."""
        with self.connect() as connection, self._writing(connection) as guarded:
            guarded(None, lambda: connection.execute(f"create schema if not exists {table.split('.')[0]}"))
            connection.register("incoming", frame)

            def replace() -> None:
                connection.execute("begin transaction")
                try:
                    connection.execute(f"create or replace table {table} as select * from incoming")
                    connection.execute("commit")
                except BaseException:
                    _rollback(connection)
                    raise

            guarded((table, None), replace)

    @contextlib.contextmanager
    def _writing(
        self, connection: duckdb.DuckDBPyConnection
    ) -> Iterator[Callable[[tuple | list[tuple] | None, Callable], None]]:
        """`guarded(lock, write)`: on a DuckDB file, just `write()`; on a DuckLake, `write()` under the advisory lock
        of `lock` (table, week or None for the whole table; a list of them, taken in order; no lock for None) and
        redone after a commit conflict."""
        if self.lake is None:
            yield lambda _lock, write: write()
            return
        locks = ducklake.PartitionLocks(self.lake.postgres_dsn) if self.lake.postgres_dsn else None

        def guarded(lock: tuple | list[tuple] | None, write: Callable[[], object]) -> None:
            def attempt() -> object:
                if lock is None or locks is None:
                    return write()
                with contextlib.ExitStack() as held:
                    for one in lock if isinstance(lock, list) else [lock]:
                        held.enter_context(locks.hold(*one))
                    return write()

            ducklake.retry_conflicts(attempt)

        try:
            yield guarded
        finally:
            if locks is not None:
                locks.close()

    def replace_week(self, table: str, week: date, frame: pl.DataFrame) -> None:
        """Replace one week of a weekly table in one transaction: the week is either the old rows or the new ones."""
        self.replace_weeks(table, [(week, frame)])

    def replace_weeks(self, table: str, batches: Iterable[tuple[date, pl.DataFrame]]) -> WrittenWeeks:
        """Replace week after week over one connection, each week in its own transaction; one week in memory.

        Over more than one week, a log line per week written (`custpipe_assets.core.warehouse`, captured into the
        run's log by the instance's `managed_python_loggers`), so a long backfill shows how far it got."""
        sized = getattr(batches, "weeks", batches)  # `io_manager.WeeklyBatches`: counted without loading a week
        total = len(sized) if isinstance(sized, Sized) else None
        started = time.monotonic()
        rows: dict[date, int] = {}
        reasons: dict[date, dict[str, int]] = {}
        preview: pl.DataFrame | None = None
        with self.connect() as connection, self._writing(connection) as guarded:
            guarded(None, lambda: connection.execute(f"create schema if not exists {table.split('.')[0]}"))
            for position, (week, frame) in enumerate(batches, start=1):
                incoming = _with_week(frame, week)
                connection.register("incoming", incoming)

                def replace(week: date = week) -> None:
                    connection.execute("begin transaction")
                    try:
                        if not _table_exists(connection, table):
                            connection.execute(f"create table {table} as select * from incoming limit 0")
                        connection.execute(f"delete from {table} where {PARTITION_COLUMN} = ?", [week])
                        connection.execute(f"insert into {table} by name select * from incoming")
                        connection.execute("commit")
                    except BaseException:
                        _rollback(connection)
                        raise

                try:
                    guarded((table, week), replace)
                finally:
                    connection.unregister("incoming")
                rows[week] = incoming.height
                reasons[week] = _reason_counts(incoming)
                if incoming.height or preview is None:
                    # a real copy: a slice would keep the whole week's buffers alive for the rest of the backfill
                    preview = detached(incoming.head(PREVIEW_ROWS))
                if total != 1:
                    logger.info(
                        f"{table}: week {week} written ({position}/{total or '?'}), {incoming.height:,} rows, "
                        f"{time.monotonic() - started:.1f} s so far"
                    )
        return WrittenWeeks(rows, reasons, preview)

    def rewrite_weeks(
        self,
        tables: dict[str, pl.Schema],
        weeks: list[date],
        write: Callable[[duckdb.DuckDBPyConnection, list[date]], None],
    ) -> dict[str, dict[date, int]]:
        """Replace `weeks` of `tables` with what `write(connection, weeks)` inserts, for steps that compute in the
        warehouse's SQL instead of handing over frames.

        Each table is created from its schema when absent. The weeks are split into consecutive groups, one per
        writer (`SQL_WRITERS`, in threads: one DuckDB statement here runs mostly on one core, measured at 3M
        transactions: bronze 6.1 s alone, 3.1 s as two writers); each group is one transaction that deletes its
        weeks of every table and has `write(connection, group)` insert BY NAME their new rows, so every week is
        either old or new. On a DuckLake there is one writer, holding every week's lock, and a transaction that
        loses a commit race is redone. Returns rows per week of each table."""
        written: dict[str, dict[date, int]] = {table: {} for table in tables}
        with self.connect() as connection, self._writing(connection) as guarded:
            connection.execute(SQL_STEP_SETTINGS)
            for table, schema in tables.items():
                if not _table_exists(connection, table):
                    connection.register("empty", schema.to_frame())
                    guarded(None, lambda table=table: _create_table_from(connection, table, "empty"))
                    connection.unregister("empty")

            def replace(cursor: duckdb.DuckDBPyConnection, group: list[date]) -> None:
                in_group = {"weeks": group}
                cursor.execute("begin transaction")
                try:
                    for table in tables:
                        cursor.execute(f"delete from {table} where {PARTITION_COLUMN} = any($weeks)", in_group)
                    write(cursor, group)
                    for table in tables:
                        counts = cursor.execute(
                            f"select {PARTITION_COLUMN}, count(*) from {table} "
                            f"where {PARTITION_COLUMN} = any($weeks) group by 1",
                            in_group,
                        ).fetchall()
                        written[table] |= dict.fromkeys(group, 0) | dict(counts)
                    cursor.execute("commit")
                except BaseException:
                    _rollback(cursor)
                    raise

            if self.lake is not None or len(weeks) == 1:
                locks = [(table, week) for table in sorted(tables) for week in sorted(weeks)]
                guarded(locks, lambda: replace(connection, weeks))
            else:
                groups = consecutive_groups(weeks, SQL_WRITERS)
                with ThreadPoolExecutor(len(groups)) as pool:
                    cursors = [connection.cursor() for _ in groups]
                    try:
                        list(pool.map(replace, cursors, groups))
                    finally:
                        for cursor in cursors:
                            cursor.close()
        return written

    # -- reading -------------------------------------------------------------------------------------------------

    def read(self, table: str, weeks: list[date] | None = None) -> pl.DataFrame:
        """A table as Polars (optionally only some weeks); a table never written reads as empty."""
        with self.connect() as connection:
            if not _table_exists(connection, table):
                return pl.DataFrame()
            if weeks is None:
                return _in_utc(connection.sql(f"select * from {table}").pl())
            return _in_utc(connection.execute(f"select * from {table} where {PARTITION_COLUMN} = any(?)", [weeks]).pl())

    def query(self, sql: str, parameters: dict | list | None = None) -> pl.DataFrame:
        with self.connect() as connection:
            return query_on(connection, sql, parameters)

    def table_counts(self) -> pl.DataFrame:
        """Every table of every layer with its row count, for the run summary."""
        with self.connect() as connection:
            tables = connection.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('bronze', 'silver', 'gold') and table_catalog = current_database() "
                "order by 1, 2"
            ).fetchall()
            rows = [
                {
                    "table": f"{schema}.{name}",
                    "rows": connection.execute(f"select count(*) from {schema}.{name}").fetchone()[0],
                }
                for schema, name in tables
            ]
        return pl.DataFrame(rows, schema={"table": pl.String, "rows": pl.Int64})


def consecutive_groups(weeks: list[date], count: int) -> list[list[date]]:
    """`weeks` in at most `count` consecutive groups of near-equal length: [w1..w5], 2 -> [[w1, w2, w3], [w4, w5]]."""
    count = max(1, min(count, len(weeks)))
    size, extra = divmod(len(weeks), count)
    groups, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        groups.append(weeks[start:end])
        start = end
    return groups


def query_on(connection: duckdb.DuckDBPyConnection, sql: str, parameters: dict | list | None = None) -> pl.DataFrame:
    """`Warehouse.query` over a connection already open: several queries of one step then open the file once
    (about 15 ms an opening, more than a count over a small warehouse)."""
    return _in_utc(connection.execute(sql, parameters or []).pl())


def _in_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Zoned timestamps as stored (UTC) but labelled "UTC": without its ICU extension DuckDB hands them back as
    Etc/UTC, which Polars refuses to compare with UTC."""
    return frame.with_columns(cs.datetime(time_zone="*").dt.convert_time_zone("UTC"))


def _table_exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ? and table_catalog = current_database()",
            [schema, name],
        ).fetchone()[0]
    )


def _create_table_from(connection: duckdb.DuckDBPyConnection, table: str, relation: str) -> None:
    connection.execute(f"create schema if not exists {table.split('.')[0]}")
    connection.execute(f"create table if not exists {table} as select * from {relation} limit 0")


def _rollback(connection: duckdb.DuckDBPyConnection) -> None:
    """Roll back what is left of a transaction (a commit DuckLake refused has already ended it)."""
    with contextlib.suppress(duckdb.TransactionException):
        connection.execute("rollback")


def _with_week(frame: pl.DataFrame, week: date) -> pl.DataFrame:
    """Stamp the partition column, refusing rows that belong to another week (they would be deleted by its re-run)."""
    if PARTITION_COLUMN in frame.columns:
        other = frame.filter(pl.col(PARTITION_COLUMN) != week)
        if other.height:
            raise ValueError(f"{other.height} rows carry a {PARTITION_COLUMN} other than {week}")
        return frame.with_columns(pl.col(PARTITION_COLUMN).cast(pl.Date))
    return frame.select(pl.lit(week, dtype=pl.Date).alias(PARTITION_COLUMN), pl.all())


def _reason_counts(frame: pl.DataFrame) -> dict[str, int]:
    """Rows per reason code of a quarantine frame; a descriptive reason ("duplicate of event_id 42 ...") counts
    under its leading code word ("duplicate")."""
    if "reason" not in frame.columns or frame.is_empty():
        return {}
    return counts_by(frame.select(pl.col("reason").str.extract(r"^([a-z_]+)").fill_null("other").alias("code")), "code")


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse file for checks and assets that query it directly (read-side SQL, reconciliation)."""

    path: str
    data_path: str | None = None  # a DuckLake's data path (CUSTPIPE_DUCKLAKE_DATA_PATH); unused for a DuckDB file

    def get(self) -> Warehouse:
        return Warehouse(self.path, data_path=self.data_path)
