"""Weekly job, schedule and arrival sensor of the product-views domain: new view files run their UTC week."""

from datetime import date
from pathlib import Path

from custpipe_assets.core.arrivals import monday_of
from custpipe_assets.core.automation import arrival_sensor, monday_schedule, weekly_job
from custpipe_assets.product_views import assets

WEEKLY_PRODUCT_VIEWS_JOB = "weekly_product_views"


def _week_of_view_file(path: Path) -> list[date]:
    try:
        return [monday_of(date.fromisoformat(path.name[:10]))]
    except ValueError:
        return []


LANDED_FILES = (f"{assets.AMARO_DIR}/product_views/*/*.json", _week_of_view_file)  # landing glob, weeks of a file


def build_automation(partitions_def):
    job = weekly_job(
        WEEKLY_PRODUCT_VIEWS_JOB,
        [assets.BRONZE_VIEW_EVENTS, assets.BRONZE_VIEW_REJECTS, assets.SILVER_VIEWS, assets.VIEW_QUARANTINE,
         assets.IGNORED_EVENTS, assets.CTR_PER_MINUTE],
        partitions_def,
        "One week of product-view events: bronze -> silver views -> CTR per minute (the API snapshot follows).",
    )
    sensor = arrival_sensor(
        "product_view_arrivals", job, partitions_def,
        pattern=LANDED_FILES[0], weeks_of_file=LANDED_FILES[1],
        description="Runs exactly the weeks whose product-view files are new or changed (once per file set).",
    )
    return [job], [monday_schedule(job)], [sensor]
