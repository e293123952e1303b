"""What every domain's Dagster definitions share: kinds, the warehouse pool, owners, and how a domain's assets are
marked (group and `domain` tag = the domain; the layer, the key's first part, as a kind badge), plus the job that
runs all of one domain (what `make run` launches for each domain whose sources landed)."""

from collections.abc import Sequence

import dagster as dg

KINDS = {"polars", "duckdb"}
POOL = "warehouse"  # every asset and check that writes the warehouse shares it (limit 1: DuckDB has one writer)
OWNERS = ["team:data-engineering"]
LAYERS = ("bronze", "silver", "gold")
EVERYTHING_JOB = "everything"
DOMAINS = ("purchases", "segmentation", "conversions", "product_views")  # in the order the main job runs them


# Marks an unpartitioned asset that follows its inputs; `core.automation.follow_inputs` (applied when the
# definitions are merged) replaces the mark with the condition that works beside weekly inputs (`follows_inputs`).
FOLLOWS_INPUTS = dg.AutomationCondition.eager().with_label("follows_inputs")


def domain_job_name(domain: str) -> str:
    return f"{EVERYTHING_JOB}_{domain}"


def in_domain(domain: str, assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The domain as group, tag and owner; the layer as a kind badge; source code references for the UI."""

    def mark(spec: dg.AssetSpec) -> dg.AssetSpec:
        layer_kind = {spec.key.path[0]} & set(LAYERS)
        return spec.replace_attributes(
            group_name=domain, owners=OWNERS, kinds=set(spec.kinds) | layer_kind
        ).merge_attributes(tags={"domain": domain})

    return dg.with_source_code_references(dg.map_asset_specs(mark, assets))


def domain_definitions(
    domain: str,
    partitions_def: dg.PartitionsDefinition,
    *,
    assets: Sequence[dg.AssetsDefinition],
    checks: Sequence[dg.AssetChecksDefinition],
    jobs: Sequence = (),
    schedules: Sequence = (),
    sensors: Sequence = (),
) -> dg.Definitions:
    """One domain's Definitions: its marked assets, checks, automation, and the job over all of it."""
    everything = dg.define_asset_job(
        domain_job_name(domain),
        selection=dg.AssetSelection.groups(domain),
        partitions_def=partitions_def,
        description=f"Every asset and check of the {domain} domain, over a range of weeks in one run.",
    )
    return dg.Definitions(
        assets=in_domain(domain, assets),
        asset_checks=checks,
        jobs=[everything, *jobs],
        schedules=schedules,
        sensors=sensors,
    )
