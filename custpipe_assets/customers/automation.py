"""Schedules and sensors of the customers domain: the weekly transactions job, its Monday schedule and the
arrival sensor that ingests new or changed day folders as they land."""

from datetime import date
from pathlib import Path

import dagster as dg

from custpipe_assets.core.arrivals import detect_week_arrivals, monday_of
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.customers import assets
from custpipe_assets.customers.transactions import TRANSACTIONS_DIR, TRANSACTIONS_FILE

WEEKLY_TRANSACTIONS_JOB = "weekly_transactions"


def build_transactions_job(partitions_def: dg.PartitionsDefinition, retry_policy: dg.RetryPolicy):
    return dg.define_asset_job(
        WEEKLY_TRANSACTIONS_JOB,
        selection=dg.AssetSelection.assets(
            assets.BRONZE_TRANSACTIONS, assets.TRANSACTION_LINES, assets.TRANSACTION_QUARANTINE,
            assets.CUSTOMER_PRODUCT_PURCHASES,
        ),
        partitions_def=partitions_def,
        op_retry_policy=retry_policy,
        description="One week of online transactions: bronze -> silver -> gold purchase counts, with their checks.",
    )


def _week_of_day_file(path: Path) -> date | None:
    try:
        return monday_of(date.fromisoformat(path.parent.name.removeprefix("d=")))
    except ValueError:
        return None


def build_transactions_automation(job, partitions_def: dg.PartitionsDefinition):
    """The Monday schedule (the week that just ended, at 04:00 UTC so late files make it) and the arrival sensor."""
    schedule = dg.build_schedule_from_partitioned_job(
        job, hour_of_day=4, minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING
    )

    @dg.sensor(
        name="transaction_arrivals",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs exactly the weeks whose transaction day files are new or changed (once per file set).",
    )
    def transaction_arrivals(context: dg.SensorEvaluationContext, landing: LandingResource):
        root = Path(landing.path)
        if not root.is_dir():
            return dg.SkipReason(f"landing folder {root} does not exist")
        files = root.glob(f"{TRANSACTIONS_DIR}/d=*/{TRANSACTIONS_FILE}")
        arrivals = detect_week_arrivals(files, _week_of_day_file, context.cursor)
        valid = set(partitions_def.get_partition_keys())
        requests = [
            dg.RunRequest(partition_key=week.isoformat(), run_key=f"transactions:{week}:{files_fingerprint}")
            for week, files_fingerprint in arrivals.ready.items()
            if week.isoformat() in valid
        ]
        context.update_cursor(arrivals.cursor)
        if not requests:
            return dg.SkipReason(f"no new transaction files ({len(arrivals.settling)} week(s) still being copied)")
        return requests

    return schedule, transaction_arrivals
