"""The conversion -> registration delay, learned from each run's data instead of assumed.

What belongs here: fitting the delay distribution from candidate pairs, scoring a pair by it, and summarizing or
comparing fits (quantiles, a text plot, how far a week's delay moved from the weeks before it). Candidate pairs
come from `matching.candidate_pairs`: every (conversion, registration) within `window` of each other in either
direction whose countries do not contradict, with its `rule` (`residency_country`, `ip_country`, `time_only`) and
signed `delay_seconds` (registration time minus conversion time).

The model. Pairs with the registration after the conversion are a mixture: true pairs, whose delay has an unknown
density f (the same for every rule), and chance pairs, which fall at any lag alike. Pairs in the wrong direction
(registration first) can only be chance, so they measure the chance rate of each rule per second of lag (scaled
up when the data does not reach a full window before every conversion); that rate is held fixed, and EM finds f
and the number of true pairs of each rule. f lives on u = ln(1 + seconds), as a mixture of one to three Gaussians
in u (log-normal delays), grown one split at a time while BIC improves, so a seconds regime, a minutes regime and
a mix of both are all fitted, and the tails stay those of the shapes the data shows rather than its chance
bumps. A few pseudo pairs spread flat over u (and one chance pair per rule) keep tiny inputs sane: with next to
nothing to learn from, f is flat in log-delay, which makes the matcher prefer the shorter delay within a
country, and nothing else.

A pair's score is the log-likelihood ratio of "matched" against "both left unmatched" in the assignment's model:
each conversion registers (share pi, learned) with a delay from f and a rule, else not; each registration is some
conversion's or unexplained. ln L = ln(true_pairs[rule] * f(delay) / chance_rate[rule]) - ln(1 - pi) -
ln(share of registrations unexplained). No delay constant enters it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl
from scipy.special import ndtr

RULES = ("residency_country", "ip_country", "time_only")
MAX_COMPONENTS = 3
MIN_LOG_SPREAD = 0.15  # narrowest component, in u: delays within ~15% of each other are not told apart
PRIOR_TRUE_PAIRS = 2.0  # pseudo true pairs spread flat over u: the fallback when there is little to learn from
PRIOR_CHANCE_PAIRS = 1.0  # pseudo chance pairs per rule, so that a rule with no wrong-way pair is not certain
EM_ITERATIONS = 300
EM_TOLERANCE = 1e-6  # change in log-likelihood per iteration below which EM stops
PLOT_BIN = 0.1  # width in u of the histogram bins kept for the plot
SUMMARY_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
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


@dataclass(frozen=True, eq=False)
class DelayFit:
    """A fitted delay: the mixture in u, and per rule the chance rate and the true-pair count."""

    window_seconds: float
    weights: np.ndarray  # of the Gaussian components in u, summing to 1 - flat_share
    means: np.ndarray
    spreads: np.ndarray
    flat_share: float  # the pseudo pairs' flat part
    chance_rate: dict[str, float]  # chance pairs per second of lag
    true_pairs: dict[str, float]
    share_not_registering: float  # of conversions
    share_unexplained: float  # of registrations
    forward_pairs: int = 0
    backward_pairs: int = 0
    conversions: int = 0  # the conversions fitted on
    histogram: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)

    @property
    def total_true_pairs(self) -> float:
        return sum(self.true_pairs.values())

    def density_in_log_delay(self, u: np.ndarray) -> np.ndarray:
        """f per unit u = ln(1 + seconds), over [0, ln(1 + window)]."""
        return _mixture(
            np.asarray(u, dtype=float),
            self.weights,
            self.means,
            self.spreads,
            self.flat_share,
            math.log1p(self.window_seconds),
        )

    def log_likelihood_ratio(self, delay_seconds: np.ndarray, rules: np.ndarray) -> np.ndarray:
        """ln L of each pair being matched against both its sides being left unmatched (see module doc)."""
        u = np.log1p(np.clip(np.asarray(delay_seconds, dtype=float), 0.0, self.window_seconds))
        index = _rule_index(rules)
        log_true = np.log([self.true_pairs[rule] for rule in RULES])[index]
        log_chance = np.log([self.chance_rate[rule] for rule in RULES])[index]
        log_density = np.log(self.density_in_log_delay(u)) - u  # per second: du/d(delay) = e^-u
        return log_true + log_density - log_chance - math.log(self.share_not_registering * self.share_unexplained)

    def quantile_seconds(self, q: float) -> float:
        """The delay (seconds) below which a share q of true pairs fall."""
        return float(self.quantiles_seconds(np.array([q]))[0])

    def quantiles_seconds(self, qs: np.ndarray) -> np.ndarray:
        """`quantile_seconds` for many shares at once."""
        top = math.log1p(self.window_seconds)
        grid = np.linspace(0.0, top, 4001)
        cdf = np.concatenate([[0.0], np.cumsum(np.diff(grid) * self.density_in_log_delay((grid[1:] + grid[:-1]) / 2))])
        return np.expm1(np.interp(np.asarray(qs, dtype=float) * cdf[-1], cdf, grid))

    def summary(self) -> dict[str, float]:
        """Quantiles in seconds, true pairs, and chance pairs per hour of lag over all rules: the fit in numbers."""
        figures = {f"p{round(q * 100)}_seconds": round(self.quantile_seconds(q), 1) for q in SUMMARY_QUANTILES}
        figures["conversions"] = self.conversions
        figures["true_pairs"] = round(self.total_true_pairs, 1)
        figures["components"] = len(self.weights)
        figures["chance_pairs_per_hour_of_lag"] = round(3600 * sum(self.chance_rate.values()), 2)
        figures["candidate_pairs"] = self.forward_pairs
        figures["wrong_way_pairs"] = self.backward_pairs
        return figures


def fit_delay(
    pairs: pl.DataFrame,
    window_seconds: float,
    *,
    conversions: int,
    registrations: int,
    wrong_way_exposure: float = 1.0,
) -> DelayFit:
    """Fit the delay from candidate pairs (`delay_seconds`, `rule`) within +-window_seconds; see module doc.

    `conversions` and `registrations` count the conversions the pairs are of and the registrations they could
    explain. `wrong_way_exposure` is the share of those conversions' wrong-way window (the `window_seconds` before
    each) that the data covers: less than 1 when registrations are only known from some point on, e.g. in the
    first week of the history.
    """
    delay = pairs.get_column("delay_seconds").cast(pl.Float64).to_numpy()
    rules = _rule_index(pairs.get_column("rule").to_numpy())
    forward = delay >= 0
    backward_counts = np.bincount(rules[~forward], minlength=len(RULES))
    observed_rate = backward_counts / (window_seconds * max(wrong_way_exposure, 1e-9))
    chance_rate = observed_rate + PRIOR_CHANCE_PAIRS / window_seconds
    top = math.log1p(window_seconds)
    u = np.log1p(np.minimum(delay[forward], window_seconds))
    forward_rules = rules[forward]
    chance_in_u = chance_rate[forward_rules] * np.exp(u)  # chance pairs per unit u at each pair's delay

    forward_counts = np.bincount(forward_rules, minlength=len(RULES))
    initial_true = np.maximum(forward_counts - backward_counts, 1.0).astype(float)
    best = _fit_mixture(
        u,
        forward_rules,
        chance_in_u,
        top,
        _one_component(u, forward_rules, chance_in_u, top, initial_true),
        initial_true,
    )
    while len(best["means"]) < MAX_COMPONENTS:  # grow by splitting a component while BIC says it pays
        grown = min(
            (
                _fit_mixture(u, forward_rules, chance_in_u, top, _split(best, index), best["true_pairs"])
                for index in range(len(best["means"]))
            ),
            key=lambda fit: fit["bic"],
        )
        if grown["bic"] >= best["bic"]:
            break
        best = grown
    true_total = float(best["true_pairs"].sum())
    return DelayFit(
        window_seconds=window_seconds,
        weights=best["weights"],
        means=best["means"],
        spreads=best["spreads"],
        flat_share=best["flat_share"],
        chance_rate=dict(zip(RULES, chance_rate.tolist(), strict=True)),
        true_pairs=dict(zip(RULES, best["true_pairs"].tolist(), strict=True)),
        share_not_registering=_share_left(true_total, conversions),
        share_unexplained=_share_left(true_total, registrations),
        forward_pairs=int(forward.sum()),
        backward_pairs=int((~forward).sum()),
        conversions=conversions,
        histogram=_histogram(u, top, chance_rate.sum()),
    )


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


def _fit_mixture(
    u: np.ndarray,
    rules: np.ndarray,
    chance_in_u: np.ndarray,
    top: float,
    start: tuple[np.ndarray, np.ndarray, np.ndarray],
    true_pairs: np.ndarray,
) -> dict:
    """EM for Gaussians in u (from `start`: weights, means, spreads) plus the fixed chance intensity; the fit and
    its BIC."""
    weights, means, spreads = (np.array(part, dtype=float) for part in start)
    flat_share = 1.0
    previous = -np.inf
    log_likelihood = 0.0
    for _ in range(EM_ITERATIONS):
        flat_share = PRIOR_TRUE_PAIRS / (true_pairs.sum() + PRIOR_TRUE_PAIRS)
        per_component = (1 - flat_share) * weights * _truncated_pdf(u[:, None], means, spreads, top)
        density = per_component.sum(axis=1) + flat_share / top
        true_intensity = true_pairs[rules] * density
        log_likelihood = float(np.log(true_intensity + chance_in_u).sum() - true_pairs.sum())
        responsibility = true_intensity / (true_intensity + chance_in_u)
        true_pairs = np.maximum(np.bincount(rules, weights=responsibility, minlength=len(RULES)), 1e-3)
        shares = responsibility[:, None] * per_component / density[:, None]
        totals = shares.sum(axis=0) + 1e-12
        weights = totals / totals.sum()
        means = (shares * u[:, None]).sum(axis=0) / totals
        spreads = np.sqrt((shares * (u[:, None] - means) ** 2).sum(axis=0) / totals)
        spreads = np.maximum(spreads, MIN_LOG_SPREAD)
        if abs(log_likelihood - previous) < EM_TOLERANCE * max(1.0, abs(log_likelihood)):
            break
        previous = log_likelihood
    order = np.argsort(means)
    components = len(means)
    parameters = 3 * components - 1 + len(RULES)
    return {
        "weights": (1 - flat_share) * weights[order],
        "mixture_weights": weights[order],
        "means": means[order],
        "spreads": spreads[order],
        "flat_share": flat_share,
        "true_pairs": true_pairs,
        "bic": -2 * log_likelihood + parameters * math.log(max(len(u), 2)),
    }


def _one_component(
    u: np.ndarray, rules: np.ndarray, chance_in_u: np.ndarray, top: float, true_pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The start of EM: one Gaussian at the mean and spread of u, each pair weighted by its chance of being true
    were the true delays flat in u."""
    if not len(u):
        return np.ones(1), np.array([top / 2]), np.array([max(top / 4, MIN_LOG_SPREAD)])
    flat = true_pairs[rules] / top
    excess = flat / (flat + chance_in_u)
    centre = float(np.average(u, weights=excess))
    spread = math.sqrt(float(np.average((u - centre) ** 2, weights=excess)))
    return np.ones(1), np.array([centre]), np.array([max(spread, MIN_LOG_SPREAD)])


def _split(fit: dict, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The start of EM with one more component: component `index` split in two, half a spread either side."""
    weights, means, spreads = fit["mixture_weights"], fit["means"], fit["spreads"]
    mean, spread = means[index], spreads[index]
    return (
        np.concatenate([np.delete(weights, index), [weights[index] / 2] * 2]),
        np.concatenate([np.delete(means, index), [mean - spread / 2, mean + spread / 2]]),
        np.concatenate([np.delete(spreads, index), [max(spread / 2, MIN_LOG_SPREAD)] * 2]),
    )


def _truncated_pdf(u: np.ndarray, means: np.ndarray, spreads: np.ndarray, top: float) -> np.ndarray:
    """Gaussian densities in u, renormalized to [0, top] so that no mass is lost below 0 seconds."""
    mass = ndtr((top - means) / spreads) - ndtr(-means / spreads)
    return np.exp(-0.5 * ((u - means) / spreads) ** 2) / (spreads * math.sqrt(2 * math.pi) * np.maximum(mass, 1e-12))


def _mixture(u, weights, means, spreads, flat_share, top) -> np.ndarray:
    return (weights * _truncated_pdf(u[..., None], means, spreads, top)).sum(axis=-1) + flat_share / top


def _share_left(true_pairs: float, total: int) -> float:
    """The share of `total` not in a true pair, with a pseudo count either way so that it is never 0 or 1."""
    return float(np.clip((total - true_pairs + 1.0) / (total + 2.0), 1.0 / (total + 2.0), 1.0))


def _histogram(u: np.ndarray, top: float, chance_rate: float) -> pl.DataFrame:
    """Forward pairs per bin of u and the chance pairs expected there, for the plot."""
    edges = np.linspace(0.0, top, max(2, math.ceil(top / PLOT_BIN)) + 1)
    counts, _ = np.histogram(u, bins=edges)
    return pl.DataFrame(
        {
            "from_seconds": np.expm1(edges[:-1]),
            "to_seconds": np.expm1(edges[1:]),
            "candidate_pairs": counts.astype(np.int64),
            "expected_chance_pairs": chance_rate * np.diff(np.expm1(edges)),
        }
    )


def _rule_index(rules: np.ndarray) -> np.ndarray:
    lookup = {rule: index for index, rule in enumerate(RULES)}
    return np.fromiter((lookup[rule] for rule in rules), dtype=np.int64, count=len(rules))
