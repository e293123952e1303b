"""The purchases domain's Definitions: reference tables, weekly transactions, purchase counts, their automation and
freshness checks."""

import dagster as dg

from custpipe_assets.core.automation import build_domain_defs
from custpipe_assets.core.settings import Settings
from custpipe_assets.purchases import assets, automation, checks, columns

DOMAIN = "purchases"


def build_defs(settings: Settings) -> dg.Definitions:
    def domain_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
        weekly = assets.build_transaction_assets(partitions_def, automation.LANDED_FILES)
        return [*assets.REFERENCE_ASSETS, *weekly]

    return build_domain_defs(
        DOMAIN, settings, domain_assets, checks.build_checks, automation.WEEKLY, columns=columns.COLUMNS
    )
