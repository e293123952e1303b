"""THE OLD FIXED-PRIOR MATCHING RULE, kept only so that `benchmarks/matching.py` can compare against it. Not used
by the pipeline; do not import it from production code.

This is the conversions matcher as committed before issue 11 (`git show ae16e87:custpipe_assets/conversions/
matching.py`, unchanged up to b9a6c19), copied verbatim but for the parts the benchmark takes from the production
module instead (the output schema, the weekly window, the nearest-in-time baseline, scoring). Its rule: a
registration 0 to 60 minutes after a conversion in the same country (30 minutes when a country is unknown) is a
candidate; candidates are taken greedily, country rules first, then by the density of a log-normal delay whose
5th and 95th percentiles are 1 and 30 minutes -- a delay the rule was told, not one it learned -- then the shorter
delay, then ids.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl

from custpipe_assets.conversions.matching import MATCH_SCHEMA, matching_window

DEFAULT_MAX_DELAY = timedelta(minutes=60)
DEFAULT_TIME_ONLY_MAX_DELAY = timedelta(minutes=30)
DEFAULT_LOOKAHEAD = timedelta(hours=2)
DEFAULT_TYPICAL_DELAY = (timedelta(minutes=1), timedelta(minutes=30))  # 5th and 95th percentile
Z_95 = 1.6448536269514722  # standard normal quantile at 0.95
# How much a rule alone is worth, before the delay and rival candidates lower it.
RULE_CONFIDENCE = {"residency_country": 0.95, "ip_country": 0.9, "time_only": 0.5, "nearest_in_time": 0.6}
TYPICAL_DELAY = timedelta(minutes=30)  # delays up to this cost no confidence
RIVAL_PENALTY = 0.8  # confidence factor per other candidate competing for either side of a pair


def match_conversions(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    *,
    max_delay: timedelta = DEFAULT_MAX_DELAY,
    time_only_max_delay: timedelta = DEFAULT_TIME_ONLY_MAX_DELAY,
    typical_delay: tuple[timedelta, timedelta] = DEFAULT_TYPICAL_DELAY,
) -> pl.DataFrame:
    """One-to-one matches by country and time proximity, with `rule` and `confidence` (0..1); see module doc."""
    candidates = _pairs_in_time(conversions, registrations, max_delay).with_columns(
        registration_country=pl.coalesce("residency_code", "ip_country_code"),
    )
    country_known = pl.col("country_code").is_not_null() & pl.col("registration_country").is_not_null()
    country_rule = (
        pl.when(pl.col("residency_code").is_not_null())
        .then(pl.lit("residency_country"))
        .otherwise(pl.lit("ip_country"))
    )
    candidates = candidates.with_columns(
        rule=pl.when(country_known & (pl.col("country_code") == pl.col("registration_country")))
        .then(country_rule)
        .when(~country_known & (pl.col("delay_seconds") <= time_only_max_delay.total_seconds()))
        .then(pl.lit("time_only")),
    ).filter(pl.col("rule").is_not_null())
    ranked = candidates.with_columns(
        rank=(pl.col("rule") == "time_only").cast(pl.Int8),
        unlikeliness=-_delay_log_density(pl.col("delay_seconds"), typical_delay),
    )
    return _assign_greedily(ranked, max_delay)


def match_week(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    week_start: date,
    *,
    lookahead: timedelta = DEFAULT_LOOKAHEAD,
    max_delay: timedelta = DEFAULT_MAX_DELAY,
    time_only_max_delay: timedelta = DEFAULT_TIME_ONLY_MAX_DELAY,
    typical_delay: tuple[timedelta, timedelta] = DEFAULT_TYPICAL_DELAY,
) -> pl.DataFrame:
    """Matches of the conversions created in the week starting week_start (a Monday).

    The inputs may hold more than the week (e.g. everything); only `matching_window` is used, and only pairs
    whose conversion lies in the week are returned, so weekly partitions never claim a registration twice.
    """
    if week_start.weekday() != 0:
        raise ValueError(f"week_start must be a Monday, got {week_start} ({week_start:%A})")
    window_start, window_end = matching_window(week_start, lookahead=lookahead, window=max_delay)
    week_begins = window_start + max_delay
    week_ends = week_begins + timedelta(weeks=1)
    matches = match_conversions(
        conversions.filter(pl.col("created_at").is_between(window_start, window_end, closed="left")),
        registrations.filter(pl.col("registered_at").is_between(window_start, window_end, closed="left")),
        max_delay=max_delay,
        time_only_max_delay=time_only_max_delay,
        typical_delay=typical_delay,
    )
    return matches.filter(pl.col("created_at").is_between(week_begins, week_ends, closed="left"))


def _pairs_in_time(conversions: pl.DataFrame, registrations: pl.DataFrame, max_delay: timedelta) -> pl.DataFrame:
    """Every (conversion, registration) with the registration 0..max_delay after the conversion."""
    pairs = conversions.select("conversion_id", "created_at", "country_code").join_where(
        registrations.select("registration_key", "registered_at", "residency_code", "ip_country_code"),
        pl.col("registered_at") >= pl.col("created_at"),
        pl.col("registered_at") <= pl.col("created_at") + max_delay,
    )
    return pairs.with_columns(
        delay_seconds=(pl.col("registered_at") - pl.col("created_at")).dt.total_seconds().cast(pl.Int64)
    )


def _delay_log_density(delay_seconds: pl.Expr, typical_delay: tuple[timedelta, timedelta]) -> pl.Expr:
    """Log-density of a log-normal delay whose 5th and 95th percentiles are typical_delay (up to a constant)."""
    low, high = (max(bound.total_seconds(), 1.0) for bound in typical_delay)
    if not low < high:
        raise ValueError(f"typical_delay must be increasing, got {typical_delay}")
    mu = (math.log(low) + math.log(high)) / 2
    sigma = (math.log(high) - math.log(low)) / (2 * Z_95)
    log_delay = delay_seconds.clip(lower_bound=1).cast(pl.Float64).log()
    return -log_delay - (log_delay - mu).pow(2) / (2 * sigma**2)


def _assign_greedily(candidates: pl.DataFrame, max_delay: timedelta) -> pl.DataFrame:
    """Take pairs by (rank, unlikeliness, delay, ids), skipping any whose conversion or registration is taken."""
    ordered = candidates.sort(
        "rank", "unlikeliness", "delay_seconds", "conversion_id", "registration_key"
    ).with_columns(
        rivals=pl.len().over("conversion_id", "rank") + pl.len().over("registration_key", "rank") - 2,
    )
    used_conversions: set[int] = set()
    used_registrations: set[str] = set()
    chosen: list[int] = []
    for index, (conversion_id, registration_key) in enumerate(
        ordered.select("conversion_id", "registration_key").iter_rows()
    ):
        if conversion_id in used_conversions or registration_key in used_registrations:
            continue
        used_conversions.add(conversion_id)
        used_registrations.add(registration_key)
        chosen.append(index)
    typical, longest = TYPICAL_DELAY.total_seconds(), max_delay.total_seconds()
    over_typical = ((pl.col("delay_seconds") - typical) / max(longest - typical, 1.0)).clip(0.0, 1.0)
    confidence = (
        pl.col("rule").replace_strict(RULE_CONFIDENCE, return_dtype=pl.Float64)
        * (1.0 - 0.5 * over_typical)
        * pl.lit(RIVAL_PENALTY).pow(pl.col("rivals"))
    )
    return (
        ordered[chosen]
        .with_columns(confidence=confidence.clip(0.0, 1.0))
        .select(list(MATCH_SCHEMA))
        .cast(MATCH_SCHEMA)
        .sort("conversion_id")
    )
