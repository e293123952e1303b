"""Weekly job, schedule and arrival sensor of the conversions domain: a new batch of conversions or broker data
runs the matching for exactly the weeks its rows fall in (the look-ahead covers registrations of the next week)."""

import re
from datetime import date, datetime, timezone
from pathlib import Path

from custpipe_assets.conversions import assets
from custpipe_assets.conversions.formats import BROKER_DIR, CONVERSIONS_DIR, SOURCE_DIR
from custpipe_assets.core.arrivals import monday_of
from custpipe_assets.core.automation import arrival_sensor, monday_schedule, weekly_job

WEEKLY_CONVERSIONS_JOB = "weekly_conversions"
_CREATED_AT = re.compile(rb";(\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2};")
_UNIX_SECONDS = re.compile(rb"^(\d{9,10}),", re.MULTILINE)


def weeks_in_batch_file(path: Path) -> list[date]:
    """The Mondays of the weeks a batch file's rows fall in, read from its timestamps (junk lines are skipped)."""
    text = path.read_bytes()
    if path.parent.name == CONVERSIONS_DIR:
        days = {date.fromisoformat(day.decode()) for day in _CREATED_AT.findall(text)}
    else:
        days = {datetime.fromtimestamp(int(seconds), tz=timezone.utc).date() for seconds in _UNIX_SECONDS.findall(text)}
    return sorted({monday_of(day) for day in days})


def build_automation(partitions_def):
    job = weekly_job(
        WEEKLY_CONVERSIONS_JOB,
        [assets.BRONZE_CONVERSIONS, assets.BRONZE_REGISTRATIONS, assets.BRONZE_MAPPING, assets.BRONZE_FILES,
         assets.SILVER_CONVERSIONS, assets.SILVER_REGISTRATIONS, assets.SILVER_MAPPING, assets.CONVERSION_QUARANTINE,
         assets.CONVERSION_MATCHES],
        partitions_def,
        "Conversion and broker batches re-read and cleaned, and one week's conversions matched to registrations.",
    )
    sensor = arrival_sensor(
        "conversion_arrivals", job, partitions_def,
        pattern=f"{SOURCE_DIR}/[cb]*/*.csv", weeks_of_file=lambda path: weeks_in_batch_file(path)
        if path.parent.name in (CONVERSIONS_DIR, BROKER_DIR) else [],
        description="Runs the weeks a new or changed conversions or broker-data batch file touches.",
    )
    return [job], [monday_schedule(job)], [sensor]
