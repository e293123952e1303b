"""Weekly job and Monday schedule of the segmentation domain: the store purchases of a week from the API (nothing
lands, so no arrival sensor), matched to customers, and the week's rollups. Features, the model, segments and
metrics follow by declarative automation."""

from custpipe_assets.core.automation import monday_schedule, weekly_job
from custpipe_assets.segmentation import assets

WEEKLY_STORE_PURCHASES_JOB = "weekly_store_purchases"


def build_automation(partitions_def):
    store_job = weekly_job(
        WEEKLY_STORE_PURCHASES_JOB,
        [assets.BRONZE_STORE_PURCHASES, assets.SILVER_STORE_PURCHASES, assets.STORE_QUARANTINE,
         assets.WEEKLY_ROLLUPS],
        partitions_def,
        "One week of store purchases from the API, matched to customers, and the week's per-customer rollups.",
    )
    return [store_job], [monday_schedule(store_job)], []
