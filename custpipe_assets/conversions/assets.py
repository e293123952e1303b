"""Dagster wiring for the conversions domain: affiliate conversions matched to the partner broker's registrations,
and the exploratory report. Thin wrappers over `transforms.py`, `matching.py` and `report.py`.

The sources arrive as overlapping batch files, so bronze and silver read every batch (a few thousand rows a week);
the matching is weekly by conversion time and looks ahead past the week's end, so a registration landing in the
next week is still found, and a registration is claimed by one week only.
"""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from custpipe_assets.conversions import matching, report, transforms
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.metadata import counts_by
from custpipe_assets.core.partitions import HISTORY_BACKFILL
from custpipe_assets.core.warehouse import WeeklyBatches, weeks_of

KINDS = {"polars", "duckdb"}
POOL = "warehouse"

BRONZE_CONVERSIONS = dg.AssetKey(["bronze", "conversions"])
BRONZE_REGISTRATIONS = dg.AssetKey(["bronze", "broker_registrations"])
BRONZE_MAPPING = dg.AssetKey(["bronze", "page_category_mapping"])
BRONZE_FILES = dg.AssetKey(["bronze", "conversion_source_files"])
SILVER_CONVERSIONS = dg.AssetKey(["silver", "conversions"])
SILVER_REGISTRATIONS = dg.AssetKey(["silver", "broker_registrations"])
SILVER_MAPPING = dg.AssetKey(["silver", "page_category_mapping"])
CONVERSION_QUARANTINE = dg.AssetKey(["silver", "conversion_quarantine"])
CONVERSION_MATCHES = dg.AssetKey(["silver", "conversion_matches"])
CONVERSIONS_MATCHED = dg.AssetKey(["gold", "conversions_matched"])
CONVERSION_INSIGHTS = dg.AssetKey(["gold", "conversion_insights"])


def _matches_table(stored: pl.DataFrame) -> pl.DataFrame:
    """The weekly matches as one table (no partition column); an empty one when no week was matched yet."""
    return stored.drop("week_start", strict=False) if stored.width else pl.DataFrame(schema=matching.MATCH_SCHEMA)


def _with_source(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    return frame.select(pl.lit(source).alias("source"), pl.all())


@dg.multi_asset(
    outs={
        "conversions": dg.AssetOut(key=BRONZE_CONVERSIONS, group_name="bronze", kinds=KINDS | {"csv"},
                                   description="Every conversion batch row as landed (text), with file and line."),
        "registrations": dg.AssetOut(key=BRONZE_REGISTRATIONS, group_name="bronze", kinds=KINDS | {"csv"},
                                     description="Every broker registration batch row as landed (text), with file and line."),
        "mapping": dg.AssetOut(key=BRONZE_MAPPING, group_name="bronze", kinds=KINDS | {"csv"},
                               description="page_category_mapping.csv as landed, with file and line."),
        "files": dg.AssetOut(key=BRONZE_FILES, group_name="bronze", kinds=KINDS,
                             description="One row per landed file: data lines and status (ok, empty, header only, wrong header)."),
    },
    pool=POOL,
)
def bronze_conversion_sources(context: dg.AssetExecutionContext, landing: LandingResource) -> Iterator[dg.Output]:
    root = landing.root()
    reads = {
        "conversions": transforms.read_conversions(root),
        "registrations": transforms.read_broker_registrations(root),
        "mapping": transforms.read_page_category_mapping(root),
    }
    for name, read in reads.items():
        if read.files.is_empty():
            context.log.warning(f"no {name} files under {root / 'brokerchooser'}: the table is empty this run")
        yield dg.Output(read.rows, output_name=name)
    files = pl.concat([_with_source(read.files, name) for name, read in reads.items()])
    yield dg.Output(files, output_name="files", metadata={"files_by_status": dg.MetadataValue.json(counts_by(files, "status"))})


@dg.multi_asset(
    outs={
        "conversions": dg.AssetOut(key=SILVER_CONVERSIONS, group_name="silver", kinds=KINDS,
                                   description="Conversions: typed, UTC, ISO country codes, page category, one row per id."),
        "registrations": dg.AssetOut(key=SILVER_REGISTRATIONS, group_name="silver", kinds=KINDS,
                                     description="Broker registrations: UTC, ISO country codes (residency, IP), score, exact duplicates removed."),
        "mapping": dg.AssetOut(key=SILVER_MAPPING, group_name="silver", kinds=KINDS,
                               description="measurement_category -> page_category, one row per category."),
        "quarantine": dg.AssetOut(key=CONVERSION_QUARANTINE, group_name="silver", kinds=KINDS,
                                  description="Every rejected line of every conversions source: source, file, line, raw, reason."),
    },
    ins={"conversions": dg.AssetIn(BRONZE_CONVERSIONS), "registrations": dg.AssetIn(BRONZE_REGISTRATIONS),
         "mapping": dg.AssetIn(BRONZE_MAPPING)},
    pool=POOL,
)
def silver_conversion_sources(
    context: dg.AssetExecutionContext, landing: LandingResource,
    conversions: pl.DataFrame, registrations: pl.DataFrame, mapping: pl.DataFrame,
) -> Iterator[dg.Output]:
    root = landing.root()
    # the read-time quarantine (unreadable lines, empty files) is recomputed from the files, not stored in bronze
    reads = {
        "conversions": transforms.read_conversions(root),
        "registrations": transforms.read_broker_registrations(root),
        "mapping": transforms.read_page_category_mapping(root),
    }
    clean_mapping = transforms.clean_page_category_mapping(mapping)
    clean_conversions = transforms.clean_conversions(conversions, clean_mapping.rows)
    clean_registrations = transforms.clean_broker_registrations(registrations)
    cleaned = {"conversions": clean_conversions, "registrations": clean_registrations, "mapping": clean_mapping}
    quarantine = pl.concat(
        [_with_source(pl.concat([reads[name].quarantine, result.quarantine]), name) for name, result in cleaned.items()]
    )
    balance = pl.concat([
        _with_source(transforms.reconcile(reads[name].files, result.rows, reads[name].quarantine, result.quarantine), name)
        for name, result in cleaned.items()
    ])
    unmapped = transforms.unmapped_measurement_categories(clean_conversions.rows)
    yield dg.Output(clean_conversions.rows, output_name="conversions", metadata={
        "rows_read": conversions.height, "unmapped_measurement_categories": unmapped.height,
    })
    yield dg.Output(clean_registrations.rows, output_name="registrations", metadata={"rows_read": registrations.height})
    yield dg.Output(clean_mapping.rows, output_name="mapping")
    yield dg.Output(quarantine, output_name="quarantine", metadata={
        "quarantined_by_reason": dg.MetadataValue.json(counts_by(quarantine, "reason")),
        "files_unbalanced": balance.filter(~pl.col("balanced")).height,
    })
    if not balance["balanced"].all():
        context.log.error(f"conversion sources do not reconcile: {balance.filter(~pl.col('balanced')).to_dicts()}")


def build_conversion_assets(partitions_def: dg.PartitionsDefinition, reports_dir: Path) -> list[dg.AssetsDefinition]:

    @dg.asset(key=CONVERSION_MATCHES, group_name="silver", kinds=KINDS, partitions_def=partitions_def,
              backfill_policy=HISTORY_BACKFILL, pool=POOL,
              ins={"conversions": dg.AssetIn(SILVER_CONVERSIONS), "registrations": dg.AssetIn(SILVER_REGISTRATIONS)},
              description="One-to-one matches of the week's conversions to broker registrations, with rule and confidence.")
    def conversion_matches(context: dg.AssetExecutionContext, conversions: pl.DataFrame, registrations: pl.DataFrame) -> WeeklyBatches:
        def match(week: date, _: pl.DataFrame | None = None) -> pl.DataFrame:
            if conversions.is_empty() or registrations.is_empty():
                return pl.DataFrame(schema=matching.MATCH_SCHEMA)
            return matching.match_week(conversions, registrations, week)

        return WeeklyBatches(weeks_of(context), match)

    @dg.asset(key=CONVERSIONS_MATCHED, group_name="gold", kinds=KINDS, pool=POOL,
              automation_condition=dg.AutomationCondition.eager(),
              ins={"conversions": dg.AssetIn(SILVER_CONVERSIONS), "registrations": dg.AssetIn(SILVER_REGISTRATIONS),
                   "matches": dg.AssetIn(CONVERSION_MATCHES)},
              description="Every conversion with its page category and the matched registration's fields (null when unmatched).")
    def conversions_matched(conversions: pl.DataFrame, registrations: pl.DataFrame, matches: pl.DataFrame) -> pl.DataFrame:
        matches = _matches_table(matches)
        registration_fields = registrations.rename(
            {name: f"registration_{name}" for name in registrations.columns if name != "registration_key"}
        )
        return (
            conversions.join(matches.drop("created_at"), on="conversion_id", how="left")
            .join(registration_fields, on="registration_key", how="left")
            .sort("created_at", "conversion_id")
        )

    @dg.asset(key=CONVERSION_INSIGHTS, group_name="gold", kinds={"polars", "matplotlib"}, pool=POOL,
              automation_condition=dg.AutomationCondition.eager(),
              ins={"conversions": dg.AssetIn(SILVER_CONVERSIONS), "registrations": dg.AssetIn(SILVER_REGISTRATIONS),
                   "matches": dg.AssetIn(CONVERSION_MATCHES)},
              description="Exploratory report: conversion and match rates by page, UI element, device and country; insights and actions.")
    def conversion_insights(context: dg.AssetExecutionContext, conversions: pl.DataFrame, registrations: pl.DataFrame,
                            matches: pl.DataFrame) -> None:
        matches = _matches_table(matches)
        built = report.build_report(conversions, registrations, matches)
        written = report.write_report(built, reports_dir)
        context.add_output_metadata({
            "report": dg.MetadataValue.md(report.markdown_with_embedded_charts(built)),
            "written_to": dg.MetadataValue.json([str(path) for path in written]),
        })

    return [conversion_matches, conversions_matched, conversion_insights]


CONVERSION_SOURCE_ASSETS = [bronze_conversion_sources, silver_conversion_sources]
