"""The weekly partitions every history asset shares: weeks start Monday 00:00 UTC, from CUSTPIPE_FIRST_WEEK."""

from __future__ import annotations

from datetime import date

import dagster as dg

# a history backfill is one run over the partition range, not one run (seconds of launch overhead) per week
HISTORY_BACKFILL = dg.BackfillPolicy.single_run()


def weekly_partitions(first_week: date) -> dg.WeeklyPartitionsDefinition:
    """Weeks from `first_week` (a Monday) to the last complete week; `day_offset=1` makes them start on Monday."""
    return dg.WeeklyPartitionsDefinition(start_date=first_week.isoformat(), day_offset=1, timezone="UTC")
