"""The purchases domain's Definitions: reference tables, weekly transactions, purchase counts, their automation and
freshness checks."""

import dagster as dg

from custpipe_assets.core.automation import domain_freshness
from custpipe_assets.core.conventions import domain_definitions
from custpipe_assets.core.partitions import weekly_partitions
from custpipe_assets.core.settings import Settings
from custpipe_assets.purchases import assets, automation, checks

DOMAIN = "purchases"


def build_defs(settings: Settings) -> dg.Definitions:
    partitions_def = weekly_partitions(settings.first_week)
    jobs, schedules, sensors = automation.build_automation(partitions_def)
    domain_assets = [
        *assets.REFERENCE_ASSETS,
        *assets.build_transaction_assets(partitions_def, automation.LANDED_FILES),
    ]
    freshness_checks, freshness_sensors = domain_freshness(DOMAIN, domain_assets)
    return domain_definitions(
        DOMAIN,
        partitions_def,
        assets=domain_assets,
        checks=[*checks.build_checks(partitions_def), *freshness_checks],
        jobs=jobs,
        schedules=schedules,
        sensors=[*sensors, *freshness_sensors],
    )
