"""The one place `Definitions` is built: every domain's assets, checks and jobs, with resources from settings.

`build_definitions(settings)` lets tests point the same code at a temporary landing folder and warehouse;
`defs` (what `dagster dev` loads through workspace.yaml) reads the CUSTPIPE_* environment variables.
"""


import warnings

import dagster as dg

# Weekly partitioned checks and single-run backfills are Dagster preview/beta features we rely on deliberately.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from custpipe_assets.conversions import assets as conversion_assets
from custpipe_assets.conversions import checks as conversion_checks
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.partitions import weekly_partitions
from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import WarehouseIOManager, WarehouseResource
from custpipe_assets.customers import assets as customer_assets
from custpipe_assets.customers import automation as customer_automation
from custpipe_assets.customers import checks as customer_checks
from custpipe_assets.customers import segmentation_assets, segmentation_checks
from custpipe_assets.customers.resources import PurchasesApiResource
from custpipe_assets.product_views import assets as view_assets
from custpipe_assets.product_views import checks as view_checks

EVERYTHING_JOB = "everything"
# transient failures (a lock held past its timeout, a flaky source) get two more tries, 5 s then 10 s later
RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    partitions_def = weekly_partitions(settings.first_week)
    assets = [
        *customer_assets.REFERENCE_ASSETS,
        *customer_assets.build_transaction_assets(partitions_def),
        *segmentation_assets.SEGMENTATION_REFERENCE_ASSETS,
        *segmentation_assets.build_segmentation_assets(partitions_def),
        *conversion_assets.CONVERSION_SOURCE_ASSETS,
        *conversion_assets.build_conversion_assets(partitions_def, settings.reports_dir / "conversions"),
        *view_assets.ORDER_ASSETS,
        *view_assets.build_view_assets(partitions_def, settings.ctr_snapshot),
    ]
    checks = [
        *customer_checks.build_checks(partitions_def),
        *segmentation_checks.build_checks(partitions_def),
        *conversion_checks.build_checks(partitions_def),
        *view_checks.build_checks(partitions_def),
    ]
    everything = dg.define_asset_job(
        EVERYTHING_JOB,
        selection=dg.AssetSelection.all(include_sources=False),
        partitions_def=partitions_def,
        op_retry_policy=RETRY_POLICY,
        description="Every asset and check; launched over a range of weeks it runs as one run.",
    )
    transactions_job = customer_automation.build_transactions_job(partitions_def, RETRY_POLICY)
    transactions_schedule, transaction_arrivals = customer_automation.build_transactions_automation(
        transactions_job, partitions_def
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[everything, transactions_job],
        schedules=[transactions_schedule],
        sensors=[transaction_arrivals],
        resources={
            "io_manager": WarehouseIOManager(path=str(settings.warehouse)),
            "warehouse": WarehouseResource(path=str(settings.warehouse)),
            "landing": LandingResource(path=str(settings.landing_dir)),
            "purchases_api": PurchasesApiResource(url=settings.purchases_api_url or "", landing_dir=str(settings.landing_dir)),
        },
    )


defs = build_definitions()
