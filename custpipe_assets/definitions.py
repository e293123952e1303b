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
from custpipe_assets.conversions import automation as conversion_automation
from custpipe_assets.conversions import checks as conversion_checks
from custpipe_assets.core.automation import RETRY_POLICY
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
from custpipe_assets.product_views import automation as view_automation
from custpipe_assets.product_views import checks as view_checks

EVERYTHING_JOB = "everything"


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    partitions_def = weekly_partitions(settings.first_week)
    assets = [
        *customer_assets.REFERENCE_ASSETS,
        *customer_assets.build_transaction_assets(partitions_def),
        *segmentation_assets.SEGMENTATION_REFERENCE_ASSETS,
        *segmentation_assets.build_segmentation_assets(partitions_def),
        *conversion_assets.CONVERSION_REFERENCE_ASSETS,
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
    jobs, schedules, sensors = [everything], [], []
    for domain in (customer_automation, conversion_automation, view_automation):
        domain_jobs, domain_schedules, domain_sensors = domain.build_automation(partitions_def)
        jobs += domain_jobs
        schedules += domain_schedules
        sensors += domain_sensors
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "io_manager": WarehouseIOManager(path=str(settings.warehouse)),
            "warehouse": WarehouseResource(path=str(settings.warehouse)),
            "landing": LandingResource(path=str(settings.landing_dir)),
            "purchases_api": PurchasesApiResource(url=settings.purchases_api_url or "", landing_dir=str(settings.landing_dir)),
        },
    )


defs = build_definitions()
