"""The matcher: hand-made cases whose right answer is known, weekly windows, and accuracy on the planted truth."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from custpipe_assets.conversions.matching import (
    MATCH_SCHEMA,
    match_conversions,
    match_nearest_in_time,
    match_quality,
    match_week,
    matching_window,
)

T0 = datetime(2018, 9, 5, 12, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def conversions(*rows: tuple[int, float, str | None]) -> pl.DataFrame:
    """(conversion_id, minutes after T0, ISO country)"""
    return pl.DataFrame(
        [(cid, _at(minutes), country) for cid, minutes, country in rows],
        schema={"conversion_id": pl.Int64, "created_at": pl.Datetime("us", "UTC"), "country_code": pl.String},
        orient="row",
    )


def registrations(*rows: tuple[str, float, str | None, str | None]) -> pl.DataFrame:
    """(registration_key, minutes after T0, residency ISO, IP country ISO)"""
    return pl.DataFrame(
        [(key, _at(minutes), residency, ip) for key, minutes, residency, ip in rows],
        schema={
            "registration_key": pl.String,
            "registered_at": pl.Datetime("us", "UTC"),
            "residency_code": pl.String,
            "ip_country_code": pl.String,
        },
        orient="row",
    )


def _pairs(matches: pl.DataFrame) -> list[tuple[int, str]]:
    return matches.select("conversion_id", "registration_key").rows()


def test_country_tells_apart_two_conversions_whose_registrations_interleave():
    # a US conversion registers after 5 minutes; a German one lands 1 minute before that and registers after 2
    convs = conversions((1, 0, "US"), (2, 4, "DE"))
    regs = registrations(("us", 5, None, "US"), ("de", 6, None, "DE"))
    assert _pairs(match_conversions(convs, regs)) == [(1, "us"), (2, "de")]
    # ignoring the country, the closest pair (2, us: 1 minute) is taken first and both come out wrong
    assert _pairs(match_nearest_in_time(convs, regs)) == [(1, "de"), (2, "us")]


def test_residency_outranks_the_ip_country_and_names_the_rule():
    convs = conversions((1, 0, "DE"), (2, 1, "US"))
    # a German resident travelling in the US registers 5 minutes after the German conversion
    regs = registrations(("traveller", 5, "DE", "US"))
    matches = match_conversions(convs, regs)
    assert _pairs(matches) == [(1, "traveller")]
    assert matches.get_column("rule").to_list() == ["residency_country"]


def test_ip_country_is_used_when_residency_is_missing_or_unresolvable():
    matches = match_conversions(conversions((1, 0, "VN")), registrations(("r", 3, None, "VN")))
    assert matches.select("conversion_id", "registration_key", "rule", "delay_seconds").rows() == [
        (1, "r", "ip_country", 180)
    ]


def test_time_only_applies_when_a_country_is_unknown_at_lower_confidence_and_a_tighter_window():
    convs = conversions((1, 0, None), (2, 100, "US"), (3, 200, "FR"))
    regs = registrations(("unknown_site", 5, None, "DE"), ("proxy", 105, None, None), ("late", 240, None, None))
    matches = match_conversions(convs, regs)
    assert _pairs(matches) == [(1, "unknown_site"), (2, "proxy")]  # 40 minutes is past time_only's 30
    assert set(matches.get_column("rule")) == {"time_only"}
    country_match = match_conversions(conversions((9, 0, "US")), registrations(("r", 5, None, "US")))
    assert matches.get_column("confidence").max() < country_match.get_column("confidence").min()


def test_known_and_different_countries_never_match():
    assert match_conversions(conversions((1, 0, "US")), registrations(("r", 2, "GB", "US"))).is_empty()
    assert match_conversions(conversions((1, 0, "US")), registrations(("r", 2, None, "CA"))).is_empty()


def test_registration_must_follow_within_max_delay():
    convs = conversions((1, 0, "US"))
    assert match_conversions(convs, registrations(("before", -1, None, "US"))).is_empty()
    assert _pairs(match_conversions(convs, registrations(("edge", 60, None, "US")))) == [(1, "edge")]
    assert match_conversions(convs, registrations(("late", 60.1, None, "US"))).is_empty()
    wider = match_conversions(convs, registrations(("late", 60.1, None, "US")), max_delay=timedelta(minutes=90))
    assert _pairs(wider) == [(1, "late")]


def test_one_to_one_with_ties_broken_by_delay_then_ids():
    # two conversions at the same instant, one registration: the lower conversion id wins
    same_instant = conversions((7, 0, "US"), (5, 0, "US"))
    assert _pairs(match_conversions(same_instant, registrations(("r", 4, None, "US")))) == [(5, "r")]
    # one conversion, two registrations at the same instant: the lower key wins
    both_at_four = registrations(("b", 4, None, "US"), ("a", 4, None, "US"))
    assert _pairs(match_conversions(conversions((1, 0, "US")), both_at_four)) == [(1, "a")]
    # each registration at most once, each conversion at most once
    many = match_conversions(
        conversions((1, 0, "US"), (2, 1, "US"), (3, 2, "US")),
        registrations(("a", 5, None, "US"), ("b", 6, None, "US")),
    )
    assert many.get_column("conversion_id").is_unique().all()
    assert many.get_column("registration_key").is_unique().all()
    assert many.height == 2


def test_a_typical_delay_beats_a_suspiciously_short_one():
    # conversion 2 lands 40 seconds before the registration, conversion 1 five minutes before it; a 5-minute
    # delay is typical, 40 seconds rare, so the registration goes to conversion 1 (shortest-first would pick 2)
    convs = conversions((1, 0, "US"), (2, 4 + 1 / 3, "US"))
    regs = registrations(("r", 5, None, "US"))
    assert _pairs(match_conversions(convs, regs)) == [(1, "r")]
    assert _pairs(match_nearest_in_time(convs, regs)) == [(2, "r")]


def test_output_schema_and_confidence_bounds_also_when_empty():
    empty = match_conversions(conversions(), registrations())
    assert empty.schema == pl.Schema(MATCH_SCHEMA) and empty.is_empty()
    matches = match_conversions(
        conversions((1, 0, "US"), (2, 1, "US"), (3, 50, None)),
        registrations(("a", 2, None, "US"), ("b", 59, "US", "US"), ("c", 60, None, None)),
    )
    assert matches.schema == pl.Schema(MATCH_SCHEMA)
    assert matches.get_column("confidence").is_between(0, 1).all()


def test_a_sunday_night_conversion_keeps_its_monday_registration_and_the_next_week_does_not_claim_it():
    sunday_night = datetime(2018, 9, 9, 23, 55, tzinfo=UTC)
    convs = pl.DataFrame(
        {"conversion_id": [1, 2], "created_at": [sunday_night, sunday_night + timedelta(minutes=20)],
         "country_code": ["US", "US"]},
        schema={"conversion_id": pl.Int64, "created_at": pl.Datetime("us", "UTC"), "country_code": pl.String},
    )
    regs = pl.DataFrame(
        {"registration_key": ["monday"], "registered_at": [sunday_night + timedelta(minutes=12)],
         "residency_code": [None], "ip_country_code": ["US"]},
        schema={"registration_key": pl.String, "registered_at": pl.Datetime("us", "UTC"),
                "residency_code": pl.String, "ip_country_code": pl.String},
    )
    assert _pairs(match_week(convs, regs, date(2018, 9, 3))) == [(1, "monday")]
    assert match_week(convs, regs, date(2018, 9, 10)).is_empty()


def test_matching_window_and_its_guards():
    start, end = matching_window(date(2018, 9, 3))
    assert start == datetime(2018, 9, 2, 23, 0, tzinfo=UTC)
    assert end == datetime(2018, 9, 10, 2, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="lookahead"):
        matching_window(date(2018, 9, 3), lookahead=timedelta(minutes=30))
    with pytest.raises(ValueError, match="Monday"):
        match_week(conversions(), registrations(), date(2018, 9, 4))


def test_match_quality_counts_by_hand():
    truth = pl.DataFrame({"conversion_id": [1, 2, 3, 4], "registration_key": ["a", "b", "c", "d"]})
    matches = pl.DataFrame({"conversion_id": [1, 2, 5], "registration_key": ["a", "c", "e"]})
    quality = match_quality(matches, truth)
    assert (quality.correct, quality.predicted, quality.expected) == (1, 3, 4)
    assert quality.precision == pytest.approx(1 / 3)
    assert quality.recall == pytest.approx(1 / 4)
    nothing = match_quality(matches.clear(), truth)
    assert (nothing.precision, nothing.recall) == (1.0, 0.0)


def test_weekly_partitions_together_equal_one_matching_over_everything(conversions_sample):
    convs, regs = conversions_sample.conversions.rows, conversions_sample.registrations.rows
    weeks = sorted(convs.get_column("week_start").unique())
    weekly = pl.concat([match_week(convs, regs, week) for week in weeks]).sort("conversion_id")
    assert weekly.get_column("registration_key").is_unique().all()
    assert weekly.equals(match_conversions(convs, regs))
    crossing = weekly.filter(pl.col("registered_at").dt.truncate("1w") > pl.col("created_at").dt.truncate("1w"))
    assert crossing.height >= 7, "registrations landing after their conversion's week are kept"


def test_accuracy_on_the_planted_truth_beats_the_nearest_in_time_baseline(conversions_sample):
    convs, regs = conversions_sample.conversions.rows, conversions_sample.registrations.rows
    quality = match_quality(match_conversions(convs, regs), conversions_sample.truth)
    baseline = match_quality(match_nearest_in_time(convs, regs), conversions_sample.truth)
    print(
        f"\nmatcher:  precision {quality.precision:.4f} recall {quality.recall:.4f} "
        f"({quality.correct} correct of {quality.predicted} matches, {quality.expected} planted)"
        f"\nbaseline: precision {baseline.precision:.4f} recall {baseline.recall:.4f} "
        f"({baseline.correct} correct of {baseline.predicted} matches)"
    )
    assert quality.precision >= 0.98
    assert quality.recall >= 0.95
    assert quality.precision > baseline.precision and quality.recall > baseline.recall


def test_confidence_ranks_right_matches_above_wrong_ones(conversions_sample):
    matches = match_conversions(conversions_sample.conversions.rows, conversions_sample.registrations.rows)
    judged = matches.join(
        conversions_sample.truth.with_columns(right=pl.lit(True)), on=["conversion_id", "registration_key"], how="left"
    ).with_columns(pl.col("right").fill_null(False))
    mean_right = judged.filter(pl.col("right")).get_column("confidence").mean()
    mean_wrong = judged.filter(~pl.col("right")).get_column("confidence").mean()
    assert mean_right > mean_wrong + 0.1
