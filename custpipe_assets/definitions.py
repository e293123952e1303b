"""The one place `Definitions` is built: every domain's assets, checks and jobs, with resources from settings.

`build_definitions(settings)` lets tests point the same code at a temporary landing folder and warehouse;
`defs` (what `dagster dev` loads through workspace.yaml) reads the CUSTPIPE_* environment variables.
"""


import dagster as dg

from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.partitions import weekly_partitions
from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import WarehouseIOManager, WarehouseResource
from custpipe_assets.customers import assets as customer_assets
from custpipe_assets.customers import checks as customer_checks

EVERYTHING_JOB = "everything"


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    partitions_def = weekly_partitions(settings.first_week)
    assets = [*customer_assets.REFERENCE_ASSETS, *customer_assets.build_transaction_assets(partitions_def)]
    checks = customer_checks.build_checks(partitions_def)
    everything = dg.define_asset_job(
        EVERYTHING_JOB,
        selection=dg.AssetSelection.all(include_sources=False),
        partitions_def=partitions_def,
        description="Every asset and check; launched over a range of weeks it runs as one run.",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[everything],
        resources={
            "io_manager": WarehouseIOManager(path=str(settings.warehouse)),
            "warehouse": WarehouseResource(path=str(settings.warehouse)),
            "landing": LandingResource(path=str(settings.landing_dir)),
        },
    )


defs = build_definitions()
