"""The Dagster IO manager of the warehouse (`warehouse.py`): assets hand over and receive Polars (or pandas) frames,
weekly ones optionally one week at a time.

Why our own IO manager rather than dagster-duckdb-polars' DuckDBPolarsIOManager:
- a partition is replaced inside one transaction (delete + insert commit together), so a run killed halfway leaves
  the week as it was before, and a re-run replaces it;
- rows are inserted BY NAME, so a reordered column can never land in the wrong place;
- a weekly table can be written and read one week at a time (`WeeklyBatches`), so a backfill over years of history
  holds one week in memory, not the whole range.
Asset key `["silver", "transaction_lines"]` is the table `silver.transaction_lines`; weekly tables carry their
partition in a DATE column named `week_start`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import dagster as dg
import pandas as pd
import polars as pl

from custpipe_assets.core.metadata import table_metadata
from custpipe_assets.core.partitions import weeks_of
from custpipe_assets.core.warehouse import PARTITION_COLUMN, Warehouse, detached, table_name


@dataclass
class WeeklyBatches:
    """A weekly table seen one week at a time: `load(week)` gives that week's rows.

    Produced by a weekly asset (the IO manager writes each week as it is produced) or handed to one as input (each
    week is read when iterated), so memory holds one week whatever the length of the partition range.
    """

    weeks: list[date]
    load: Callable[[date], pl.DataFrame]

    def __iter__(self) -> Iterator[tuple[date, pl.DataFrame]]:
        for week in self.weeks:
            yield week, self.load(week)

    def map(self, transform: Callable[[date, pl.DataFrame], pl.DataFrame]) -> WeeklyBatches:
        """Apply a per-week transform lazily; nothing runs until the batches are iterated."""
        return WeeklyBatches(self.weeks, lambda week: transform(week, self.load(week)))


class SetAsidePerWeek:
    """Small frames a weekly step sets aside for a later output of the same step (its rejects, its counts).

    The step's first output is written week by week as it is produced; what each week set aside is held, detached
    from that week's buffers, until the later output writes that week and lets it go.
    """

    def __init__(self, weeks: list[date]):
        self.weeks = weeks
        self._held: dict[date, list[pl.DataFrame]] = {}

    def keep(self, week: date, frame: pl.DataFrame) -> None:
        self._held.setdefault(week, []).append(detached(frame))

    def batches(self) -> WeeklyBatches:
        """The held frames as weekly batches (each week's frames concatenated), released as they are written."""
        return WeeklyBatches(self.weeks, lambda week: pl.concat(self._held.pop(week)))


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores Polars (or pandas) frames as DuckDB tables `<layer>.<table>`; weekly assets one week per transaction."""

    path: str
    data_path: str | None = None  # a DuckLake's data path (CUSTPIPE_DUCKLAKE_DATA_PATH); unused for a DuckDB file

    def _warehouse(self) -> Warehouse:
        return Warehouse(self.path, data_path=self.data_path)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        table = table_name(context.asset_key)
        warehouse = self._warehouse()
        if not context.has_asset_partitions:
            if not isinstance(obj, pl.DataFrame | pd.DataFrame):
                raise TypeError(f"{table}: an unpartitioned asset returns a DataFrame, got {type(obj).__name__}")
            warehouse.replace_table(table, obj)
            context.add_output_metadata(table_metadata(pl.from_pandas(obj) if isinstance(obj, pd.DataFrame) else obj))
            return
        batches = obj if isinstance(obj, WeeklyBatches) else _split_by_week(obj, weeks_of(context))
        written = warehouse.replace_weeks(table, batches)
        for week, rows in written.rows.items():  # per partition, so the UI plots each week's own figures
            quarantined = {f"quarantined_{code}": count for code, count in written.reasons[week].items()}
            _add_partition_metadata(context, week, {"dagster/row_count": rows, **quarantined})
        metadata = {
            "rows_per_week": dg.MetadataValue.json({week.isoformat(): rows for week, rows in written.rows.items()})
        }
        if written.preview is not None:  # column schema and a preview from the last week that has rows
            metadata.update(table_metadata(written.preview))
            del metadata["dagster/row_count"]
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> object:
        table = table_name(context.asset_key)
        warehouse = self._warehouse()
        wanted = context.dagster_type.typing_type
        if context.has_asset_partitions:
            weeks = weeks_of(context)
            if wanted is WeeklyBatches:
                return WeeklyBatches(weeks, lambda week: warehouse.read(table, [week]))
            frame = warehouse.read(table, weeks)
        else:
            frame = warehouse.read(table)
        return frame.to_pandas() if wanted is pd.DataFrame else frame


def _add_partition_metadata(context: dg.OutputContext, week: date, metadata: dict) -> None:
    """Metadata for one week's materialization event, through the step context (the public per-partition API,
    `add_asset_metadata`, lives there); a bare OutputContext built in a test has no step and gets none."""
    try:
        step = context.step_context
    except dg.DagsterInvariantViolationError:
        return
    step.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=week.isoformat())


def _split_by_week(frame: pl.DataFrame | pd.DataFrame, weeks: list[date]) -> WeeklyBatches:
    """A whole-range frame seen as weekly batches, so every week of the range is replaced (empty weeks too)."""
    frame = pl.from_pandas(frame) if isinstance(frame, pd.DataFrame) else frame
    if PARTITION_COLUMN not in frame.columns:
        raise ValueError(f"a weekly frame needs a {PARTITION_COLUMN} column")
    return WeeklyBatches(weeks, lambda week: frame.filter(pl.col(PARTITION_COLUMN) == week))
