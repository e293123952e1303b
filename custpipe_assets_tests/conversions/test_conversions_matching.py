"""The matcher: hand-made cases whose right answer is known, the delay it learns deciding between candidates, the
assignment, weekly windows, and accuracy on the planted truth of every delay regime."""

import random
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from custpipe_assets.conversions.matching import (
    CANDIDATE_WINDOW,
    MATCH_SCHEMA,
    assign,
    candidate_pairs,
    fit_conversion_delay,
    match_conversions,
    match_nearest_in_time,
    match_quality,
    match_week,
    matching_window,
    week_delay_fit,
)
from custpipe_assets.conversions.transforms import (
    clean_broker_registrations,
    clean_conversions,
    clean_page_category_mapping,
    read_broker_registrations,
    read_conversions,
    read_page_category_mapping,
)
from custpipe_assets.sample.conversions import generate_conversions_landing, read_planted_truth

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


def test_time_only_applies_when_a_country_is_unknown():
    convs = conversions((1, 0, None), (2, 100, "US"))
    regs = registrations(("unknown_site", 5, None, "DE"), ("proxy", 105, None, None))
    matches = match_conversions(convs, regs)
    assert _pairs(matches) == [(1, "unknown_site"), (2, "proxy")]
    assert set(matches.get_column("rule")) == {"time_only"}


def test_known_and_different_countries_never_match():
    assert match_conversions(conversions((1, 0, "US")), registrations(("r", 2, "GB", "US"))).is_empty()
    assert match_conversions(conversions((1, 0, "US")), registrations(("r", 2, None, "CA"))).is_empty()


def test_candidates_reach_six_hours_either_way_and_a_registration_before_its_conversion_never_matches():
    convs = conversions((1, 0, "US"))
    regs = registrations(
        ("too_early", -6 * 60 - 1, None, "US"),
        ("early", -6 * 60 + 1, None, "US"),
        ("at_once", 0, None, "US"),
        ("late", 6 * 60 - 1, None, "US"),
        ("too_late", 6 * 60 + 1, None, "US"),
        ("canada", 5, None, "CA"),
        ("proxy", 5, None, None),
    )
    pairs = candidate_pairs(convs, regs, CANDIDATE_WINDOW).sort("delay_seconds")
    assert pairs.select("registration_key", "delay_seconds", "rule").rows() == [
        ("early", -6 * 3600 + 60, "ip_country"),
        ("at_once", 0, "ip_country"),
        ("proxy", 300, "time_only"),
        ("late", 6 * 3600 - 60, "ip_country"),
    ]
    assert match_conversions(convs, registrations(("before", -1, None, "US"))).is_empty()
    assert _pairs(match_conversions(convs, registrations(("after", 1, None, "US")))) == [(1, "after")]


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


def _with_background(delays_seconds: list[float], probe: tuple[pl.DataFrame, pl.DataFrame]):
    """The probe's conversions and registrations, plus 40 background conversions two hours apart in other countries
    (so that no background pair is ever a candidate of another's or of the probe's) that each register after the
    next of `delays_seconds`: a history from which the matcher learns the delay."""
    countries = ["DE", "FR", "GB", "IT", "ES"]
    background_convs = conversions(*[(1000 + i, -6000 + 120 * i, countries[i % 5]) for i in range(40)])
    background_regs = registrations(
        *[
            (f"bg{i}", -6000 + 120 * i + delays_seconds[i % len(delays_seconds)] / 60, None, countries[i % 5])
            for i in range(40)
        ]
    )
    return pl.concat([probe[0], background_convs]), pl.concat([probe[1], background_regs])


def test_the_delay_learned_from_the_data_decides_between_two_candidates():
    # conversion 1 lands five minutes before the registration, conversion 2 three seconds before it (same country)
    probe = (conversions((1, 0, "US"), (2, 5 - 3 / 60, "US")), registrations(("r", 5, None, "US")))
    minutes = _with_background([150, 200, 240, 300, 360, 420, 500, 600], probe)
    seconds = _with_background([1, 2, 3, 4, 5, 2, 3, 1], probe)
    assert fit_conversion_delay(*minutes).quantile_seconds(0.5) == pytest.approx(300, rel=0.3)
    assert fit_conversion_delay(*seconds).quantile_seconds(0.5) == pytest.approx(2.5, rel=0.5)
    in_minutes = match_conversions(*minutes).filter(pl.col("registration_key") == "r")
    in_seconds = match_conversions(*seconds).filter(pl.col("registration_key") == "r")
    assert _pairs(in_minutes) == [(1, "r")]  # where people register minutes later, 3 seconds is a coincidence
    assert _pairs(in_seconds) == [(2, "r")]  # where they register at once, 5 minutes is
    # the nearest-in-time baseline has no notion of the delay and takes the 3-second pair in both
    assert _pairs(match_nearest_in_time(*minutes).filter(pl.col("registration_key") == "r")) == [(2, "r")]
    # every background pair is found in both
    for data in (minutes, seconds):
        background = match_conversions(*data).filter(pl.col("registration_key").str.starts_with("bg"))
        assert background.select((pl.col("conversion_id") - 1000).cast(pl.String)).to_series().to_list() == [
            key.removeprefix("bg") for key in background.get_column("registration_key")
        ]
        assert background.height == 40


class _TableScore:
    """A stand-in for the fitted delay: ln L looked up by delay (seconds), whatever the rule."""

    def __init__(self, by_delay: dict[int, float]):
        self.by_delay = by_delay

    def log_likelihood_ratio(self, delay_seconds, rules):
        return np.array([self.by_delay[round(delay)] for delay in delay_seconds], dtype=float)


def test_the_assignment_maximizes_the_summed_log_likelihood_ratio_where_best_pair_first_would_not():
    # A-X is the single best pair (6), but taking it leaves B with nothing; A-Y (5) + B-X (5) = 10 is the best whole
    convs = conversions((1, 0, "US"), (2, 100 / 60, "US"))
    regs = registrations(("x", 300 / 60, None, "US"), ("y", 500 / 60, None, "US"))
    score = _TableScore({300: 6.0, 500: 5.0, 200: 5.0, 400: -1.0})
    matches = assign(candidate_pairs(convs, regs, CANDIDATE_WINDOW), score)
    assert _pairs(matches) == [(1, "y"), (2, "x")]
    # confidence is the max-marginal: 10 with the pair against 6 (A-X alone) without it, log odds 4
    assert matches.get_column("confidence").to_list() == pytest.approx([1 / (1 + np.exp(-4.0))] * 2)
    # a pair whose ln L is not positive is never taken, and one below the confidence threshold is dropped
    assert assign(
        candidate_pairs(convs, regs, CANDIDATE_WINDOW), _TableScore({300: 0.0, 500: -1.0, 200: -2.0, 400: -1.0})
    ).is_empty()
    assert _pairs(assign(candidate_pairs(convs, regs, CANDIDATE_WINDOW), score, min_confidence=0.99)) == []


def test_ties_break_the_same_way_whatever_the_input_order():
    # two conversions at one instant and two registrations at another: every assignment scores the same
    convs = conversions((8, 0, "US"), (3, 0, "US"), (5, 0, "US"))
    regs = registrations(("c", 4, None, "US"), ("a", 4, None, "US"))
    first = match_conversions(convs, regs)
    assert first.height == 2 and set(first.get_column("conversion_id")) == {3, 5}  # the lower ids win
    for seed in range(5):
        order = random.Random(seed)
        shuffled_convs = convs.sample(fraction=1.0, shuffle=True, seed=order.randrange(1000))
        shuffled_regs = regs.sample(fraction=1.0, shuffle=True, seed=order.randrange(1000))
        assert match_conversions(shuffled_convs, shuffled_regs).equals(first)


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
        {
            "conversion_id": [1, 2],
            "created_at": [sunday_night, sunday_night + timedelta(minutes=20)],
            "country_code": ["US", "US"],
        },
        schema={"conversion_id": pl.Int64, "created_at": pl.Datetime("us", "UTC"), "country_code": pl.String},
    )
    regs = pl.DataFrame(
        {
            "registration_key": ["monday"],
            "registered_at": [sunday_night + timedelta(minutes=12)],
            "residency_code": [None],
            "ip_country_code": ["US"],
        },
        schema={
            "registration_key": pl.String,
            "registered_at": pl.Datetime("us", "UTC"),
            "residency_code": pl.String,
            "ip_country_code": pl.String,
        },
    )
    assert _pairs(match_week(convs, regs, date(2018, 9, 3))) == [(1, "monday")]
    assert match_week(convs, regs, date(2018, 9, 10)).is_empty()


def test_matching_window_and_its_guards():
    start, end = matching_window(date(2018, 9, 3))
    assert start == datetime(2018, 9, 2, 18, 0, tzinfo=UTC)  # the six-hour candidate window before the week
    assert end == datetime(2018, 9, 10, 6, 0, tzinfo=UTC)  # and after it
    with pytest.raises(ValueError, match="lookahead"):
        matching_window(date(2018, 9, 3), lookahead=timedelta(hours=5))
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


def test_weekly_partitions_with_one_delay_equal_one_matching_over_everything(conversions_sample):
    convs, regs = conversions_sample.conversions.rows, conversions_sample.registrations.rows
    weeks = sorted(convs.get_column("week_start").unique())
    weekly = pl.concat([match_week(convs, regs, week) for week in weeks]).sort("conversion_id")
    assert weekly.get_column("registration_key").is_unique().all()
    crossing = weekly.filter(pl.col("registered_at").dt.truncate("1w") > pl.col("created_at").dt.truncate("1w"))
    assert crossing.height >= 7, "registrations landing after their conversion's week are kept"
    # each week fits its own delay; given one delay, the weeks' windows decide exactly as one matching over all
    delay = fit_conversion_delay(convs, regs)
    one_delay = pl.concat([match_week(convs, regs, week, delay=delay) for week in weeks]).sort("conversion_id")
    assert one_delay.equals(match_conversions(convs, regs, delay=delay))
    # and the weekly fits barely change the outcome
    assert weekly.join(one_delay, on=["conversion_id", "registration_key"]).height >= 0.99 * weekly.height


@pytest.fixture(scope="module")
def regime_samples(tmp_path_factory, conversions_sample) -> dict[str, tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]:
    """Silver conversions, registrations and the planted truth of the default sample (the minutes regime) and of
    the same sample in the seconds and mixed regimes, all at the sample's density (1x)."""
    samples = {
        "minutes": (
            conversions_sample.conversions.rows,
            conversions_sample.registrations.rows,
            conversions_sample.truth,
        )
    }
    for regime in ("seconds", "mixed"):
        landing = tmp_path_factory.mktemp(f"conversions_{regime}")
        generate_conversions_landing(landing, delay_regime=regime)
        mapping = clean_page_category_mapping(read_page_category_mapping(landing).rows).rows
        samples[regime] = (
            clean_conversions(read_conversions(landing).rows, mapping).rows,
            clean_broker_registrations(read_broker_registrations(landing).rows).rows,
            read_planted_truth(landing),
        )
    return samples


# the generator's regimes: (lowest and highest plausible median of the true delay in seconds)
PLANTED_MEDIANS = {"seconds": (0, 5), "minutes": (120, 600), "mixed": (5, 600)}


@pytest.mark.parametrize("regime", ["seconds", "minutes", "mixed"])
def test_each_week_learns_the_planted_regime(regime, regime_samples):
    convs, regs, _ = regime_samples[regime]
    low, high = PLANTED_MEDIANS[regime]
    for week in sorted(convs.get_column("week_start").unique()):
        fit = week_delay_fit(convs, regs, week)
        assert low <= fit.quantile_seconds(0.5) <= high, (week, fit.summary())
        if regime == "seconds":
            assert fit.quantile_seconds(0.9) <= 6, (week, fit.summary())
        if regime == "minutes":
            assert fit.quantile_seconds(0.1) >= 40 and fit.quantile_seconds(0.9) <= 1800, (week, fit.summary())
        if regime == "mixed":  # half register within 5 seconds, half after minutes: both show
            assert fit.quantile_seconds(0.25) <= 6 and fit.quantile_seconds(0.75) >= 120, (week, fit.summary())


@pytest.mark.parametrize("regime", ["seconds", "minutes", "mixed"])
def test_accuracy_on_the_planted_truth_beats_the_nearest_in_time_baseline(regime, regime_samples):
    convs, regs, truth = regime_samples[regime]
    weeks = sorted(convs.get_column("week_start").unique())
    quality = match_quality(pl.concat([match_week(convs, regs, week) for week in weeks]), truth)
    baseline = match_quality(match_nearest_in_time(convs, regs), truth)
    print(
        f"\n{regime}: matcher precision {quality.precision:.4f} recall {quality.recall:.4f} "
        f"({quality.correct} correct of {quality.predicted} matches, {quality.expected} planted); "
        f"baseline precision {baseline.precision:.4f} recall {baseline.recall:.4f}"
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
