"""Weekly jobs, their Monday schedules and their file-arrival sensors, built the same way for every domain."""

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from custpipe_assets.core.arrivals import LandedFiles, detect_week_arrivals, monday_of
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.partitions import contiguous_week_ranges, week_range_tags

# No step retry policy: a step fails at once with its message (a format error does not get better by trying again).
# Transient failures are retried where they happen: the warehouse waits for DuckDB's writer lock
# (`Warehouse.connect`), the purchase-history client retries connection errors and 5xx/429 with backoff.
SCHEDULE_HOUR_UTC = 4  # Monday 04:00 UTC: late weekend files make it into the week that just ended


def weekly_job(name: str, selection: Iterable[dg.AssetKey], partitions_def: dg.PartitionsDefinition, description: str):
    return dg.define_asset_job(
        name, selection=dg.AssetSelection.assets(*selection), partitions_def=partitions_def, description=description,
    )


def monday_schedule(job) -> dg.ScheduleDefinition:
    """Runs the last complete week (never the current one) every Monday morning."""
    return dg.build_schedule_from_partitioned_job(
        job, hour_of_day=SCHEDULE_HOUR_UTC, minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING
    )


def monday_range_schedule(job, partitions_def: dg.TimeWindowPartitionsDefinition, *, weeks: int) -> dg.ScheduleDefinition:
    """Every Monday morning, one run over the last `weeks` complete weeks: for a domain where a week's result
    depends on the week after it (the conversions matching looks ahead), the week before is run again."""

    @dg.schedule(name=f"{job.name}_schedule", job=job, cron_schedule=f"0 {SCHEDULE_HOUR_UTC} * * 1",
                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Monday {SCHEDULE_HOUR_UTC:02d}:00 UTC: the last {weeks} complete weeks, in one run.")
    def _schedule(context: dg.ScheduleEvaluationContext):
        last = monday_of(context.scheduled_execution_time.date()) - timedelta(days=7)
        valid = _partition_weeks(partitions_def)
        chosen = {last - timedelta(days=7 * back) for back in range(weeks)} & valid
        if not chosen:
            return dg.SkipReason(f"no complete week yet (the first is {min(valid, default=None)})")
        first, final = min(chosen), max(chosen)
        return dg.RunRequest(run_key=f"{job.name}:{first}..{final}", tags=week_range_tags(first, final))

    return _schedule


def _partition_weeks(partitions_def: dg.PartitionsDefinition) -> set[date]:
    return {date.fromisoformat(key) for key in partitions_def.get_partition_keys()}


def arrival_sensor(
    name: str,
    job,
    partitions_def: dg.PartitionsDefinition,
    *,
    landed: LandedFiles,
    description: str,
    neighbour_weeks: int = 0,
) -> dg.SensorDefinition:
    """Requests a run of `job` for exactly the weeks whose `landed` files are new or changed; the run
    key names the file set, so a file seen before never starts a second run.

    With `neighbour_weeks` (for a domain whose weekly results read the weeks around them), the changed weeks and that
    many weeks on either side run together, one run per stretch of consecutive weeks, so the neighbours' results
    are rebuilt in the same run, after the changed weeks' own tables.
    """

    @dg.sensor(name=name, job=job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description=description)
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
        root = Path(landing.path)
        if not root.is_dir():
            return dg.SkipReason(f"landing folder {root} does not exist")
        arrivals = detect_week_arrivals(root.glob(landed.pattern), landed.weeks_of_file, context.cursor)
        valid = _partition_weeks(partitions_def)
        if neighbour_weeks:
            requests = _range_requests(name, arrivals.ready, valid, neighbour_weeks)
        else:
            requests = [
                dg.RunRequest(partition_key=week.isoformat(), run_key=f"{name}:{week}:{fingerprint}")
                for week, fingerprint in arrivals.ready.items()
                if week in valid
            ]
        context.update_cursor(arrivals.cursor)
        if not requests:
            return dg.SkipReason(f"no new files ({len(arrivals.settling)} week(s) still being copied)")
        return requests

    return _sensor


def _range_requests(name: str, ready: dict[date, str], valid: set[date], neighbour_weeks: int) -> list[dg.RunRequest]:
    """One run per stretch of consecutive weeks among the changed weeks and their neighbours."""
    widened = {week + timedelta(days=7 * offset) for week in ready for offset in range(-neighbour_weeks, neighbour_weeks + 1)}
    requests = []
    for first, last in contiguous_week_ranges(widened & valid):
        fingerprints = "|".join(fingerprint for week, fingerprint in sorted(ready.items()) if first <= week <= last)
        digest = hashlib.sha256(fingerprints.encode()).hexdigest()[:16]
        requests.append(dg.RunRequest(run_key=f"{name}:{first}..{last}:{digest}", tags=week_range_tags(first, last)))
    return requests
