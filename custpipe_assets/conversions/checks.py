"""Data checks for the conversions domain: Pandera schemas, countries that could not be resolved, the one-to-one
matching, the delay the matcher learned staying steady, files that could not be read, and every landed line
accounted for in its week."""

from datetime import timedelta

import dagster as dg
import pandera.polars as pa
import polars as pl

from custpipe_assets.conversions import assets, delay_steadiness, matching, transforms
from custpipe_assets.conversions.formats import BROKER_DIR, CONVERSIONS_DIR
from custpipe_assets.core.checks import (
    SAMPLE_ROWS,
    quarantine_check,
    reconciliation_check,
    schema_check,
    sql_check,
    weekly_reconciliation,
)
from custpipe_assets.core.csv_reader import FILE_STATUSES, READ_ISSUES
from custpipe_assets.core.metadata import markdown_table
from custpipe_assets.core.partitions import weeks_of
from custpipe_assets.core.warehouse import WarehouseResource, table_name

BRONZE_LINES = pa.DataFrameSchema(
    {
        "week_start": pa.Column(pl.Date),
        "source_file": pa.Column(pl.String),
        "line_number": pa.Column(pl.Int64, pa.Check.ge(2)),
        "raw_line": pa.Column(pl.String),
        "read_issue": pa.Column(pl.String, pa.Check.isin(list(READ_ISSUES)), nullable=True),
    },
    unique=["source_file", "line_number"],
    description="One row per landed data line (line 1 is the header), in one week; a known read issue or none.",
)
SOURCE_FILES = pa.DataFrameSchema(
    {
        "source": pa.Column(pl.String, pa.Check.isin(["conversions", "registrations", "mapping"])),
        "source_file": pa.Column(pl.String, unique=True),
        "data_lines": pa.Column(pl.Int64, pa.Check.ge(0)),
        "status": pa.Column(pl.String, pa.Check.isin(list(FILE_STATUSES))),
    },
    description="One row per landed file with a known status.",
)
MAPPING = pa.DataFrameSchema(
    {"measurement_category": pa.Column(pl.String, unique=True), "page_category": pa.Column(pl.String)},
    description="One page category per measurement category.",
)
CONVERSIONS = pa.DataFrameSchema(
    {
        "conversion_id": pa.Column(pl.Int64, unique=True),
        "created_at": pa.Column(nullable=False),  # a UTC timestamp (DuckDB may name the zone Etc/UTC)
        "country_code": pa.Column(pl.String, pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
    },
    description="One row per conversion id in the week; country codes are ISO 3166 alpha-2 or null (never guessed).",
)
REGISTRATIONS = pa.DataFrameSchema(
    {
        "registration_key": pa.Column(pl.String, unique=True),
        "registered_at": pa.Column(nullable=False),
        "residency_code": pa.Column(pl.String, pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
        "ip_country_code": pa.Column(pl.String, pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
        "important_score": pa.Column(pl.Int64, nullable=True),
    },
    description="One row per kept broker line; country codes are ISO 3166 alpha-2 or null; score an integer or null.",
)
MATCHES = pa.DataFrameSchema(
    {
        "conversion_id": pa.Column(pl.Int64, unique=True),
        "registration_key": pa.Column(pl.String, unique=True),
        "delay_seconds": pa.Column(pl.Int64, pa.Check.ge(0)),
        "rule": pa.Column(pl.String, pa.Check.isin(["residency_country", "ip_country", "time_only"])),
        "confidence": pa.Column(pl.Float64, pa.Check.in_range(0, 1)),
    },
    description="One-to-one within the checked weeks: a conversion and a registration each matched at most once.",
)


def _weekly_reconciliation(
    silver: dg.AssetKey, bronze: dg.AssetKey, source: str, folder: str, partitions_def
) -> dg.AssetChecksDefinition:
    """Per week, bronze lines = silver rows + the quarantine rows whose `source_file` is in the source's folder."""
    return weekly_reconciliation(
        silver,
        bronze,
        assets.CONVERSION_QUARANTINE,
        description=f"Per week: landed {source} lines ({table_name(bronze)}) = {table_name(silver)} rows + "
        f"quarantined {source} lines.",
        partitions_def=partitions_def,
        quarantined_where=f"source_file like '{folder}/%'",
    )


def delay_steady_check(partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    """WARN when a week's learned delay shifted sharply from the weeks before it (`delay_steadiness.steadiness`);
    its metadata carries every checked week's quantiles against its history's, and a text plot of the week that
    moved most."""

    @dg.asset_check(
        asset=assets.CONVERSION_MATCHES,
        name="delay_steady",
        description=(
            f"Per week: the conversion -> registration delay learned from the week's data against the one learned "
            f"from the {delay_steadiness.HISTORY_WEEKS} weeks before it; warns when it moved by a factor of 3 or more (mean gap "
            f"of their quantiles on the log scale >= ln 3). Weeks with fewer than {delay_steadiness.MIN_TRUE_PAIRS} true pairs "
            "are listed, not judged."
        ),
        partitions_def=partitions_def,
        additional_deps=[assets.SILVER_CONVERSIONS, assets.SILVER_REGISTRATIONS],
        pool="warehouse",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        checked = weeks_of(context)
        store = warehouse.get()
        # the checked weeks and their histories, each with the week on either side its matching window reaches
        first = checked[0] - timedelta(weeks=delay_steadiness.HISTORY_WEEKS + 1)
        needed = [first + timedelta(weeks=n) for n in range((checked[-1] - first).days // 7 + 2)]
        conversions = store.read(table_name(assets.SILVER_CONVERSIONS), needed)
        registrations = store.read(table_name(assets.SILVER_REGISTRATIONS), needed)
        fitted_weeks = (
            sorted(set(conversions.get_column("week_start")) & set(needed[1:-1]))
            if conversions.height and registrations.height
            else []
        )
        fits = {week: matching.week_delay_fit(conversions, registrations, week) for week in fitted_weeks}
        table = delay_steadiness.steadiness(fits, checked)
        shifted = table.filter(pl.col("shifted").fill_null(False))
        worst = table.drop_nulls("shift").sort("shift", descending=True).head(1)
        plot = "none"
        if worst.height:
            week = worst.item(0, "week_start")
            history = [fits[earlier] for earlier in sorted(fits) if earlier < week][-delay_steadiness.HISTORY_WEEKS :]
            plot = delay_steadiness.delay_text_plot(
                {
                    f"week of {week}": fits[week],
                    f"{len(history)} week{'' if len(history) == 1 else 's'} before": history,
                }
            )
        return dg.AssetCheckResult(
            passed=shifted.is_empty(),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "weeks_checked": table.filter(pl.col("shifted").is_not_null()).height,
                "failure_count": shifted.height,
                "sample_failing_rows": dg.MetadataValue.md(markdown_table(shifted.head(SAMPLE_ROWS)) or "none"),
                "fitted_delay_by_week": dg.MetadataValue.md(markdown_table(table) or "none"),
                "delay_quantiles": dg.MetadataValue.json(
                    {
                        str(row["week_start"]): {name: value for name, value in row.items() if name != "week_start"}
                        for row in table.iter_rows(named=True)
                    }
                ),
                "delay_plot": dg.MetadataValue.md(plot),
            },
        )

    return _check


def build_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    weekly = {"partitions_def": partitions_def}
    return [
        schema_check(assets.BRONZE_CONVERSIONS, BRONZE_LINES, **weekly),
        schema_check(assets.BRONZE_REGISTRATIONS, BRONZE_LINES, **weekly),
        schema_check(assets.BRONZE_FILES, SOURCE_FILES),
        schema_check(assets.SILVER_MAPPING, MAPPING),
        schema_check(assets.SILVER_CONVERSIONS, CONVERSIONS, **weekly),
        schema_check(assets.SILVER_REGISTRATIONS, REGISTRATIONS, **weekly),
        quarantine_check(
            assets.CONVERSION_QUARANTINE,
            transforms.CONVERSION_QUARANTINE_REASONS,
            description="Every rejected conversion or broker line names its week, file (the source's folder), line "
            "and a known reason.",
            **weekly,
        ),
        quarantine_check(
            assets.MAPPING_QUARANTINE,
            transforms.MAPPING_QUARANTINE_REASONS,
            description="Every rejected mapping line names its file, line and a known reason.",
        ),
        schema_check(assets.CONVERSION_MATCHES, MATCHES, **weekly),
        delay_steady_check(partitions_def),
        _weekly_reconciliation(
            assets.SILVER_CONVERSIONS, assets.BRONZE_CONVERSIONS, "conversions", CONVERSIONS_DIR, partitions_def
        ),
        _weekly_reconciliation(
            assets.SILVER_REGISTRATIONS, assets.BRONZE_REGISTRATIONS, "registrations", BROKER_DIR, partitions_def
        ),
        reconciliation_check(
            assets.SILVER_MAPPING,
            description="Mapping lines landed = mapping rows kept + mapping lines quarantined.",
            rows_in_sql="select count(*) as rows from bronze.page_category_mapping",
            rows_out_sql="select count(*) as rows from silver.page_category_mapping",
            rows_quarantined_sql="select count(*) as rows from silver.page_category_mapping_quarantine",
            additional_deps=[assets.BRONZE_MAPPING, assets.MAPPING_QUARANTINE],
        ),
        sql_check(
            assets.SILVER_CONVERSIONS,
            name="conversion_id_unique_across_weeks",
            description="No conversion id is kept in two weeks (a re-sent id with another created_at would be).",
            failing_rows_sql="""select conversion_id, list(week_start order by week_start) as weeks
                                from silver.conversions group by 1 having count(*) > 1""",
        ),
        sql_check(
            assets.CONVERSION_MATCHES,
            name="registration_used_once",
            description="Across all weeks, no registration is matched to two conversions.",
            failing_rows_sql="""select registration_key, count(*) as matches from silver.conversion_matches
                                group by 1 having count(*) > 1""",
        ),
        sql_check(
            assets.SILVER_CONVERSIONS,
            name="countries_resolved",
            description="Country names that could not be resolved to ISO 3166 (reported, not guessed).",
            failing_rows_sql="""
                select 'site' as side, country_name as name, count(*) as rows from silver.conversions
                where country_code is null and country_name is not null group by all
                union all
                select 'broker residency', country_residency, count(*) from silver.broker_registrations
                where residency_code is null and country_residency is not null group by all
                union all
                select 'broker ip', ip_country, count(*) from silver.broker_registrations
                where ip_country_code is null and ip_country is not null group by all
                order by rows desc""",
            additional_deps=[assets.SILVER_REGISTRATIONS],
            severity=dg.AssetCheckSeverity.WARN,
        ),
        sql_check(
            assets.BRONZE_FILES,
            name="files_readable",
            description="Landed files that are empty, header only, or not in the expected columns (e.g. wrong separator).",
            failing_rows_sql="""select source, source_file, status, data_lines from bronze.conversion_source_files
                                where status <> 'ok' order by source, source_file""",
            severity=dg.AssetCheckSeverity.WARN,
        ),
        sql_check(
            assets.BRONZE_FILES,
            name="every_line_in_a_materialized_week",
            description="Files whose data lines are not all in the weekly bronze tables: a week they feed was not run yet.",
            failing_rows_sql="""
                with stored as (select source_file, count(*) as lines from bronze.conversions group by 1
                                union all
                                select source_file, count(*) from bronze.broker_registrations group by 1)
                select source, source_file, data_lines, coalesce(lines, 0) as lines_in_weekly_tables, first_week, last_week
                from bronze.conversion_source_files left join stored using (source_file)
                where source <> 'mapping' and data_lines <> coalesce(lines, 0)
                order by source_file""",
            additional_deps=[assets.BRONZE_CONVERSIONS, assets.BRONZE_REGISTRATIONS],
            severity=dg.AssetCheckSeverity.WARN,
        ),
    ]
