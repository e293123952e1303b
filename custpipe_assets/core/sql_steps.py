"""Dagster wiring shared by steps that compute in the warehouse's SQL (`Warehouse.rewrite_weeks`): what they record
per week and how they report progress, the same way the IO manager does for steps that hand over frames."""

from datetime import date

import dagster as dg

from custpipe_assets.core.metadata import counts_by
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


def log_batch(
    context: dg.AssetExecutionContext, table: str, batch: list[date], rows: dict[date, int], weeks: list[date]
) -> None:
    """A line per week of a batch once it is written (as the IO manager logs each week), so a long backfill shows
    how far it got; the weeks of one batch commit together, so their lines come together."""
    for week in batch:
        context.log.info(
            f"{table}: week {week} written ({weeks.index(week) + 1}/{len(weeks)}), {rows.get(week, 0):,} rows"
        )
