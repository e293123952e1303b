"""The conversions report's numbers: an overview, conversions and registration rate per segment (page category,
UI element, device, country), important_score per page category, the delay of the matches, and the quantiles of
the delay the matcher fitted.
"""

from __future__ import annotations

import polars as pl

from custpipe_assets.conversions.delay import SUMMARY_QUANTILES, DelayFit
from custpipe_assets.conversions.transforms import unmapped_measurement_categories

# segment column -> label of its missing values
SEGMENT_COLUMNS = {
    "page_category": "(unmapped)",
    "ui_element": "(empty)",
    "device": "(unknown)",
    "country": "(unresolved)",
}
DELAY_BIN_MINUTES = 2


def report_tables(
    conversions: pl.DataFrame, registrations: pl.DataFrame, matches: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """The report's numbers: overview, rates per segment, scores per page category, delay distribution."""
    flagged = _segments(conversions).with_columns(
        matched=pl.col("conversion_id").is_in(matches.get_column("conversion_id").implode())
    )
    tables = {f"by_{segment}": _rates_by(flagged, segment) for segment in SEGMENT_COLUMNS}
    scores = matched_scores(conversions, registrations, matches)
    tables["important_score_by_page_category"] = (
        scores.group_by("page_category")
        .agg(
            registrations=pl.len().cast(pl.Int64),
            scored=pl.col("important_score").count().cast(pl.Int64),
            mean_score=pl.col("important_score").mean(),
            median_score=pl.col("important_score").median(),
        )
        .sort(["mean_score", "page_category"], descending=[True, False], nulls_last=True)
    )
    delays = matches.select((pl.col("delay_seconds") / 60).alias("delay_minutes"))
    bin_start = (pl.col("delay_minutes") // DELAY_BIN_MINUTES * DELAY_BIN_MINUTES).cast(pl.Int64)
    tables["delay_histogram"] = (
        delays.group_by(bin_start.alias("from_minute")).agg(registrations=pl.len().cast(pl.Int64)).sort("from_minute")
    )
    tables["delay_summary"] = delays.select(
        matched=pl.len().cast(pl.Int64),
        median_minutes=pl.col("delay_minutes").median(),
        p90_minutes=pl.col("delay_minutes").quantile(0.9, interpolation="linear"),
        p99_minutes=pl.col("delay_minutes").quantile(0.99, interpolation="linear"),
        share_within_30_minutes=(pl.col("delay_minutes") <= 30).mean(),
    )
    tables["overview"] = pl.DataFrame(
        {
            "conversions": [conversions.height],
            "matched_conversions": [matches.height],
            "registration_rate": [matches.height / conversions.height if conversions.height else None],
            "registrations": [registrations.height],
            "unmatched_registrations": [registrations.height - matches.height],
            "unmapped_conversions": [conversions.filter(pl.col("page_category").is_null()).height],
            "unresolved_country_conversions": [conversions.filter(pl.col("country_code").is_null()).height],
        },
        schema_overrides={"registration_rate": pl.Float64},
    )
    tables["unmapped_measurement_categories"] = unmapped_measurement_categories(conversions).rename(
        {"rows": "conversions"}
    )
    return tables


def fitted_delay_table(delay: DelayFit) -> pl.DataFrame:
    """The fitted delay's quantiles: share of true pairs, seconds, and the same in words."""
    seconds = delay.quantiles_seconds(SUMMARY_QUANTILES)
    return pl.DataFrame(
        {
            "share_of_true_pairs": [f"{round(q * 100)}%" for q in SUMMARY_QUANTILES],
            "within_seconds": [round(float(value), 1) for value in seconds],
            "within": [_duration(float(value)) for value in seconds],
        }
    )


def _segments(conversions: pl.DataFrame) -> pl.DataFrame:
    return conversions.select(
        "conversion_id",
        pl.col("page_category").fill_null(SEGMENT_COLUMNS["page_category"]),
        pl.col("ui_element").fill_null(SEGMENT_COLUMNS["ui_element"]),
        pl.when(pl.col("is_mobile"))
        .then(pl.lit("mobile"))
        .when(~pl.col("is_mobile"))
        .then(pl.lit("desktop"))
        .otherwise(pl.lit(SEGMENT_COLUMNS["device"]))
        .alias("device"),
        pl.col("country_code").fill_null(SEGMENT_COLUMNS["country"]).alias("country"),
    )


def _rates_by(flagged: pl.DataFrame, segment: str) -> pl.DataFrame:
    total = flagged.height
    return (
        flagged.group_by(segment)
        .agg(conversions=pl.len().cast(pl.Int64), registrations=pl.col("matched").sum().cast(pl.Int64))
        .with_columns(
            share_of_conversions=pl.col("conversions") / total,
            registration_rate=pl.col("registrations") / pl.col("conversions"),
        )
        .select(segment, "conversions", "share_of_conversions", "registrations", "registration_rate")
        .sort(["conversions", segment], descending=[True, False])
    )


def matched_scores(conversions: pl.DataFrame, registrations: pl.DataFrame, matches: pl.DataFrame) -> pl.DataFrame:
    return (
        matches.select("conversion_id", "registration_key")
        .join(conversions.select("conversion_id", "page_category"), on="conversion_id", how="inner")
        .join(registrations.select("registration_key", "important_score"), on="registration_key", how="inner")
        .with_columns(pl.col("page_category").fill_null(SEGMENT_COLUMNS["page_category"]))
    )


def _duration(seconds: float) -> str:
    """1.5 s, 4.2 min, 2.0 h: a delay in the unit a person would say it in."""
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
