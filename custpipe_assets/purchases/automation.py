"""Weekly job, Monday schedule and arrival sensor of the purchases domain: online transactions by day folder."""

from custpipe_assets.core.arrivals import LandedFiles, week_of_iso_date
from custpipe_assets.core.automation import Arrivals, WeeklyAutomation
from custpipe_assets.purchases import assets
from custpipe_assets.purchases.transaction_files import TRANSACTIONS_DIR, TRANSACTIONS_FILE

WEEKLY_TRANSACTIONS_JOB = "weekly_transactions"


LANDED_FILES = LandedFiles(  # a day folder's file holds that day's week
    f"{TRANSACTIONS_DIR}/d=*/{TRANSACTIONS_FILE}", lambda path: week_of_iso_date(path.parent.name.removeprefix("d="))
)


WEEKLY = WeeklyAutomation(
    WEEKLY_TRANSACTIONS_JOB,
    "One week of online transactions: bronze -> silver -> gold purchase counts, with their checks.",
    arrivals=Arrivals(
        "transaction_arrivals",
        LANDED_FILES,
        recorded_on=assets.BRONZE_TRANSACTIONS,
        description="Runs exactly the weeks whose transaction day files differ from what bronze/transactions last "
        "read for that week (once per file set).",
    ),
)
