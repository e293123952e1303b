"""Weekly jobs, schedules and arrival sensors of the customers domain: online transactions (by day folder) and
store purchases + rollups (from the API, nothing lands: schedule only)."""


from custpipe_assets.core.arrivals import LandedFiles, week_of_iso_date
from custpipe_assets.core.automation import arrival_sensor, monday_schedule, weekly_job
from custpipe_assets.customers import assets, segmentation_assets
from custpipe_assets.customers.transactions import TRANSACTIONS_DIR, TRANSACTIONS_FILE

WEEKLY_TRANSACTIONS_JOB = "weekly_transactions"
WEEKLY_STORE_PURCHASES_JOB = "weekly_store_purchases"


LANDED_FILES = LandedFiles(  # a day folder's file holds that day's week
    f"{TRANSACTIONS_DIR}/d=*/{TRANSACTIONS_FILE}", lambda path: week_of_iso_date(path.parent.name.removeprefix("d="))
)


def build_automation(partitions_def):
    transactions_job = weekly_job(
        WEEKLY_TRANSACTIONS_JOB,
        [assets.BRONZE_TRANSACTIONS, assets.TRANSACTION_LINES, assets.TRANSACTION_QUARANTINE,
         assets.CUSTOMER_PRODUCT_PURCHASES],
        partitions_def,
        "One week of online transactions: bronze -> silver -> gold purchase counts, with their checks.",
    )
    store_job = weekly_job(
        WEEKLY_STORE_PURCHASES_JOB,
        [segmentation_assets.BRONZE_STORE_PURCHASES, segmentation_assets.SILVER_STORE_PURCHASES,
         segmentation_assets.STORE_QUARANTINE, segmentation_assets.WEEKLY_ROLLUPS],
        partitions_def,
        "One week of store purchases from the API, matched to customers, and the week's per-customer rollups.",
    )
    sensor = arrival_sensor(
        "transaction_arrivals", transactions_job, partitions_def,
        landed=LANDED_FILES,
        description="Runs exactly the weeks whose transaction day files are new or changed (once per file set).",
    )
    return [transactions_job, store_job], [monday_schedule(transactions_job), monday_schedule(store_job)], [sensor]
