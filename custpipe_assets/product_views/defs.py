"""The product-views domain's Definitions: orders, view events, CTR per minute, the API snapshot, automation, freshness
checks."""

import dagster as dg

from custpipe_assets.core.automation import build_domain_defs
from custpipe_assets.core.settings import Settings
from custpipe_assets.product_views import assets, automation, checks, columns

DOMAIN = "product_views"


def build_defs(settings: Settings) -> dg.Definitions:
    def domain_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
        weekly = assets.build_view_assets(partitions_def, settings.ctr_snapshot, automation.LANDED_FILES)
        return [*assets.ORDER_ASSETS, *weekly]

    return build_domain_defs(
        DOMAIN, settings, domain_assets, checks.build_checks, automation.WEEKLY, columns=columns.COLUMNS
    )
