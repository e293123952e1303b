"""The one place `Definitions` is built: every domain's `build_defs(settings)` merged, plus the resources.

`build_definitions(settings)` lets tests point the same code at a temporary landing folder and warehouse;
`defs` (what `dagster dev` loads through workspace.yaml) reads the CUSTPIPE_* environment variables, and is built
on first use rather than on import: `custpipe run` imports `build_definitions` and builds its own. Besides the
domains: the run-failure alert and the report rewrite after weekly runs (`core/alerts.py`), and the declarative
automation that keeps the unpartitioned gold tables following their inputs (`core/automation.follow_inputs`).
"""

import warnings

import dagster as dg

# Weekly partitioned checks and single-run backfills are Dagster preview/beta features we rely on deliberately.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from custpipe_assets.conversions.automation import WEEKLY_CONVERSIONS_JOB
from custpipe_assets.conversions.defs import build_defs as conversion_defs
from custpipe_assets.core.alerts import build_alert_sensors
from custpipe_assets.core.automation import WEEKLY_EXECUTOR, follow_inputs
from custpipe_assets.core.conventions import DOMAINS, EVERYTHING_JOB
from custpipe_assets.core.io_manager import WarehouseIOManager
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.partitions import weekly_partitions
from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import WarehouseResource
from custpipe_assets.product_views.automation import WEEKLY_PRODUCT_VIEWS_JOB
from custpipe_assets.product_views.defs import build_defs as product_view_defs
from custpipe_assets.purchases.automation import WEEKLY_TRANSACTIONS_JOB
from custpipe_assets.purchases.defs import build_defs as purchase_defs
from custpipe_assets.segmentation.automation import WEEKLY_STORE_PURCHASES_JOB
from custpipe_assets.segmentation.defs import build_defs as segmentation_defs
from custpipe_assets.segmentation.resources import PurchasesApiResource

DOMAIN_DEFS = {
    "purchases": purchase_defs,
    "segmentation": segmentation_defs,
    "conversions": conversion_defs,
    "product_views": product_view_defs,
}
assert tuple(DOMAIN_DEFS) == DOMAINS
WEEKLY_JOBS = (WEEKLY_TRANSACTIONS_JOB, WEEKLY_STORE_PURCHASES_JOB, WEEKLY_CONVERSIONS_JOB, WEEKLY_PRODUCT_VIEWS_JOB)


def purchases_api(settings: Settings) -> PurchasesApiResource:
    """The configured API; with no URL, the bundled stand-in service (started per step, on 127.0.0.1)."""
    if settings.purchases_api_url:
        return PurchasesApiResource(url=settings.purchases_api_url)
    from custpipe_assets.sample.bundled_api import BundledPurchasesApi  # the stand-in, only when no URL is set

    return BundledPurchasesApi(landing_dir=str(settings.landing_dir))


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    everything = dg.define_asset_job(
        EVERYTHING_JOB,
        selection=dg.AssetSelection.all(include_sources=False),
        partitions_def=weekly_partitions(settings.first_week),
        description="Every asset and check; launched over a range of weeks it runs as one run.",
    )
    resources = {
        "io_manager": WarehouseIOManager(path=str(settings.warehouse), data_path=settings.ducklake_data_path),
        "warehouse": WarehouseResource(path=str(settings.warehouse), data_path=settings.ducklake_data_path),
        "landing": LandingResource(path=str(settings.landing_dir)),
        "purchases_api": purchases_api(settings),
    }
    domains = dg.Definitions.merge(*(build(settings) for build in DOMAIN_DEFS.values()))
    weekly_jobs = [job for job in domains.jobs if job.name in WEEKLY_JOBS]
    return follow_inputs(
        dg.Definitions.merge(
            domains,
            # every job without an executor of its own (the main job, automation's runs, the UI's Materialize) runs its
            # steps in its run's process: DuckDB has one writer, so they would queue on the warehouse pool anyway
            dg.Definitions(
                jobs=[everything],
                resources=resources,
                executor=WEEKLY_EXECUTOR,
                sensors=build_alert_sensors(settings, weekly_jobs),
            ),
        )
    )


def __getattr__(name: str) -> dg.Definitions:
    """`defs`, built from the environment the first time it is asked for (`from ... import defs`, Dagster's
    loader) and kept: importing this module for `build_definitions` (`custpipe run`, tests) no longer builds the
    definitions a second time (about 0.1-0.4 s each)."""
    if name != "defs":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()["defs"] = built = build_definitions()
    return built


def __dir__() -> list[str]:
    """`defs` listed before it is built: Dagster finds a module's Definitions among `dir(module)`."""
    return sorted({*globals(), "defs"})
