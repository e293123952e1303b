"""Customer features, pure transforms: weekly per-customer rollups, their aggregation, and the feature table.

What belongs here: the weekly rollup of one week's online lines and matched store purchases (so the weekly
update never rescans the history), aggregating rollups per customer (in Polars, or in DuckDB with
`aggregate_rollups_sql`), and the per-customer features (RFM, CLV, scaled model inputs). No Dagster.

Money is Decimal(18, 2) from the rollups on, so spend totals add up exactly however they are grouped; a price is
rounded to the cent once, when it enters a rollup. A purchase is one online transaction (one landed line,
whatever its basket size) or one store record.
"""

from __future__ import annotations

import functools
from datetime import date

import numpy as np
import polars as pl

from custpipe_assets.core.arrivals import monday_of

MONEY = pl.Decimal(18, 2)
CLV_LIFETIME_WEEKS = 104  # expected remaining customer lifetime the CLV projects over (two years)

ROLLUP_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date,
        "customer_id": pl.String,
        "online_purchases": pl.Int64,
        "online_spend": MONEY,
        "store_purchases": pl.Int64,
        "store_spend": MONEY,
        "first_purchase_at": pl.Datetime("us"),
        "last_purchase_at": pl.Datetime("us"),
    }
)
AGGREGATED_ROLLUPS_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String,
        "purchases": pl.Int64,
        "total_spend": MONEY,
        "last_purchase_at": pl.Datetime("us"),
        "first_purchase_at": pl.Datetime("us"),
        "active_weeks": pl.Int64,
    }
)
FEATURES_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String,
        "age": pl.Int64,
        "income": pl.Float64,
        "gender_female": pl.Int8,
        "loyalty_score": pl.Float64,
        "purchases": pl.Int64,
        "active_weeks": pl.Int64,
        "total_spend": MONEY,
        "avg_transaction_value": pl.Float64,
        "purchase_frequency": pl.Float64,
        "first_purchase_date": pl.Date,
        "last_purchase_date": pl.Date,
        "recency_days": pl.Int64,
        "observed_weeks": pl.Float64,
        "clv": pl.Float64,
        "age_scaled": pl.Float64,
        "income_scaled": pl.Float64,
    }
)


def weekly_rollup(online_lines: pl.DataFrame, store_matched: pl.DataFrame, week_start: date) -> pl.DataFrame:
    """One row per customer who bought that week, online (silver lines) or in store (matched store purchases).

    online_purchases counts distinct transactions (source_file + line_number), not basket lines.
    Raises ValueError when an input row belongs to another week: a rollup must not mix weeks.
    """
    for name, frame in (("online_lines", online_lines), ("store_matched", store_matched)):
        other_weeks = frame.filter(pl.col("week_start") != week_start).get_column("week_start").unique().sort()
        if other_weeks.len():
            shown = ", ".join(str(week) for week in other_weeks.to_list())
            raise ValueError(f"{name} holds rows of week(s) {shown}, not only {week_start.isoformat()}")
    online = online_lines.group_by("customer_id").agg(
        pl.struct("source_file", "line_number").n_unique().cast(pl.Int64).alias("online_purchases"),
        pl.col("price").cast(MONEY).sum().cast(MONEY).alias("online_spend"),
        pl.col("purchased_at").min().alias("online_first"),
        pl.col("purchased_at").max().alias("online_last"),
    )
    store = store_matched.group_by("customer_id").agg(
        pl.len().cast(pl.Int64).alias("store_purchases"),
        pl.col("amount").cast(MONEY).sum().cast(MONEY).alias("store_spend"),
        pl.col("purchased_at").min().alias("store_first"),
        pl.col("purchased_at").max().alias("store_last"),
    )
    zero = pl.lit(0, MONEY)
    return (
        online.join(store, on="customer_id", how="full", coalesce=True)
        .select(
            pl.lit(week_start, pl.Date).alias("week_start"),
            "customer_id",
            pl.col("online_purchases").fill_null(0),
            pl.col("online_spend").fill_null(zero),
            pl.col("store_purchases").fill_null(0),
            pl.col("store_spend").fill_null(zero),
            pl.min_horizontal("online_first", "store_first").alias("first_purchase_at"),
            pl.max_horizontal("online_last", "store_last").alias("last_purchase_at"),
        )
        .cast(dict(ROLLUP_SCHEMA))
        .sort("customer_id")
    )


def aggregate_rollups(rollups: pl.DataFrame) -> pl.DataFrame:
    """Per customer over any set of weekly rollups: purchases, spend, first/last purchase, active weeks."""
    return (
        rollups.group_by("customer_id")
        .agg(
            (pl.col("online_purchases") + pl.col("store_purchases")).sum().alias("purchases"),
            (pl.col("online_spend") + pl.col("store_spend")).sum().alias("total_spend"),
            pl.col("last_purchase_at").max(),
            pl.col("first_purchase_at").min(),
            pl.len().alias("active_weeks"),  # a rollup has one row per customer and week
        )
        .cast(dict(AGGREGATED_ROLLUPS_SCHEMA))
        .sort("customer_id")
    )


def rollup_weeks_sql(rollups_table: str) -> str:
    """DuckDB SQL giving one row: the first and the last week_start of a rollups table (nulls when empty)."""
    return f"select min(week_start) as first_week, max(week_start) as last_week from {rollups_table}"


def aggregate_rollups_sql(rollups_table: str) -> str:
    """DuckDB SQL giving what `aggregate_rollups` gives, over a rollups table named as SQL (`gold.weekly_rollups`)."""
    return f"""
        select customer_id,
               cast(sum(online_purchases + store_purchases) as bigint) as purchases,
               cast(sum(online_spend + store_spend) as decimal(18, 2)) as total_spend,
               max(last_purchase_at) as last_purchase_at,
               min(first_purchase_at) as first_purchase_at,
               cast(count(*) as bigint) as active_weeks  -- a rollup has one row per customer and week
        from {rollups_table}
        group by customer_id
        order by customer_id
    """


def customer_features(
    rollups_aggregated: pl.DataFrame,
    profiles: pl.DataFrame,
    customers: pl.DataFrame,
    as_of: date,
    *,
    history_start: date | None = None,
) -> pl.DataFrame:
    """gold.customer_features: one row per customer known to profiles, customers or rollups, in FEATURES_SCHEMA order.

    - as_of: the last day counted (the Sunday ending the last complete week); a purchase after it is an error.
    - history_start: first day of the purchase history; default the Monday of the earliest purchase.
    - observed_weeks: days from max(joined_at, history_start) (or the first purchase, if earlier) to as_of,
      inclusive, over 7; at least 1. purchase_frequency = purchases / observed_weeks, i.e. per week of the
      customer's tenure within the history, so a customer who joined last week is not diluted by weeks before.
    - avg_transaction_value = total_spend / purchases.
    - recency_days = as_of - last_purchase_date; a customer who never bought gets the length of their observed
      window in days (as if their last purchase were the day before it), so "never" ranks as least recent.
    - clv = avg_transaction_value x purchase_frequency x CLV_LIFETIME_WEEKS: the customer's weekly revenue so far,
      projected over the expected lifetime (revenue, no margin or discounting).
    - Customers without purchases get zeros for counts, spend, frequency, value and CLV; their purchase dates stay
      null (a date has no zero).
    - Model inputs: age_scaled and income_scaled are sklearn StandardScaler z-scores over all customers; a customer
      missing from profiles gets 0 (the mean) there, gender_female 0, and null age/income. loyalty_score comes
      from customers.csv and is null where that file has no usable score.
    """
    last_purchase = rollups_aggregated.get_column("last_purchase_at").max()
    if last_purchase is not None and last_purchase.date() > as_of:
        raise ValueError(f"rollups hold a purchase on {last_purchase.date()}, after as_of {as_of.isoformat()}")
    if history_start is None:
        first_purchase = rollups_aggregated.get_column("first_purchase_at").min()
        first_day = first_purchase.date() if first_purchase is not None else as_of
        history_start = monday_of(first_day)

    frame = _one_row_per_customer(
        rollups_aggregated=rollups_aggregated,
        profiles=profiles.select("customer_id", "age", "income", "gender_female", "joined_at"),
        customers=customers.select("customer_id", "loyalty_score"),
    )
    first_date, last_date = pl.col("first_purchase_at").dt.date(), pl.col("last_purchase_at").dt.date()
    observed_since = pl.min_horizontal(pl.max_horizontal(pl.col("joined_at"), pl.lit(history_start)), first_date)
    observed_days = ((pl.lit(as_of) - observed_since).dt.total_days() + 1).clip(lower_bound=1)
    frame = (
        frame.with_columns(
            pl.col("purchases").fill_null(0),
            pl.col("active_weeks").fill_null(0),
            pl.col("total_spend").fill_null(pl.lit(0, MONEY)),
            pl.col("gender_female").fill_null(0),
            first_date.alias("first_purchase_date"),
            last_date.alias("last_purchase_date"),
            pl.coalesce((pl.lit(as_of) - last_date).dt.total_days(), observed_days).alias("recency_days"),
            pl.max_horizontal(observed_days / 7, pl.lit(1.0)).alias("observed_weeks"),
        )
        .with_columns(
            pl.when(pl.col("purchases") > 0)
            .then(pl.col("total_spend").cast(pl.Float64) / pl.col("purchases"))
            .otherwise(0.0)
            .alias("avg_transaction_value"),
            (pl.col("purchases") / pl.col("observed_weeks")).alias("purchase_frequency"),
        )
        .with_columns(
            (pl.col("avg_transaction_value") * pl.col("purchase_frequency") * CLV_LIFETIME_WEEKS).alias("clv"),
        )
    )
    frame = frame.with_columns(_standard_scores(frame, ("age", "income")))
    return frame.select(FEATURES_SCHEMA.names()).cast(dict(FEATURES_SCHEMA)).sort("customer_id")


def _one_row_per_customer(**frames: pl.DataFrame) -> pl.DataFrame:
    """Full outer join on customer_id (rows without an id dropped); ValueError naming an input that repeats an id."""
    first, *others = (frame.filter(pl.col("customer_id").is_not_null()) for frame in frames.values())
    try:
        return functools.reduce(
            lambda joined, frame: joined.join(frame, on="customer_id", how="full", coalesce=True, validate="1:1"),
            others,
            first,
        )
    except pl.exceptions.ComputeError:
        repeating = [name for name, frame in frames.items() if frame.get_column("customer_id").is_duplicated().any()]
        raise ValueError(f"{', '.join(repeating)} must hold one row per customer_id") from None


def _standard_scores(frame: pl.DataFrame, columns: tuple[str, ...]) -> list[pl.Series]:
    """`<column>_scaled` z-scores (StandardScaler ignores nulls when fitting); a missing value scores 0, the mean."""
    # imported here, not at module load: start-up time of every run
    from sklearn.preprocessing import StandardScaler

    scores = []
    for column in columns:
        values = frame.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy().reshape(-1, 1)
        if np.isnan(values).all():  # nothing to learn a mean from: everyone sits at the (unknown) mean
            scaled = np.zeros(len(values))
        else:
            scaled = np.nan_to_num(StandardScaler().fit_transform(values)[:, 0], nan=0.0)
        scores.append(pl.Series(f"{column}_scaled", scaled, pl.Float64))
    return scores
