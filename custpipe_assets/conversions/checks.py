"""Data checks for the conversions domain: Pandera schemas, countries that could not be resolved, the one-to-one
matching, and every landed line accounted for."""

import dagster as dg
import pandera.polars as pa
import polars as pl

from custpipe_assets.conversions import assets
from custpipe_assets.core.checks import schema_check, sql_check

CONVERSIONS = pa.DataFrameSchema(
    {
        "conversion_id": pa.Column(pl.Int64, unique=True),
        "created_at": pa.Column(nullable=False),  # a UTC timestamp (DuckDB may name the zone Etc/UTC)
        "country_code": pa.Column(pl.String, pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
    },
    description="One row per conversion id; country codes are ISO 3166 alpha-2 or null (never guessed).",
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


def build_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    return [
        schema_check(assets.SILVER_CONVERSIONS, CONVERSIONS),
        schema_check(assets.CONVERSION_MATCHES, MATCHES, partitions_def=partitions_def),
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
            assets.CONVERSION_QUARANTINE,
            name="reconciles",
            description="Every landed data line is a silver row or a quarantine row, per source (rows in = out + quarantined).",
            failing_rows_sql="""
                with landed as (select source, sum(data_lines) as rows_in from bronze.conversion_source_files group by 1),
                     kept as (select 'conversions' as source, count(*) as rows_out from silver.conversions
                              union all select 'registrations', count(*) from silver.broker_registrations
                              union all select 'mapping', count(*) from silver.page_category_mapping),
                     rejected as (select source, count(*) as rows_quarantined from silver.conversion_quarantine
                                  where line_number >= 2 group by 1)
                select landed.source, rows_in, coalesce(rows_out, 0) as rows_out,
                       coalesce(rows_quarantined, 0) as rows_quarantined
                from landed left join kept using (source) left join rejected using (source)
                where rows_in <> coalesce(rows_out, 0) + coalesce(rows_quarantined, 0)""",
            additional_deps=[assets.BRONZE_FILES, assets.SILVER_CONVERSIONS, assets.SILVER_REGISTRATIONS, assets.SILVER_MAPPING],
        ),
    ]
