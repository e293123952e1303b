"""The conversions domain's Definitions: batches, mapping, matching, the insights report, their automation and
freshness checks."""

import dagster as dg

from custpipe_assets.conversions import assets, automation, checks, columns
from custpipe_assets.core.automation import build_domain_defs
from custpipe_assets.core.settings import Settings

DOMAIN = "conversions"


def build_defs(settings: Settings) -> dg.Definitions:
    def domain_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
        weekly = assets.build_conversion_assets(partitions_def, settings.reports_dir / "conversions")
        return [*assets.CONVERSION_REFERENCE_ASSETS, *weekly]

    return build_domain_defs(
        DOMAIN, settings, domain_assets, checks.build_checks, automation.WEEKLY, columns=columns.COLUMNS
    )
