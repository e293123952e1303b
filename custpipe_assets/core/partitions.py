"""The weekly partitions every history asset shares: weeks start Monday 00:00 UTC, from CUSTPIPE_FIRST_WEEK."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import dagster as dg

# a history backfill is one run over the partition range, not one run (seconds of launch overhead) per week
HISTORY_BACKFILL = dg.BackfillPolicy.single_run()


def weekly_partitions(first_week: date) -> dg.WeeklyPartitionsDefinition:
    """Weeks from `first_week` (a Monday) to the last complete week; `day_offset=1` makes them start on Monday."""
    return dg.WeeklyPartitionsDefinition(start_date=first_week.isoformat(), day_offset=1, timezone="UTC")


def weeks_of(context: dg.InputContext | dg.OutputContext | dg.AssetExecutionContext) -> list[date]:
    """The Monday of every partition in the context's partition range, in order."""
    if isinstance(context, (dg.InputContext, dg.OutputContext)):
        window = context.asset_partitions_time_window
    else:
        window = context.partition_time_window
    weeks, current = [], window.start
    while current < window.end:
        weeks.append(current.date())
        current = datetime.fromordinal(current.toordinal() + 7).replace(tzinfo=current.tzinfo)
    return weeks


def week_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover the weeks first..last (how a single-run backfill is launched)."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def contiguous_week_ranges(weeks: set[date]) -> list[tuple[date, date]]:
    """Mondays grouped into runs of consecutive weeks: {09-03, 09-10, 10-01} -> [(09-03, 09-10), (10-01, 10-01)]."""
    ranges: list[tuple[date, date]] = []
    for week in sorted(weeks):
        if ranges and week - ranges[-1][1] == timedelta(days=7):
            ranges[-1] = (ranges[-1][0], week)
        else:
            ranges.append((week, week))
    return ranges


def weeks_in_batches(weeks: list[date], weight: dict[date, int], budget: int) -> list[list[date]]:
    """Consecutive weeks grouped so each group's total `weight` (bytes landed, rows) stays within `budget`, a week
    heavier than the budget alone: how a SQL step over a long range bounds its memory without a statement per week."""
    batches: list[list[date]] = []
    total = 0
    for week in weeks:
        if batches and total + weight.get(week, 0) <= budget:
            batches[-1].append(week)
            total += weight.get(week, 0)
        else:
            batches.append([week])
            total = weight.get(week, 0)
    return batches
