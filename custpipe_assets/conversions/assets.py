"""Dagster wiring for the conversions domain: affiliate conversions matched to the partner broker's registrations,
and the exploratory report. Thin wrappers over `transforms.py`, `matching.py` and `report.py`.

Conversions and broker rows are weekly by their own time (see `transforms.py`). The batch files overlap in time,
so a run reads every batch file (a few thousand rows a week) and keeps the lines of its weeks. A week's matching
reads the silver weeks on either side (`NEIGHBOUR_WEEKS`): a conversion late on Sunday finds its registration on
Monday, and a registration is claimed by one week only. The page-category mapping and the file inventory are not
weekly.
"""

import base64
import warnings
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from custpipe_assets.conversions import matching, report, transforms
from custpipe_assets.conversions.delay import DelayFit
from custpipe_assets.conversions.report_charts import fitted_delay_chart
from custpipe_assets.conversions.report_tables import fitted_delay_table
from custpipe_assets.core.conventions import FOLLOWS_INPUTS, POOL, table_asset, table_out, weekly_asset_args
from custpipe_assets.core.io_manager import SetAsidePerWeek, WeeklyBatches
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.metadata import counts_by, markdown_table
from custpipe_assets.core.partitions import weeks_of

BRONZE_CONVERSIONS = dg.AssetKey(["bronze", "conversions"])
BRONZE_REGISTRATIONS = dg.AssetKey(["bronze", "broker_registrations"])
BRONZE_MAPPING = dg.AssetKey(["bronze", "page_category_mapping"])
BRONZE_FILES = dg.AssetKey(["bronze", "conversion_source_files"])
SILVER_CONVERSIONS = dg.AssetKey(["silver", "conversions"])
SILVER_REGISTRATIONS = dg.AssetKey(["silver", "broker_registrations"])
SILVER_MAPPING = dg.AssetKey(["silver", "page_category_mapping"])
MAPPING_QUARANTINE = dg.AssetKey(["silver", "page_category_mapping_quarantine"])
CONVERSION_QUARANTINE = dg.AssetKey(["silver", "conversion_quarantine"])
CONVERSION_MATCHES = dg.AssetKey(["silver", "conversion_matches"])
CONVERSIONS_MATCHED = dg.AssetKey(["gold", "conversions_matched"])
CONVERSION_INSIGHTS = dg.AssetKey(["gold", "conversion_insights"])

# a week's matching window reaches max_delay into the week before and the look-ahead into the week after; the first
# week has no week before it and the latest none after it yet (allowed, hence the beta flag, its warning silenced)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    NEIGHBOUR_WEEKS = dg.TimeWindowPartitionMapping(
        start_offset=-1, end_offset=1, allow_nonexistent_upstream_partitions=True
    )
REPORT_DELAY_WEEKS = 8  # the insights report shows the delay fitted on the latest weeks (as the delay check compares)
BATCH_READERS: dict[str, Callable[[Path], transforms.BronzeRead]] = {
    "conversions": transforms.read_conversions,
    "registrations": transforms.read_broker_registrations,
}


# the gold tables: built from every week of silver conversions, registrations and matches, following them
MATCHED_GOLD = {
    "pool": POOL,
    "automation_condition": FOLLOWS_INPUTS,
    "ins": {
        "conversions": dg.AssetIn(SILVER_CONVERSIONS),
        "registrations": dg.AssetIn(SILVER_REGISTRATIONS),
        "matches": dg.AssetIn(CONVERSION_MATCHES),
    },
}


def _delay_metadata(delay: DelayFit, label: str) -> dict[str, object]:
    """The fitted delay as metadata: its figures, the median alone (a number, so the UI plots it week after week),
    its quantiles as a table, and its chart."""
    summary = delay.summary()
    chart = base64.b64encode(fitted_delay_chart(delay, f"Delay fitted from the {label}")).decode("ascii")
    return {
        "fitted_delay": dg.MetadataValue.json(summary),
        "fitted_delay_median_seconds": summary["p50_seconds"],
        "fitted_delay_quantiles": dg.MetadataValue.md(markdown_table(fitted_delay_table(delay))),
        "fitted_delay_plot": dg.MetadataValue.md(f"![fitted delay](data:image/png;base64,{chart})"),
    }


def _matches_table(stored: pl.DataFrame) -> pl.DataFrame:
    """The weekly matches as one table (no partition column); an empty one when no week was matched yet."""
    return stored.drop("week_start", strict=False) if stored.width else pl.DataFrame(schema=matching.MATCH_SCHEMA)


@table_asset(
    BRONZE_MAPPING, "page_category_mapping.csv as landed: every line with its fields, file and line number.", "csv"
)
def bronze_page_category_mapping(context: dg.AssetExecutionContext, landing: LandingResource) -> pl.DataFrame:
    read = transforms.read_page_category_mapping(landing.root())
    if read.files.is_empty():
        context.log.warning(f"no page category mapping under {landing.root()}: every page_category is null")
    return read.rows


@dg.multi_asset(
    outs={
        "mapping": table_out(SILVER_MAPPING, "measurement_category -> page_category, one row per category."),
        "quarantine": table_out(
            MAPPING_QUARANTINE,
            "Rejected mapping lines (repeats, contradictions, blanks) in the core quarantine contract: "
            "file, line, reason code, detail (the line kept), raw line.",
        ),
    },
    ins={"bronze": dg.AssetIn(BRONZE_MAPPING)},
    pool=POOL,
)
def silver_page_category_mapping(bronze: pl.DataFrame) -> Iterator[dg.Output]:
    cleaned = transforms.clean_page_category_mapping(bronze)
    yield dg.Output(cleaned.rows, output_name="mapping", metadata={"rows_read": bronze.height})
    yield dg.Output(
        cleaned.quarantine,
        output_name="quarantine",
        metadata={
            "quarantined_by_reason": dg.MetadataValue.json(counts_by(cleaned.quarantine, "reason")),
        },
    )


@table_asset(
    BRONZE_FILES,
    "One row per landed BrokerChooser file: data lines, status (ok, empty_file, header_only, wrong_header) and the weeks its lines belong to.",
    "csv",
)
def bronze_conversion_source_files(context: dg.AssetExecutionContext, landing: LandingResource) -> pl.DataFrame:
    root = landing.root()
    inventories = [
        transforms.file_inventory(read(root)).select(pl.lit(source).alias("source"), pl.all())
        for source, read in BATCH_READERS.items()
    ]
    mapping = transforms.read_page_category_mapping(root).files.select(
        pl.lit("mapping").alias("source"),
        "source_file",
        "data_lines",
        "status",
        pl.lit(None, pl.Date).alias("first_week"),
        pl.lit(None, pl.Date).alias("last_week"),
        "landed_week",
    )
    files = pl.concat([*inventories, mapping])
    for source in BATCH_READERS:
        if files.filter(pl.col("source") == source).is_empty():
            context.log.warning(
                f"no {source} batch files under {root / 'brokerchooser'}: those tables are empty this run"
            )
    context.add_output_metadata({"files_by_status": dg.MetadataValue.json(counts_by(files, "status"))})
    return files


def build_conversion_assets(partitions_def: dg.PartitionsDefinition, reports_dir: Path) -> list[dg.AssetsDefinition]:
    """The weekly conversions assets and the gold tables built on them, for one partitions definition."""
    weekly = weekly_asset_args(partitions_def)

    @dg.multi_asset(
        outs={
            "conversions": table_out(
                BRONZE_CONVERSIONS,
                "Every conversion batch line of the week as landed: raw line, fields as text, read issue, file and line.",
                "csv",
            ),
            "registrations": table_out(
                BRONZE_REGISTRATIONS,
                "Every broker batch line of the week as landed: raw line, fields as text, read issue, file and line.",
                "csv",
            ),
        },
        **weekly,
    )
    def bronze_conversion_batches(context: dg.AssetExecutionContext, landing: LandingResource) -> Iterator[dg.Output]:
        root, weeks = landing.root(), weeks_of(context)
        # what the arrival sensor compares with: each week's batch files as this run found them (imported here:
        # the automation module imports this one for the asset keys)
        from custpipe_assets.conversions.automation import LANDED_FILES
        from custpipe_assets.core.landed_versions import record_landed_fingerprints

        record_landed_fingerprints(context, LANDED_FILES, root, weeks, asset_key=BRONZE_CONVERSIONS)
        for name, read in BATCH_READERS.items():
            rows = read(root).rows
            in_range = rows.filter(pl.col("week_start").is_in(weeks))
            if rows.height > in_range.height:
                context.log.info(f"{rows.height - in_range.height} {name} lines belong to weeks outside this run")
            yield dg.Output(
                WeeklyBatches(weeks, lambda week, rows=in_range: rows.filter(pl.col("week_start") == week)),
                output_name=name,
                metadata={"lines_in_all_batch_files": rows.height},  # the same for every week: all files are read
            )

    @dg.multi_asset(
        outs={
            "conversions": table_out(
                SILVER_CONVERSIONS, "Conversions: typed, UTC, ISO country codes, page category, one row per id."
            ),
            "registrations": table_out(
                SILVER_REGISTRATIONS,
                "Broker registrations: UTC, ISO country codes (residency, IP), score, exact duplicates removed.",
            ),
            "quarantine": table_out(
                CONVERSION_QUARANTINE,
                "Every rejected conversion and broker line of the week in the core quarantine contract: file "
                "(its folder names the source), line, reason code, detail (the line kept), raw line.",
            ),
        },
        ins={
            "bronze_conversions": dg.AssetIn(BRONZE_CONVERSIONS),
            "bronze_registrations": dg.AssetIn(BRONZE_REGISTRATIONS),
            "mapping": dg.AssetIn(SILVER_MAPPING),
        },
        **weekly,
    )
    def silver_conversion_batches(
        bronze_conversions: WeeklyBatches,
        bronze_registrations: WeeklyBatches,
        mapping: pl.DataFrame,
    ) -> Iterator[dg.Output]:
        rejected = SetAsidePerWeek(bronze_conversions.weeks)  # both sources' rejects, for the quarantine output

        def cleaner(clean: Callable[[pl.DataFrame], transforms.Cleaned]):
            def clean_week(week: date, bronze: pl.DataFrame) -> pl.DataFrame:
                cleaned = clean(bronze)
                rejected.keep(week, cleaned.quarantine)
                return cleaned.rows

            return clean_week

        yield dg.Output(
            bronze_conversions.map(cleaner(lambda rows: transforms.clean_conversions(rows, mapping))),
            output_name="conversions",
        )
        yield dg.Output(
            bronze_registrations.map(cleaner(transforms.clean_broker_registrations)),
            output_name="registrations",
        )
        # per week, the IO manager records the quarantine's row count and `quarantined_<reason>` figures
        yield dg.Output(rejected.batches(), output_name="quarantine")

    @table_asset(
        CONVERSION_MATCHES,
        "One-to-one matches of the week's conversions to broker registrations, with rule and confidence; "
        "each week's metadata shows the delay learned from that week's data.",
        ins={
            "conversions": dg.AssetIn(SILVER_CONVERSIONS, partition_mapping=NEIGHBOUR_WEEKS),
            "registrations": dg.AssetIn(SILVER_REGISTRATIONS, partition_mapping=NEIGHBOUR_WEEKS),
        },
        **weekly,
    )
    def conversion_matches(
        context: dg.AssetExecutionContext, conversions: pl.DataFrame, registrations: pl.DataFrame
    ) -> WeeklyBatches:
        def match(week: date) -> pl.DataFrame:
            if conversions.is_empty() or registrations.is_empty():
                return pl.DataFrame(schema=matching.MATCH_SCHEMA)
            matches, delay = matching.match_week_and_fit(conversions, registrations, week)
            context.add_asset_metadata(_delay_metadata(delay, f"week of {week}"), partition_key=week.isoformat())
            return matches

        return WeeklyBatches(weeks_of(context), match)

    @table_asset(
        CONVERSIONS_MATCHED,
        "Every conversion with its page category and the matched registration's fields (null when unmatched).",
        **MATCHED_GOLD,
    )
    def conversions_matched(
        conversions: pl.DataFrame, registrations: pl.DataFrame, matches: pl.DataFrame
    ) -> pl.DataFrame:
        return matching.conversions_with_matches(conversions, registrations, _matches_table(matches))

    @dg.asset(
        key=CONVERSION_INSIGHTS,
        kinds={"polars", "matplotlib"},
        description="Exploratory report: conversion and match rates by page, UI element, device and country; insights and actions.",
        **MATCHED_GOLD,
    )
    def conversion_insights(
        context: dg.AssetExecutionContext, conversions: pl.DataFrame, registrations: pl.DataFrame, matches: pl.DataFrame
    ) -> None:
        matches = _matches_table(matches)
        fitted = matching.fit_latest_weeks(conversions, registrations, REPORT_DELAY_WEEKS)
        if fitted is None:
            built = report.build_report(conversions, registrations, matches)
        else:
            delay, weeks = fitted
            label = f"the weeks {weeks[0]} to {weeks[-1]}" if len(weeks) > 1 else f"the week of {weeks[0]}"
            built = report.build_report(conversions, registrations, matches, delay, label)
        written = report.write_report(built, reports_dir)
        context.add_output_metadata(
            {
                "report": dg.MetadataValue.md(report.markdown_with_embedded_charts(built)),
                "written_to": dg.MetadataValue.json([str(path) for path in written]),
            }
        )

    return [
        bronze_conversion_batches,
        silver_conversion_batches,
        conversion_matches,
        conversions_matched,
        conversion_insights,
    ]


CONVERSION_REFERENCE_ASSETS = [
    bronze_page_category_mapping,
    silver_page_category_mapping,
    bronze_conversion_source_files,
]
