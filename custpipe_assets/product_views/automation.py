"""Weekly job, schedule and arrival sensor of the product-views domain: new view files run their UTC week."""


from custpipe_assets.core.arrivals import LandedFiles, week_of_iso_date
from custpipe_assets.core.automation import arrival_sensor, monday_schedule, weekly_job
from custpipe_assets.product_views import assets

WEEKLY_PRODUCT_VIEWS_JOB = "weekly_product_views"


LANDED_FILES = LandedFiles(  # a view file named `<UTC day>_...json` holds that day's week
    f"{assets.AMARO_DIR}/product_views/*/*.json", lambda path: week_of_iso_date(path.name[:10])
)


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
        landed=LANDED_FILES,
        description="Runs exactly the weeks whose product-view files are new or changed (once per file set).",
    )
    return [job], [monday_schedule(job)], [sensor]
