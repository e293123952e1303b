"""The conversion -> registration delay, learned from each run's data instead of assumed.

What belongs here: fitting the delay distribution from candidate pairs, scoring a pair by it, and summarizing a
fit (quantiles); comparing fits week to week is in `delay_steadiness.py`. Candidate pairs come from
`matching.candidate_pairs`: every (conversion, registration) within `window` of each other in either direction
whose countries do not contradict, with its `rule` (`residency_country`, `ip_country`, `time_only`) and signed
`delay_seconds` (registration time minus conversion time).

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
from dataclasses import dataclass, field

import numpy as np
import polars as pl

RULES = ("residency_country", "ip_country", "time_only")
MAX_COMPONENTS = 3
MIN_LOG_SPREAD = 0.15  # narrowest component, in u: delays within ~15% of each other are not told apart
PRIOR_TRUE_PAIRS = 2.0  # pseudo true pairs spread flat over u: the fallback when there is little to learn from
PRIOR_CHANCE_PAIRS = 1.0  # pseudo chance pairs per rule, so that a rule with no wrong-way pair is not certain
EM_ITERATIONS = 300
EM_TOLERANCE = 1e-6  # change in log-likelihood per iteration below which EM stops
PLOT_BIN = 0.1  # width in u of the histogram bins kept for the plot
SUMMARY_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


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
    # imported here, not at module load: start-up time of every run
    from scipy.special import ndtr

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
