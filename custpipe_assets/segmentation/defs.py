"""The segmentation domain's Definitions: profiles, store purchases from the API, rollups, features, segments,
metrics, their automation and freshness checks. The purchase-history API resource is bound in `custpipe_assets.definitions`."""

import dagster as dg

from custpipe_assets.core.automation import build_domain_defs
from custpipe_assets.core.settings import Settings
from custpipe_assets.segmentation import assets, automation, checks, columns

DOMAIN = "segmentation"


def build_defs(settings: Settings) -> dg.Definitions:
    def domain_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
        domain = [*assets.SEGMENTATION_REFERENCE_ASSETS, *assets.build_segmentation_assets(partitions_def)]
        return automation.with_automation_conditions(domain)

    return build_domain_defs(
        DOMAIN, settings, domain_assets, checks.build_checks, automation.WEEKLY, columns=columns.COLUMNS
    )
