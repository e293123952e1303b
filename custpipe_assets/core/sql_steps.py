"""Dagster wiring shared by steps that compute in the warehouse's SQL (`Warehouse.rewrite_weeks`): what they record
per week and how they report progress, the same way the IO manager does for steps that hand over frames."""

from collections.abc import Callable
from datetime import date

import dagster as dg
import duckdb
import polars as pl

from custpipe_assets.core.metadata import counts_by
from custpipe_assets.core.partitions import weeks_in_batches, weeks_of
from custpipe_assets.core.warehouse import PARTITION_COLUMN, Warehouse


def rows_per_week(rows: dict[date, int]) -> dict[str, dg.MetadataValue]:
    """The step's whole-range metadata: rows written per week."""
    return {"rows_per_week": dg.MetadataValue.json({week.isoformat(): count for week, count in sorted(rows.items())})}


def reasons_per_week(warehouse: Warehouse, quarantine: str, weeks: list[date]) -> dict[date, dict[str, int]]:
    """Quarantined rows per week and reason code, for the per-week `quarantined_<reason>` figures."""
    frame = warehouse.query(
        f"select {PARTITION_COLUMN}, reason from {quarantine} where {PARTITION_COLUMN} = any($weeks)", {"weeks": weeks}
    )
    return {
        week: counts_by(frame.filter(frame[PARTITION_COLUMN] == week), "reason")
        for week in frame[PARTITION_COLUMN].unique()
    }


def rewrite_in_batches(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    tables: dict[str, pl.Schema],
    weight: dict[date, int],
    budget: int,
    write: Callable[[duckdb.DuckDBPyConnection, list[date]], None],
) -> dict[str, dict[date, int]]:
    """The step's weeks rewritten batch after batch (`Warehouse.rewrite_weeks`), each batch's `weight` (landed bytes,
    rows read) within `budget` so memory stays flat over any range; a line per week logged as its batch commits.
    Returns rows per week of each table."""
    weeks = weeks_of(context)
    rows: dict[str, dict[date, int]] = {table: {} for table in tables}
    for batch in weeks_in_batches(weeks, weight, budget):
        written = warehouse.rewrite_weeks(tables, batch, write)
        for table in tables:
            rows[table] |= written[table]
        first = next(iter(tables))
        _log_batch(context, first, batch, rows[first], weeks)
    return rows


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
