"""Weekly jobs, their Monday schedules and their file-arrival sensors, built the same way for every domain."""

from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

import dagster as dg

from custpipe_assets.core.arrivals import detect_week_arrivals
from custpipe_assets.core.landing import LandingResource

# transient failures (a lock held past its timeout, a flaky source) get two more tries, 5 s then 10 s later
RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)
SCHEDULE_HOUR_UTC = 4  # Monday 04:00 UTC: late weekend files make it into the week that just ended


def weekly_job(name: str, selection: Iterable[dg.AssetKey], partitions_def: dg.PartitionsDefinition, description: str):
    return dg.define_asset_job(
        name, selection=dg.AssetSelection.assets(*selection), partitions_def=partitions_def,
        op_retry_policy=RETRY_POLICY, description=description,
    )


def monday_schedule(job) -> dg.ScheduleDefinition:
    """Runs the last complete week (never the current one) every Monday morning."""
    return dg.build_schedule_from_partitioned_job(
        job, hour_of_day=SCHEDULE_HOUR_UTC, minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING
    )


def arrival_sensor(
    name: str,
    job,
    partitions_def: dg.PartitionsDefinition,
    *,
    pattern: str,
    weeks_of_file: Callable[[Path], Iterable[date]],
    description: str,
) -> dg.SensorDefinition:
    """Requests a run of `job` for exactly the weeks whose files (landing glob `pattern`) are new or changed; the run
    key names the file set, so a file seen before never starts a second run."""

    @dg.sensor(name=name, job=job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
               description=description)
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
        root = Path(landing.path)
        if not root.is_dir():
            return dg.SkipReason(f"landing folder {root} does not exist")
        arrivals = detect_week_arrivals(root.glob(pattern), weeks_of_file, context.cursor)
        valid = set(partitions_def.get_partition_keys())
        requests = [
            dg.RunRequest(partition_key=week.isoformat(), run_key=f"{name}:{week}:{fingerprint}")
            for week, fingerprint in arrivals.ready.items()
            if week.isoformat() in valid
        ]
        context.update_cursor(arrivals.cursor)
        if not requests:
            return dg.SkipReason(f"no new files ({len(arrivals.settling)} week(s) still being copied)")
        return requests

    return _sensor
