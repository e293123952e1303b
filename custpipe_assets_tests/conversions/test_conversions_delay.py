"""The delay model on candidate pairs drawn from a known truth: it recovers the planted delay and chance rate, learns
whatever scale the data has (no delay constant), tells one hump from two, stays sane on tiny inputs, and measures how
far a week's delay moved from its history."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from custpipe_assets.conversions.delay import fit_delay
from custpipe_assets.conversions.delay_steadiness import (
    MIN_TRUE_PAIRS,
    SHARP_SHIFT,
    delay_shift,
    delay_text_plot,
    history_quantiles,
    steadiness,
)

WINDOW = 6 * 3600.0


def _pairs(true_delays: np.ndarray, chance_per_second: float, seed: int = 0, rule: str = "ip_country") -> pl.DataFrame:
    """Candidate pairs: the true ones at `true_delays`, and chance pairs at any lag in +-WINDOW, `chance_per_second`
    of them per second of lag (so about as many before the conversions as after them)."""
    rng = np.random.default_rng(seed)
    chance = rng.uniform(-WINDOW, WINDOW, rng.poisson(chance_per_second * 2 * WINDOW))
    delays = np.concatenate([true_delays, chance])
    return pl.DataFrame({"delay_seconds": delays, "rule": [rule] * len(delays)})


def _log_normal(median: float, spread: float, count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(median), spread, count)


def test_the_fit_recovers_a_planted_log_normal_delay_and_the_chance_rate():
    pairs = _pairs(_log_normal(40, 0.6, 600), chance_per_second=0.05)
    fit = fit_delay(pairs, WINDOW, conversions=800, registrations=700)
    # planted: median 40 s, 10th and 90th percentiles 40 * exp(-+1.2816 * 0.6) = 18.6 s and 86.1 s
    assert fit.quantile_seconds(0.5) == pytest.approx(40, rel=0.15)
    assert fit.quantile_seconds(0.1) == pytest.approx(18.6, rel=0.25)
    assert fit.quantile_seconds(0.9) == pytest.approx(86.1, rel=0.25)
    assert fit.total_true_pairs == pytest.approx(600, rel=0.1)
    assert fit.chance_rate["ip_country"] == pytest.approx(0.05, rel=0.1)
    assert fit.share_not_registering == pytest.approx(200 / 800, abs=0.05)
    assert fit.share_unexplained == pytest.approx(100 / 700, abs=0.05)


def test_no_delay_is_built_in_the_same_data_ten_times_slower_fits_ten_times_longer():
    delays = _log_normal(40, 0.6, 600)
    fast = fit_delay(_pairs(delays, 0.005), WINDOW, conversions=800, registrations=700)
    slow = fit_delay(_pairs(10 * delays, 0.005), WINDOW, conversions=800, registrations=700)
    for q in (0.25, 0.5, 0.75):
        assert slow.quantile_seconds(q) == pytest.approx(10 * fast.quantile_seconds(q), rel=0.2)


def test_a_delay_of_seconds_or_minutes_gets_two_humps_and_the_pair_score_follows_them():
    seconds = np.random.default_rng(2).integers(0, 6, 300).astype(float)
    both = np.concatenate([seconds, _log_normal(600, 0.5, 300)])
    fit = fit_delay(_pairs(both, 0.01), WINDOW, conversions=700, registrations=650)
    assert len(fit.weights) >= 2
    assert fit.quantile_seconds(0.25) <= 6 and fit.quantile_seconds(0.75) >= 300
    score = fit.log_likelihood_ratio(np.array([3.0, 60.0, 600.0, 5 * 3600.0]), np.array(["ip_country"] * 4))
    assert score[0] > score[1] < score[2]  # between the humps a pair is less likely true than in either
    assert score[3] < 0  # hours later it is more likely chance


def test_the_rule_weighs_in_by_its_own_chance_rate():
    # residency pairs meet few chance pairs, time_only ones many: the same delay is worth more under residency
    pairs = pl.concat(
        [
            _pairs(_log_normal(60, 0.5, 200, seed=3), 0.002, seed=4, rule="residency_country"),
            _pairs(_log_normal(60, 0.5, 200, seed=5), 0.05, seed=6, rule="time_only"),
        ]
    )
    fit = fit_delay(pairs, WINDOW, conversions=500, registrations=450)
    residency, time_only = fit.log_likelihood_ratio(
        np.array([60.0, 60.0]), np.array(["residency_country", "time_only"])
    )
    assert residency > time_only
    assert fit.chance_rate["time_only"] == pytest.approx(0.05, rel=0.15)


def test_tiny_or_empty_inputs_fall_back_to_a_flat_log_delay():
    empty = fit_delay(
        pl.DataFrame({"delay_seconds": [], "rule": []}, schema={"delay_seconds": pl.Float64, "rule": pl.String}),
        WINDOW,
        conversions=0,
        registrations=0,
    )
    # nothing to learn from: flat in ln(1 + seconds) over the window, so its median is sqrt(1 + window) - 1
    assert empty.quantile_seconds(0.5) == pytest.approx(np.sqrt(1 + WINDOW) - 1, rel=0.02)
    assert np.isfinite(empty.log_likelihood_ratio(np.array([60.0]), np.array(["ip_country"]))).all()
    assert all(np.isfinite(value) for value in empty.summary().values())
    one = fit_delay(
        pl.DataFrame({"delay_seconds": [180.0], "rule": ["ip_country"]}), WINDOW, conversions=1, registrations=1
    )
    sooner, later = one.log_likelihood_ratio(np.array([180.0, 3 * 3600.0]), np.array(["ip_country"] * 2))
    assert sooner > 0 and sooner > later + 1  # with next to nothing learned, the shorter delay in a country wins


def test_a_partly_seen_wrong_way_window_is_scaled_up_to_the_chance_rate():
    # the registrations are only known from some point on: the conversions' wrong-way lags are half unseen
    rng = np.random.default_rng(7)
    chance_after = rng.uniform(0, WINDOW, rng.poisson(0.05 * WINDOW))
    chance_before = rng.uniform(-WINDOW, 0, rng.poisson(0.05 * WINDOW / 2))
    delays = np.concatenate([rng.integers(0, 6, 400).astype(float), chance_after, chance_before])
    pairs = pl.DataFrame({"delay_seconds": delays, "rule": ["ip_country"] * len(delays)})
    told = fit_delay(pairs, WINDOW, conversions=500, registrations=480, wrong_way_exposure=0.5)
    assert told.chance_rate["ip_country"] == pytest.approx(0.05, rel=0.1)
    assert told.quantile_seconds(0.9) <= 10 and told.total_true_pairs == pytest.approx(400, rel=0.1)
    untold = fit_delay(pairs, WINDOW, conversions=500, registrations=480)
    assert untold.chance_rate["ip_country"] == pytest.approx(0.025, rel=0.1), "only half the chance pairs were seen"


def test_delay_shift_is_zero_for_the_same_delay_and_about_the_log_ratio_for_a_scaled_one():
    delays = _log_normal(30, 0.5, 500)
    base = fit_delay(_pairs(delays, 0.001), WINDOW, conversions=600, registrations=550)
    tripled = fit_delay(_pairs(9 * delays, 0.001), WINDOW, conversions=600, registrations=550)
    assert delay_shift(base, base) == 0
    assert delay_shift(base, [base, base]) == pytest.approx(0, abs=1e-12)
    # ln(1 + 9 s) - ln(1 + s) is a little under ln 9 for delays of tens of seconds
    assert delay_shift(tripled, base) == pytest.approx(np.log(9), rel=0.1)
    assert delay_shift(tripled, base) > SHARP_SHIFT
    assert history_quantiles([base, base])["p50_seconds"] == pytest.approx(base.quantile_seconds(0.5), abs=0.1)


def test_steadiness_judges_each_week_against_the_weeks_before_it():
    minutes = [
        fit_delay(_pairs(_log_normal(300, 0.6, 250, seed=s), 0.002, seed=s), WINDOW, conversions=300, registrations=280)
        for s in range(4)
    ]
    seconds = fit_delay(
        _pairs(np.random.default_rng(9).integers(0, 6, 250).astype(float), 0.002, seed=9),
        WINDOW,
        conversions=300,
        registrations=280,
    )
    tiny = fit_delay(
        pl.DataFrame({"delay_seconds": [2.0, 3.0], "rule": ["ip_country"] * 2}), WINDOW, conversions=2, registrations=2
    )
    weeks = [date(2018, 9, 3) + timedelta(weeks=n) for n in range(6)]
    fits = dict(zip(weeks, [*minutes[:3], seconds, minutes[3], tiny], strict=True))
    table = steadiness(fits, weeks, history_weeks=2)
    assert table.get_column("shifted").to_list() == [None, False, False, True, True, None]
    assert table.get_column("history_weeks").to_list() == [0, 1, 2, 2, 2, 2]
    assert tiny.total_true_pairs < MIN_TRUE_PAIRS  # the last week is listed, not judged
    assert table.filter(pl.col("week_start") == weeks[3]).item(0, "p50_seconds") <= 5
    assert 200 <= table.filter(pl.col("week_start") == weeks[3]).item(0, "history_p50_seconds") <= 450
    plot = delay_text_plot({"seconds": seconds, "minutes": minutes})
    assert plot.startswith("```") and plot.endswith("```")
    rows = {line.split()[0]: line for line in plot.splitlines()[2:-1]}
    assert set(rows) >= {"0s-1s", "1.5m-5m", "5m-15m", "2h-6h"}
    assert "█" in rows["1s-3s"].split("%")[0] and "█" not in rows["5m-15m"].split("%")[0]
