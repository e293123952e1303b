"""The oracle for `benchmarks/matching.py`: the matcher's own assignment, scored with the TRUE delay density and the
TRUE chance rates instead of fitted ones. Benchmark only; it reads the planted truth, which no real run has.

It answers "is the target reachable at all in this regime?": if even the oracle misses it, no better estimate of the
delay can reach it, because what is left are pairs that time and country cannot tell apart. The parameters:
- the delay density: a histogram over u = ln(1 + seconds), bins of `BIN`, of the planted delays of an INDEPENDENT
  sample of the same regime (another seed, many pairs): the generator's delay as it draws it (its regime, the
  week-boundary conversions and the cross-country traps), without knowing where the scored sample's own true pairs
  happen to lie;
- counted from the scored sample's planted truth (the generator's rates do not change from week to week), on the
  conversions whose whole +-window the data covers: true pairs per rule, chance pairs per rule per second of lag
  (every candidate pair, either direction, that is not a planted pair, over twice the window), and the shares of
  conversions that do not register and of registrations that no conversion explains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl

from custpipe_assets.conversions.delay import RULES, DelayFit
from custpipe_assets.conversions.matching import CANDIDATE_WINDOW, candidate_pairs

BIN = 0.05  # in u; fine enough for the seconds regime's whole seconds (u = 0, 0.69, 1.10, ...) to fall apart


@dataclass(frozen=True, eq=False)
class TrueDelay(DelayFit):
    """A DelayFit whose density is the planted pairs' histogram in u (the other fields are the true counts)."""

    bin_edges: np.ndarray = field(default_factory=lambda: np.zeros(2))
    bin_density: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def density_in_log_delay(self, u: np.ndarray) -> np.ndarray:
        index = np.clip(
            np.searchsorted(self.bin_edges, np.asarray(u, dtype=float), side="right") - 1, 0, len(self.bin_density) - 1
        )
        return np.maximum(self.bin_density[index], 1e-300)  # no mass: ln L of -690, never an edge


def true_delay(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    truth: pl.DataFrame,
    planted_delays: np.ndarray,
    window: timedelta = CANDIDATE_WINDOW,
) -> TrueDelay:
    """The true parameters of the sample, in the shape of a DelayFit; the density from `planted_delays` (seconds, of
    an independent sample of the same regime). See module doc."""
    at = registrations.get_column("registered_at")
    covered = pl.col("created_at").is_between(at.min() + window, at.max() - window)
    pairs = (
        candidate_pairs(conversions, registrations, window)
        .join(truth.with_columns(planted=pl.lit(True)), on=["conversion_id", "registration_key"], how="left")
        .with_columns(pl.col("planted").fill_null(False))
    )
    window_seconds = window.total_seconds()
    top = math.log1p(window_seconds)
    edges = np.arange(0.0, top + BIN, BIN)
    counts, _ = np.histogram(np.log1p(np.clip(planted_delays, 0, window_seconds)), bins=edges)
    density = counts / counts.sum() / BIN
    counted = pairs.filter(covered)
    true_pairs = _per_rule(counted.filter(pl.col("planted")))
    chance_rate = {
        rule: count / (2 * window_seconds) for rule, count in _per_rule(counted.filter(~pl.col("planted"))).items()
    }
    true_total = sum(true_pairs.values())
    covered_conversions = conversions.filter(covered).height
    covered_registrations = registrations.filter(
        pl.col("registered_at").is_between(at.min() + window, at.max() - window)
    ).height
    return TrueDelay(
        window_seconds=window_seconds,
        weights=np.zeros(0),
        means=np.zeros(0),
        spreads=np.ones(0),
        flat_share=0.0,
        chance_rate=chance_rate,
        true_pairs=true_pairs,
        share_not_registering=1 - true_total / covered_conversions,
        share_unexplained=max(1 - true_total / covered_registrations, 1e-6),
        bin_edges=edges,
        bin_density=density,
    )


def planted_delays(conversions: pl.DataFrame, registrations: pl.DataFrame, truth: pl.DataFrame) -> np.ndarray:
    """The delay in seconds of every planted pair."""
    return (
        truth.join(conversions.select("conversion_id", "created_at"), on="conversion_id")
        .join(registrations.select("registration_key", "registered_at"), on="registration_key")
        .select((pl.col("registered_at") - pl.col("created_at")).dt.total_seconds())
        .to_series()
        .to_numpy()
        .astype(float)
    )


def _per_rule(pairs: pl.DataFrame) -> dict[str, float]:
    counts = dict(pairs.group_by("rule").len().iter_rows())
    return {rule: float(max(counts.get(rule, 0), 1)) for rule in RULES}
