"""Which affiliate conversion became which broker registration: one-to-one matching over the silver frames.

What belongs here: candidate pairs, the assignment, the weekly windowing, a nearest-in-time baseline and scoring a
matching against a known truth. Inputs are the silver frames of `transforms.py` (conversions: `conversion_id,
created_at, country_code`; registrations: `registration_key, registered_at, residency_code, ip_country_code`). The
delay model itself is in `delay.py`.

How it matches: there is no shared key, only time and country.
- Candidates: a range join in DuckDB finds every pair within `window` (default 6 hours, wide enough for any
  plausible regime, seconds to hours) in either direction whose countries do not contradict: `residency_country`
  when the broker's residency code equals the conversion's, `ip_country` when the broker has no residency and the
  IP country's code equals it, `time_only` when either side's country is unknown. Known and different countries
  are never a pair.
- The delay is learned from these pairs (`delay.fit_delay`): the wrong-way pairs (registration first) measure the
  chance rate, and EM finds the delay density of the true pairs. Each forward pair then has a log-likelihood
  ratio ln L, matched against both sides left unmatched; only pairs with ln L > 0 are kept as edges. No delay
  constant enters the score: the window only bounds where pairs are looked for.
- Assignment: each conversion and each registration at most once, maximizing the summed ln L, solved exactly
  with scipy's `linear_sum_assignment` on each connected component of the candidate graph. Exact ties go to the
  lower conversion id, then the lower registration key (a nudge of 1e-9 in ln L per rank); the ties no such nudge
  separates (several conversions and registrations at one instant each) are settled by the solver on the
  id-ordered component, the same way every run and whatever the input order.
- Confidence is the pair's posterior probability, approximated by its max-marginal: the odds of the best
  assignment of its component with the pair against the best one without it. A pair below `min_confidence`
  stays unmatched.

Why not splink: it scores record pairs by agreement on shared attributes with Fellegi-Sunter weights; it has no
notion of "B follows A after a delay it must learn", nor of a one-to-one assignment, and the two sides share one
attribute (country). Its blocking and a time comparison could be forced in, but the delay model and the
assignment would still be ours.

Weekly partitions (weeks start Monday 00:00 UTC): a week's matching sees `window` before the week and the
look-ahead (at least `window`) after it, fits the delay on the week's own conversions (whose pairs in both
directions all lie in that span) and keeps the pairs whose conversion is in the week. See `match_week`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import duckdb
import numpy as np
import polars as pl

from custpipe_assets.conversions.delay import DelayFit, fit_delay

CANDIDATE_WINDOW = timedelta(hours=6)
DEFAULT_LOOKAHEAD = CANDIDATE_WINDOW
MIN_CONFIDENCE = 0.5
BASELINE_MAX_DELAY = timedelta(minutes=60)  # the nearest-in-time baseline's only notion of delay
TIE_BREAK = 1e-9  # ln L given up per rank step, so exact ties go to lower ids; far below any real difference

MATCH_SCHEMA = {
    "conversion_id": pl.Int64,
    "registration_key": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "registered_at": pl.Datetime("us", "UTC"),
    "delay_seconds": pl.Int64,
    "rule": pl.String,
    "confidence": pl.Float64,
}
CANDIDATES_SQL = """
with c as (select conversion_id, epoch_us(created_at) as at, country_code from conversions),
     r as (select registration_key, epoch_us(registered_at) as at, residency_code,
                  coalesce(residency_code, ip_country_code) as country from registrations)
select c.conversion_id, r.registration_key, c.at as created_us, r.at as registered_us,
       (r.at - c.at) / 1e6 as delay_seconds,
       case when c.country_code is null or r.country is null then 'time_only'
            when r.residency_code is not null then 'residency_country' else 'ip_country' end as rule
from c join r on r.at between c.at - $window_us and c.at + $window_us
             and (c.country_code is null or r.country is null or c.country_code = r.country)
"""


class PairScore(Protocol):
    """What the assignment needs of a delay model: ln L of each pair from its delay and rule (`DelayFit` is one)."""

    def log_likelihood_ratio(self, delay_seconds: np.ndarray, rules: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class MatchQuality:
    """Precision and recall of a matching against the planted truth, with the counts behind them."""

    precision: float
    recall: float
    correct: int
    predicted: int
    expected: int


def candidate_pairs(conversions: pl.DataFrame, registrations: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """Every pair within +-window whose countries do not contradict, with its rule and signed delay (a range join)."""
    with duckdb.connect() as connection:
        connection.register("conversions", conversions.select("conversion_id", "created_at", "country_code"))
        connection.register(
            "registrations",
            registrations.select("registration_key", "registered_at", "residency_code", "ip_country_code"),
        )
        window_us = int(window.total_seconds() * 1_000_000)
        pairs = connection.execute(CANDIDATES_SQL, {"window_us": window_us}).pl()
    return pairs.with_columns(
        pl.col("conversion_id").cast(pl.Int64),
        pl.col("delay_seconds").cast(pl.Float64),
        created_at=pl.from_epoch("created_us", time_unit="us").dt.replace_time_zone("UTC"),
        registered_at=pl.from_epoch("registered_us", time_unit="us").dt.replace_time_zone("UTC"),
    ).drop("created_us", "registered_us")


def fit_conversion_delay(
    conversions: pl.DataFrame, registrations: pl.DataFrame, *, window: timedelta = CANDIDATE_WINDOW
) -> DelayFit:
    """The delay learned from all the given conversions and registrations."""
    return _fit_between(conversions, registrations, candidate_pairs(conversions, registrations, window), window)


def match_conversions(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    *,
    window: timedelta = CANDIDATE_WINDOW,
    delay: DelayFit | None = None,
    min_confidence: float = MIN_CONFIDENCE,
) -> pl.DataFrame:
    """One-to-one matches with `rule` and `confidence` (0..1); the delay is fitted on the inputs unless given."""
    pairs = candidate_pairs(conversions, registrations, window)
    if delay is None:
        delay = _fit_between(conversions, registrations, pairs, window)
    return assign(pairs, delay, min_confidence=min_confidence)


def assign(pairs: pl.DataFrame, delay: PairScore, *, min_confidence: float = MIN_CONFIDENCE) -> pl.DataFrame:
    """The one-to-one assignment maximizing the summed ln L over the forward pairs, with max-marginal confidence."""
    forward = pairs.filter(pl.col("delay_seconds") >= 0)
    weight = delay.log_likelihood_ratio(
        forward.get_column("delay_seconds").to_numpy(), forward.get_column("rule").to_numpy()
    )
    edges = forward.with_columns(weight=pl.Series(weight, dtype=pl.Float64)).filter(pl.col("weight") > 0)
    if edges.is_empty():
        return pl.DataFrame(schema=MATCH_SCHEMA)
    conversion_rank = edges.get_column("conversion_id").rank("dense").cast(pl.Int64).to_numpy() - 1
    registration_rank = edges.get_column("registration_key").rank("dense").cast(pl.Int64).to_numpy() - 1
    chosen, log_odds = _solve_components(conversion_rank, registration_rank, edges.get_column("weight").to_numpy())
    matches = edges[chosen].with_columns(confidence=pl.Series(1 / (1 + np.exp(-log_odds)), dtype=pl.Float64))
    return (
        matches.filter(pl.col("confidence") >= min_confidence)
        .with_columns(pl.col("delay_seconds").floor().cast(pl.Int64))
        .select(list(MATCH_SCHEMA))
        .cast(MATCH_SCHEMA)
        .sort("conversion_id")
    )


def matching_window(
    week_start: date, *, lookahead: timedelta = DEFAULT_LOOKAHEAD, window: timedelta = CANDIDATE_WINDOW
) -> tuple[datetime, datetime]:
    """[start, end) of the times a week's matching must see, for conversions and registrations alike.

    It opens `window` before the week, so that last week's late conversions are there to claim their own
    registrations and every conversion of the week has all its pairs in both directions (what the fit counts),
    and closes `lookahead` after the week, so that this week's late conversions find registrations landing next
    week (and next week's first conversions are there to claim theirs).
    """
    if lookahead < window:
        raise ValueError(f"lookahead ({lookahead}) must be at least the candidate window ({window})")
    start = datetime(week_start.year, week_start.month, week_start.day, tzinfo=UTC)
    return start - window, start + timedelta(weeks=1) + lookahead


def week_delay_fit(
    conversions: pl.DataFrame, registrations: pl.DataFrame, week_start: date, **window: timedelta
) -> DelayFit:
    """The delay learned from the pairs of the week's own conversions (the inputs may hold more than the week);
    `window`: the `lookahead` and candidate `window` of `matching_window`, its defaults unless given."""
    pairs, week_begins, span = _week_pairs(conversions, registrations, week_start, **window)
    return _fit_week(conversions, registrations, pairs, week_begins, span)


def match_week(conversions: pl.DataFrame, registrations: pl.DataFrame, week_start: date, **options) -> pl.DataFrame:
    """Matches of the conversions created in the week starting week_start (a Monday), by the week's own delay fit
    (or `delay`); the options are those of `match_week_and_fit`.

    The inputs may hold more than the week (e.g. everything); only `matching_window` is used, and only pairs
    whose conversion lies in the week are returned, so weekly partitions never claim a conversion twice.
    """
    return match_week_and_fit(conversions, registrations, week_start, **options)[0]


def match_week_and_fit(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    week_start: date,
    *,
    delay: DelayFit | None = None,
    min_confidence: float = MIN_CONFIDENCE,
    **window: timedelta,
) -> tuple[pl.DataFrame, DelayFit]:
    """`match_week`, and the delay it matched by (the week's own fit unless `delay` is given); pairs below
    `min_confidence` stay unmatched; `window` as in `week_delay_fit`."""
    pairs, week_begins, span = _week_pairs(conversions, registrations, week_start, **window)
    if delay is None:
        delay = _fit_week(conversions, registrations, pairs, week_begins, span)
    in_week = pl.col("created_at").is_between(week_begins, week_begins + timedelta(weeks=1), closed="left")
    return assign(pairs, delay, min_confidence=min_confidence).filter(in_week), delay


def conversions_with_matches(
    conversions: pl.DataFrame, registrations: pl.DataFrame, matches: pl.DataFrame
) -> pl.DataFrame:
    """Every conversion with its match (registration_key, delay, rule, confidence) and the matched registration's
    fields as `registration_<field>`; null when unmatched. `matches` as MATCH_SCHEMA (no partition column)."""
    registration_fields = registrations.rename(
        {name: f"registration_{name}" for name in registrations.columns if name != "registration_key"}
    )
    return (
        conversions.join(matches.drop("created_at"), on="conversion_id", how="left")
        .join(registration_fields, on="registration_key", how="left")
        .sort("created_at", "conversion_id")
    )


def fit_latest_weeks(
    conversions: pl.DataFrame, registrations: pl.DataFrame, weeks: int, *, window: timedelta = CANDIDATE_WINDOW
) -> tuple[DelayFit, list[date]] | None:
    """The delay fitted on the conversions of the latest `weeks` weeks that have any (by `week_start`), and those
    weeks; None when there are no conversions."""
    if conversions.is_empty():
        return None
    latest = sorted(conversions.get_column("week_start").unique())[-weeks:]
    begins = datetime(latest[0].year, latest[0].month, latest[0].day, tzinfo=UTC) - window
    ends = datetime(latest[-1].year, latest[-1].month, latest[-1].day, tzinfo=UTC) + timedelta(weeks=1) + window
    return fit_conversion_delay(
        conversions.filter(pl.col("week_start").is_in(latest)),
        registrations.filter(pl.col("registered_at").is_between(begins, ends, closed="left")),
        window=window,
    ), latest


def match_nearest_in_time(
    conversions: pl.DataFrame, registrations: pl.DataFrame, *, max_delay: timedelta = BASELINE_MAX_DELAY
) -> pl.DataFrame:
    """Baseline that ignores country: one-to-one by shortest delay alone (rule `nearest_in_time`), greedily."""
    pairs = conversions.select("conversion_id", "created_at").join_where(
        registrations.select("registration_key", "registered_at"),
        pl.col("registered_at") >= pl.col("created_at"),
        pl.col("registered_at") <= pl.col("created_at") + max_delay,
    )
    ordered = pairs.with_columns(
        delay_seconds=(pl.col("registered_at") - pl.col("created_at")).dt.total_seconds().cast(pl.Int64)
    ).sort("delay_seconds", "conversion_id", "registration_key")
    used_conversions: set[int] = set()
    used_registrations: set[str] = set()
    chosen: list[int] = []
    for index, (conversion_id, registration_key) in enumerate(
        ordered.select("conversion_id", "registration_key").iter_rows()
    ):
        if conversion_id not in used_conversions and registration_key not in used_registrations:
            used_conversions.add(conversion_id)
            used_registrations.add(registration_key)
            chosen.append(index)
    return (
        ordered[chosen]
        .with_columns(rule=pl.lit("nearest_in_time"), confidence=pl.lit(None, pl.Float64))
        .select(list(MATCH_SCHEMA))
        .cast(MATCH_SCHEMA)
        .sort("conversion_id")
    )


def match_quality(matches: pl.DataFrame, truth: pl.DataFrame) -> MatchQuality:
    """Precision (share of matches that are true) and recall (share of true pairs found).

    An empty matching has precision 1.0 (it claims nothing false); an empty truth has recall 1.0.
    """
    predicted = matches.select("conversion_id", "registration_key").unique()
    expected = truth.select("conversion_id", "registration_key").unique()
    correct = predicted.join(expected, on=["conversion_id", "registration_key"], how="inner").height
    return MatchQuality(
        precision=correct / predicted.height if predicted.height else 1.0,
        recall=correct / expected.height if expected.height else 1.0,
        correct=correct,
        predicted=predicted.height,
        expected=expected.height,
    )


def _week_pairs(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    week_start: date,
    *,
    lookahead: timedelta = DEFAULT_LOOKAHEAD,
    window: timedelta = CANDIDATE_WINDOW,
) -> tuple[pl.DataFrame, datetime, timedelta]:
    """The candidate pairs of the week's matching window, the instant the week begins, and the candidate window."""
    if week_start.weekday() != 0:
        raise ValueError(f"week_start must be a Monday, got {week_start} ({week_start:%A})")
    window_start, window_end = matching_window(week_start, lookahead=lookahead, window=window)
    pairs = candidate_pairs(
        conversions.filter(pl.col("created_at").is_between(window_start, window_end, closed="left")),
        registrations.filter(pl.col("registered_at").is_between(window_start, window_end, closed="left")),
        window,
    )
    return pairs, window_start + window, window


def _fit_week(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    pairs: pl.DataFrame,
    week_begins: datetime,
    window: timedelta,
) -> DelayFit:
    """The delay fitted on the pairs of the week's conversions, against the week's conversions and registrations."""
    return _fit_between(conversions, registrations, pairs, window, week_begins, week_begins + timedelta(weeks=1))


def _fit_between(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    pairs: pl.DataFrame,
    window: timedelta,
    begins: datetime | None = None,
    ends: datetime | None = None,
) -> DelayFit:
    """The delay fitted on the pairs of the conversions in [begins, ends) (unbounded when None), against the
    conversions and registrations of that stretch.

    The registrations seen start somewhere: a conversion less than `window` after the first of them has part of
    its wrong-way lags outside the data, and counting its wrong-way pairs as if they covered the whole window would
    make chance pairs look rarer before a conversion than after it, the excess after being fitted as true pairs
    hours late. So the fit is told which share of the conversions' wrong-way window the data covers.
    """

    def within(column: str) -> pl.Expr:
        inside = pl.lit(True)
        if begins is not None:
            inside &= pl.col(column) >= begins
        if ends is not None:
            inside &= pl.col(column) < ends
        return inside

    fitted = conversions.filter(within("created_at"))
    exposure = 1.0
    if registrations.height and fitted.height:
        seen_from = registrations.get_column("registered_at").min()
        covered = (pl.col("created_at") - seen_from).dt.total_seconds().clip(0, window.total_seconds())
        exposure = fitted.select(covered.mean()).item() / window.total_seconds()
    return fit_delay(
        pairs.filter(within("created_at")),
        window.total_seconds(),
        conversions=fitted.height,
        registrations=registrations.filter(within("registered_at")).height,
        wrong_way_exposure=exposure,
    )


def _solve_components(rows: np.ndarray, columns: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max-weight one-to-one matching per connected component; the chosen edges and each one's max-marginal.

    The max-marginal of a chosen edge is the best total with it minus the best total without it: the log odds of
    the pair against every other way its component could be explained.
    """
    # imported here, not at module load: start-up time of every run
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_rows = int(rows.max()) + 1
    graph = coo_matrix((np.ones(len(rows)), (rows, columns + n_rows)), shape=(n_rows + int(columns.max()) + 1,) * 2)
    _, labels = connected_components(graph, directed=False)
    edge_labels = labels[rows]
    order = np.lexsort((columns, rows, edge_labels))
    boundaries = np.flatnonzero(np.diff(edge_labels[order])) + 1
    chosen: list[np.ndarray] = []
    log_odds: list[np.ndarray] = []
    for component in np.split(order, boundaries):
        if len(component) == 1:
            chosen.append(component)
            log_odds.append(weights[component])
            continue
        local_rows, row_index = np.unique(rows[component], return_inverse=True)
        local_columns, column_index = np.unique(columns[component], return_inverse=True)
        matrix = np.zeros((len(local_rows), len(local_columns)))
        matrix[row_index, column_index] = weights[component] - TIE_BREAK * (row_index + column_index)
        best_rows, best_columns = linear_sum_assignment(matrix, maximize=True)
        taken = matrix[best_rows, best_columns] > 0
        best_rows, best_columns = best_rows[taken], best_columns[taken]
        best = matrix[best_rows, best_columns].sum()
        edge_at = {(r, c): edge for r, c, edge in zip(row_index, column_index, component, strict=True)}
        for r, c in zip(best_rows, best_columns, strict=True):
            without = matrix.copy()
            without[r, c] = 0.0
            other_rows, other_columns = linear_sum_assignment(without, maximize=True)
            chosen.append(np.array([edge_at[(r, c)]]))
            log_odds.append(np.array([best - without[other_rows, other_columns].sum()]))
    return np.concatenate(chosen), np.concatenate(log_odds)
