"""How steady the learned conversion -> registration delay is from week to week: how far a week's fitted delay
(`delay.DelayFit`) moved from the weeks before it, per checked week (`steadiness`, what the `delay_steady` check
reports), and a text plot of fitted delays side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np
import polars as pl

from custpipe_assets.conversions.delay import SUMMARY_QUANTILES, DelayFit

SHIFT_LEVELS = np.arange(1, 20) / 20  # the quantiles `delay_shift` compares: 5% to 95%
SHARP_SHIFT = math.log(3)  # a shift at which delays typically tripled or fell to a third: worth a warning
HISTORY_WEEKS = 8  # a week's delay is compared with that of the weeks before it, this many at most
MIN_TRUE_PAIRS = 20  # fewer fitted true pairs (in a week, or in its history) are too few to judge a shift by
STEADINESS_SCHEMA = {
    "week_start": pl.Date,
    "true_pairs": pl.Float64,
    "p10_seconds": pl.Float64,
    "p50_seconds": pl.Float64,
    "p90_seconds": pl.Float64,
    "history_weeks": pl.Int64,
    "history_p10_seconds": pl.Float64,
    "history_p50_seconds": pl.Float64,
    "history_p90_seconds": pl.Float64,
    "shift": pl.Float64,
    "shifted": pl.Boolean,
}
# lag bins of the text plot, in seconds: about a factor of three each, 1 second to 6 hours
PLOT_EDGES_SECONDS = (1, 3, 10, 30, 90, 300, 900, 2700, 7200, 21600)


def delay_shift(fit: DelayFit, history: DelayFit | Sequence[DelayFit]) -> float:
    """How far fit's delay moved from the history's: the mean gap between their quantile functions (5% to 95%, in
    steps of 5%) in u = ln(1 + seconds), i.e. a Wasserstein distance on the log scale. Several history fits are
    averaged quantile by quantile (their Wasserstein barycenter), so every week of the history counts alike.

    0 means the same delays; ln 3 (1.1, `SHARP_SHIFT`) means delays typically tripled or fell to a third; seconds
    against minutes is about 4. Unlike one quantile's gap it stays small when a two-humped delay (seconds and
    minutes) moves a little weight between its humps, which can move its median a lot.
    """
    return float(np.mean(np.abs(_log_quantiles(fit) - _history_log_quantiles(history))))


def history_quantiles(history: DelayFit | Sequence[DelayFit]) -> dict[str, float]:
    """The history's delay quantiles in seconds (the weeks' quantile functions averaged on the log scale)."""
    log_quantiles = _history_log_quantiles(history, np.array(SUMMARY_QUANTILES))
    return {
        f"p{round(q * 100)}_seconds": round(float(np.expm1(u)), 1)
        for q, u in zip(SUMMARY_QUANTILES, log_quantiles, strict=True)
    }


def steadiness(fits: dict[date, DelayFit], checked: list[date], history_weeks: int = HISTORY_WEEKS) -> pl.DataFrame:
    """Per checked week: its fitted delay against the history's (the up to `history_weeks` weeks before it that
    have a fit), and whether it shifted sharply (`delay_shift` at least `SHARP_SHIFT`).

    A week, or a history, with fewer than `MIN_TRUE_PAIRS` fitted true pairs is listed but not judged
    (`shifted` null): a handful of pairs says little about a delay. Weeks without a fit are left out.
    """
    rows = []
    for week in checked:
        if week not in fits:
            continue
        fit = fits[week]
        history = [fits[earlier] for earlier in sorted(fits) if earlier < week][-history_weeks:]
        history_pairs = sum(earlier.total_true_pairs for earlier in history)
        judged = bool(history) and fit.total_true_pairs >= MIN_TRUE_PAIRS and history_pairs >= MIN_TRUE_PAIRS
        shift = delay_shift(fit, history) if history else None
        quantiles = fit.quantiles_seconds(np.array([0.1, 0.5, 0.9]))
        before = history_quantiles(history) if history else {}
        rows.append(
            {
                "week_start": week,
                "true_pairs": round(fit.total_true_pairs, 1),
                "p10_seconds": round(float(quantiles[0]), 1),
                "p50_seconds": round(float(quantiles[1]), 1),
                "p90_seconds": round(float(quantiles[2]), 1),
                "history_weeks": len(history),
                "history_p10_seconds": before.get("p10_seconds"),
                "history_p50_seconds": before.get("p50_seconds"),
                "history_p90_seconds": before.get("p90_seconds"),
                "shift": None if shift is None else round(shift, 3),
                "shifted": (shift >= SHARP_SHIFT) if judged else None,
            }
        )
    return pl.DataFrame(rows, schema=STEADINESS_SCHEMA)


def delay_text_plot(columns: dict[str, DelayFit | Sequence[DelayFit]], width: int = 24) -> str:
    """Fitted delays side by side as a text histogram (a Markdown code block): per lag bin (a factor of about three
    wide, from 1 second to the window) the share of true pairs each column puts there, as a bar and in percent. A
    column of several fits (a history) shows their shares averaged, every week alike."""
    fits = {label: [value] if isinstance(value, DelayFit) else list(value) for label, value in columns.items()}
    window = next(iter(fits.values()))[0].window_seconds
    edges = np.array([0.0, *[edge for edge in PLOT_EDGES_SECONDS if edge < window], window])
    shares = {label: np.mean([np.diff(_cdf_at(fit, edges)) for fit in group], axis=0) for label, group in fits.items()}
    top = max(float(share.max()) for share in shares.values()) or 1.0
    column = width + 7
    lines = ["delay         " + "".join(f"{label[: column - 1]:<{column}}" for label in fits).rstrip()]
    for index in range(len(edges) - 1):
        label = f"{_seconds_label(edges[index])}-{_seconds_label(edges[index + 1])}"
        cells = "".join(
            f"{'█' * round(width * share[index] / top):<{width}}{share[index] * 100:5.1f}% "
            for share in shares.values()
        )
        lines.append(f"{label:<14}{cells}".rstrip())
    return "```\n" + "\n".join(lines) + "\n```"


def _log_quantiles(fit: DelayFit, levels: np.ndarray = SHIFT_LEVELS) -> np.ndarray:
    return np.log1p(fit.quantiles_seconds(levels))


def _history_log_quantiles(history: DelayFit | Sequence[DelayFit], levels: np.ndarray = SHIFT_LEVELS) -> np.ndarray:
    fits = [history] if isinstance(history, DelayFit) else list(history)
    if not fits:
        raise ValueError("a history needs at least one fitted week")
    return np.mean([_log_quantiles(fit, levels) for fit in fits], axis=0)


def _cdf_at(fit: DelayFit, seconds: np.ndarray) -> np.ndarray:
    """Share of true pairs with a delay below each of `seconds`."""
    top = math.log1p(fit.window_seconds)
    grid = np.linspace(0.0, top, 4001)
    cdf = np.concatenate([[0.0], np.cumsum(np.diff(grid) * fit.density_in_log_delay((grid[1:] + grid[:-1]) / 2))])
    return np.interp(np.log1p(seconds), grid, cdf / cdf[-1])


def _seconds_label(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:g}s"
    if seconds < 5400:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
