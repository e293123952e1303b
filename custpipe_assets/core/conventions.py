"""What every domain's Dagster definitions share: kinds, the warehouse pool, owners, and how a domain's assets are
marked (group and `domain` tag = the domain; the layer, the key's first part, as a kind badge; the column schemas of
its tables), plus the job that runs all of one domain (what `make run` launches for each domain whose sources
landed)."""

from collections.abc import Mapping, Sequence

import dagster as dg

from custpipe_assets.core.columns import COLUMN_SCHEMA
from custpipe_assets.core.partitions import HISTORY_BACKFILL

KINDS = {"polars", "duckdb"}
POOL = "warehouse"  # every asset and check that writes the warehouse shares it (limit 1: DuckDB has one writer)
OWNERS = ["team:data-engineering"]
LAYERS = ("bronze", "silver", "gold")
EVERYTHING_JOB = "everything"
DOMAINS = ("purchases", "segmentation", "conversions", "product_views")  # in the order the main job runs them


# Marks an unpartitioned asset that follows its inputs; `core.automation.follow_inputs` (applied when the
# definitions are merged) replaces the mark with the condition that works beside weekly inputs (`follows_inputs`).
FOLLOWS_INPUTS = dg.AutomationCondition.eager().with_label("follows_inputs")


def table_out(key: dg.AssetKey, description: str, *extra_kinds: str) -> dg.AssetOut:
    """One warehouse table of a multi-asset (Polars frames written by DuckDB), with the kinds of its source."""
    return dg.AssetOut(key=key, kinds=KINDS | set(extra_kinds), description=description)


def table_asset(key: dg.AssetKey, description: str, *extra_kinds: str, **asset_args):
    """`@dg.asset` of one warehouse table: the kinds as `table_out`, the warehouse pool unless `asset_args` name one."""
    return dg.asset(key=key, description=description, kinds=KINDS | set(extra_kinds), **{"pool": POOL, **asset_args})


def weekly_asset_args(partitions_def: dg.PartitionsDefinition) -> dict:
    """What every weekly asset and multi-asset is declared with (`**weekly_asset_args(...)`): the weekly partitions,
    one run over a range of weeks (`HISTORY_BACKFILL`) and the warehouse pool."""
    return {"partitions_def": partitions_def, "backfill_policy": HISTORY_BACKFILL, "pool": POOL}


def following_table(key: dg.AssetKey, description: str, **inputs: dg.AssetKey):
    """`@dg.asset` of an unpartitioned warehouse table computed from other tables, which it follows
    (`FOLLOWS_INPUTS`): each keyword names a parameter of the function and the asset loaded into it."""
    ins = {name: dg.AssetIn(input_key) for name, input_key in inputs.items()}
    return table_asset(key, description, automation_condition=FOLLOWS_INPUTS, ins=ins)


def domain_job_name(domain: str) -> str:
    return f"{EVERYTHING_JOB}_{domain}"


def in_domain(
    domain: str,
    assets: Sequence[dg.AssetsDefinition],
    columns: Mapping[dg.AssetKey, dg.TableSchema] | None = None,
) -> list[dg.AssetsDefinition]:
    """The domain as group, tag and owner; the layer as a kind badge; the tables' `columns` (`with_column_schemas`);
    source code references for the UI."""

    def mark(spec: dg.AssetSpec) -> dg.AssetSpec:
        layer_kind = {spec.key.path[0]} & set(LAYERS)
        return spec.replace_attributes(
            group_name=domain, owners=OWNERS, kinds=set(spec.kinds) | layer_kind
        ).merge_attributes(tags={"domain": domain})

    described = with_column_schemas(columns, assets) if columns else assets
    return dg.with_source_code_references(dg.map_asset_specs(mark, described))


def with_column_schemas(
    columns: Mapping[dg.AssetKey, dg.TableSchema], assets: Sequence[dg.AssetsDefinition]
) -> list[dg.AssetsDefinition]:
    """Each table's column schema (`core.columns.table_schema`) on its asset, for the UI before any materialization.
    Every key of `columns` must be one of `assets` (a schema for an asset that is not there is a mistake)."""
    keys = {spec.key for assets_def in assets for spec in assets_def.specs}
    unknown = sorted(key.to_user_string() for key in set(columns) - keys)
    if unknown:
        raise ValueError(f"column schemas for assets that are not defined: {unknown}")

    def describe(spec: dg.AssetSpec) -> dg.AssetSpec:
        schema = columns.get(spec.key)
        return spec if schema is None else spec.merge_attributes(metadata={COLUMN_SCHEMA: schema})

    return dg.map_asset_specs(describe, assets)


def domain_definitions(
    domain: str,
    partitions_def: dg.PartitionsDefinition,
    *,
    assets: Sequence[dg.AssetsDefinition],
    checks: Sequence[dg.AssetChecksDefinition],
    columns: Mapping[dg.AssetKey, dg.TableSchema] | None = None,
    jobs: Sequence = (),
    schedules: Sequence = (),
    sensors: Sequence = (),
) -> dg.Definitions:
    """One domain's Definitions: its marked assets (with the column schemas of its tables), checks, automation, and
    the job over all of it."""
    everything = dg.define_asset_job(
        domain_job_name(domain),
        selection=dg.AssetSelection.groups(domain),
        partitions_def=partitions_def,
        description=f"Every asset and check of the {domain} domain, over a range of weeks in one run.",
    )
    return dg.Definitions(
        assets=in_domain(domain, assets, columns),
        asset_checks=checks,
        jobs=[everything, *jobs],
        schedules=schedules,
        sensors=sensors,
    )
