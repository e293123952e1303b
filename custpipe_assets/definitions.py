"""The one place `Definitions` is built: every domain's assets, checks and jobs, with resources from settings.

`build_definitions(settings)` lets tests point the same code at a temporary landing folder and warehouse;
`defs` (what `dagster dev` loads through workspace.yaml) reads the CUSTPIPE_* environment variables.

Each domain is one asset group in the UI, tagged `domain=<name>` and owned by the data team; the layer stays in the
key prefix (`bronze/...`) and shows as a `bronze`/`silver`/`gold` kind badge. Besides `everything`, each domain has
a job over all of its assets (`everything_<domain>`), which the main job runs for the domains whose sources landed.
"""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

# Weekly partitioned checks and single-run backfills are Dagster preview/beta features we rely on deliberately.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from custpipe_assets.conversions import assets as conversion_assets  # noqa: E402
from custpipe_assets.conversions import automation as conversion_automation  # noqa: E402
from custpipe_assets.conversions import checks as conversion_checks  # noqa: E402
from custpipe_assets.core.landing import LandingResource  # noqa: E402
from custpipe_assets.core.partitions import weekly_partitions  # noqa: E402
from custpipe_assets.core.settings import Settings  # noqa: E402
from custpipe_assets.core.warehouse import WarehouseIOManager, WarehouseResource  # noqa: E402
from custpipe_assets.customers import assets as customer_assets  # noqa: E402
from custpipe_assets.customers import automation as customer_automation  # noqa: E402
from custpipe_assets.customers import checks as customer_checks  # noqa: E402
from custpipe_assets.customers import segmentation_assets, segmentation_checks  # noqa: E402
from custpipe_assets.customers.resources import PurchasesApiResource  # noqa: E402
from custpipe_assets.product_views import assets as view_assets  # noqa: E402
from custpipe_assets.product_views import automation as view_automation  # noqa: E402
from custpipe_assets.product_views import checks as view_checks  # noqa: E402

EVERYTHING_JOB = "everything"
LAYERS = ("bronze", "silver", "gold")
OWNERS = ["team:data-engineering"]
DOMAINS = ("purchases", "segmentation", "conversions", "product_views")


def domain_job_name(domain: str) -> str:
    """The job over every asset (and check) of one domain: what the main job runs for a domain that landed."""
    return f"{EVERYTHING_JOB}_{domain}"


@dataclass(frozen=True)
class DomainParts:
    name: str
    assets: Sequence[dg.AssetsDefinition]
    checks: Sequence[dg.AssetChecksDefinition]


def _in_domain(domain: str, assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The domain as group, tag and owner; the layer (the key's first part) as a kind badge."""

    def mark(spec: dg.AssetSpec) -> dg.AssetSpec:
        layer_kind = {spec.key.path[0]} & set(LAYERS)
        return spec.replace_attributes(
            group_name=domain, owners=OWNERS, kinds=set(spec.kinds) | layer_kind
        ).merge_attributes(tags={"domain": domain})

    return dg.map_asset_specs(mark, assets)


def build_domains(settings: Settings, partitions_def: dg.PartitionsDefinition) -> list[DomainParts]:
    reports = settings.reports_dir
    parts = [
        DomainParts(
            "purchases",
            [*customer_assets.REFERENCE_ASSETS, *customer_assets.build_transaction_assets(partitions_def)],
            customer_checks.build_checks(partitions_def),
        ),
        DomainParts(
            "segmentation",
            [*segmentation_assets.SEGMENTATION_REFERENCE_ASSETS,
             *segmentation_assets.build_segmentation_assets(partitions_def)],
            segmentation_checks.build_checks(partitions_def),
        ),
        DomainParts(
            "conversions",
            [*conversion_assets.CONVERSION_REFERENCE_ASSETS,
             *conversion_assets.build_conversion_assets(partitions_def, reports / "conversions")],
            conversion_checks.build_checks(partitions_def),
        ),
        DomainParts(
            "product_views",
            [*view_assets.ORDER_ASSETS, *view_assets.build_view_assets(partitions_def, settings.ctr_snapshot)],
            view_checks.build_checks(partitions_def),
        ),
    ]
    return [DomainParts(part.name, _in_domain(part.name, part.assets), part.checks) for part in parts]


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    partitions_def = weekly_partitions(settings.first_week)
    domains = build_domains(settings, partitions_def)
    everything = dg.define_asset_job(
        EVERYTHING_JOB,
        selection=dg.AssetSelection.all(include_sources=False),
        partitions_def=partitions_def,
        description="Every asset and check; launched over a range of weeks it runs as one run.",
    )
    jobs = [everything] + [
        dg.define_asset_job(
            domain_job_name(part.name),
            selection=dg.AssetSelection.groups(part.name),
            partitions_def=partitions_def,
            description=f"Every asset and check of the {part.name} domain, over a range of weeks in one run.",
        )
        for part in domains
    ]
    schedules, sensors = [], []
    for domain in (customer_automation, conversion_automation, view_automation):
        domain_jobs, domain_schedules, domain_sensors = domain.build_automation(partitions_def)
        jobs += domain_jobs
        schedules += domain_schedules
        sensors += domain_sensors
    return dg.Definitions(
        assets=[asset for part in domains for asset in part.assets],
        asset_checks=[check for part in domains for check in part.checks],
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "io_manager": WarehouseIOManager(path=str(settings.warehouse)),
            "warehouse": WarehouseResource(path=str(settings.warehouse)),
            "landing": LandingResource(path=str(settings.landing_dir)),
            "purchases_api": PurchasesApiResource(
                url=settings.purchases_api_url or "", landing_dir=str(settings.landing_dir)
            ),
        },
    )


defs = build_definitions()
