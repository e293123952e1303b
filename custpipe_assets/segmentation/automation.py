"""Weekly job and Monday schedule of the segmentation domain: the store purchases of a week from the API (nothing
lands, so no arrival sensor), matched to customers, and the week's rollups. Features, the model, segments and
metrics follow by declarative automation, and so does a week's rollup when the purchases domain rewrites that week's
transaction lines (a new day file): the rollups read both domains' weeks."""

import dagster as dg

from custpipe_assets.core.automation import WEEK_FOLLOWS_INPUTS, WeeklyAutomation
from custpipe_assets.segmentation import assets

WEEKLY_STORE_PURCHASES_JOB = "weekly_store_purchases"


WEEKLY = WeeklyAutomation(
    WEEKLY_STORE_PURCHASES_JOB,
    "One week of store purchases from the API, matched to customers, and the week's per-customer rollups.",
)


def with_automation_conditions(assets_defs: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The weekly rollups follow their inputs' weeks (`WEEK_FOLLOWS_INPUTS`): a week of transaction lines or store
    purchases rewritten by another job's run rebuilds that week's rollup, and the gold tables follow it."""

    def follow(spec: dg.AssetSpec) -> dg.AssetSpec:
        return (
            spec.replace_attributes(automation_condition=WEEK_FOLLOWS_INPUTS)
            if spec.key == assets.WEEKLY_ROLLUPS
            else spec
        )

    return dg.map_asset_specs(follow, assets_defs)
