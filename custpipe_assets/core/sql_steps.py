"""Dagster wiring shared by steps that compute in the warehouse's SQL (`Warehouse.rewrite_weeks`): what they record
per week and how they report progress, the same way the IO manager does for steps that hand over frames."""

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from custpipe_assets.core.partitions import weeks_in_batches, weeks_of
from custpipe_assets.core.warehouse import PARTITION_COLUMN, Warehouse


@dataclass(frozen=True)
class Rewritten:
    """What a SQL step wrote: rows per week of each table, and the step's peak memory (the process's resident set,
    sampled while it wrote: the warehouse's buffers count, as DuckDB works inside this process)."""

    rows: dict[str, dict[date, int]]
    peak_memory_mb: float | None

    def metadata(self, table: str) -> dict[str, dg.MetadataValue]:
        """The table's whole-range metadata: rows written per week and the step's peak memory."""
        per_week = {week.isoformat(): count for week, count in sorted(self.rows[table].items())}
        peak = {} if self.peak_memory_mb is None else {"peak_memory_mb": round(self.peak_memory_mb)}
        return {"rows_per_week": dg.MetadataValue.json(per_week), **peak}


def reasons_per_week(warehouse: Warehouse, quarantine: str, weeks: list[date]) -> dict[date, dict[str, int]]:
    """Quarantined rows per week and reason code, for the per-week `quarantined_<reason>` figures."""
    counted = warehouse.query(
        f"select {PARTITION_COLUMN}, reason, count(*) as n from {quarantine} "
        f"where {PARTITION_COLUMN} = any($weeks) group by all order by all",
        {"weeks": weeks},
    )
    reasons: dict[date, dict[str, int]] = {}
    for week, reason, count in counted.iter_rows():
        reasons.setdefault(week, {})[reason] = count
    return reasons


def rewrite_in_batches(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    tables: dict[str, pl.Schema],
    weight: dict[date, int],
    budget: int,
    write: Callable[[duckdb.DuckDBPyConnection, list[date]], None],
) -> Rewritten:
    """The step's weeks rewritten batch after batch (`Warehouse.rewrite_weeks`), each batch's `weight` (landed bytes,
    rows read) within `budget` so memory stays flat over any range; a line logged as each batch commits."""
    weeks = weeks_of(context)
    rows: dict[str, dict[date, int]] = {table: {} for table in tables}
    with _PeakMemory() as peak:
        for batch in weeks_in_batches(weeks, weight, budget):
            written = warehouse.rewrite_weeks(tables, batch, write)
            for table in tables:
                rows[table] |= written[table]
            first = next(iter(tables))
            _log_batch(context, first, batch, rows[first], weeks)
    return Rewritten(rows, peak.mb)


class _PeakMemory:
    """The largest resident set seen while the block runs, sampled every 50 ms from /proc (None where there is no
    /proc): the process's lifetime peak (VmHWM) cannot say which step reached it."""

    def __enter__(self) -> "_PeakMemory":
        self.mb: float | None = _resident_mb()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            current = _resident_mb()
            if current is not None and (self.mb is None or current > self.mb):
                self.mb = current

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._sampler.join()


def _resident_mb() -> float | None:
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _log_batch(
    context: dg.AssetExecutionContext, table: str, batch: list[date], rows: dict[date, int], weeks: list[date]
) -> None:
    """A line per batch of weeks once it is written, so a long backfill shows how far it got. Not a line per week as
    the IO manager writes: a batch's weeks commit together, and each line is an event Dagster stores in its own
    SQLite transaction (52 of them took about half a second a step)."""
    done = weeks.index(batch[-1]) + 1
    context.log.info(
        f"{table}: weeks {batch[0]} .. {batch[-1]} written ({done}/{len(weeks)} weeks), "
        f"{sum(rows.get(week, 0) for week in batch):,} rows"
    )
