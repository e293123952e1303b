"""Gold for the product-views domain (Polars, no Dagster): views and purchases per local minute, the grain the CTR
API sums into buckets of any size."""

from __future__ import annotations

import polars as pl

from custpipe_assets.product_views.schemas import GOLD_CTR_MINUTE_SCHEMA


def build_gold_ctr_per_minute(views: pl.DataFrame, purchases: pl.DataFrame) -> pl.DataFrame:
    """Views and purchases per local minute, platform and product: the grain every CTR bucket is summed from.

    `views` counts product views; `purchases` counts distinct orders containing the product (quantity and
    repeated lines of one order count once). Rows exist where either is non-zero. Minutes are floored, so an
    event at 10:04:59.999 belongs to 10:04 and one at 10:05:00 to 10:05.
    """
    keys = ["minute_local", "platform", "product"]
    minute = pl.col("event_time_local").dt.truncate("1m").alias("minute_local")
    view_counts = views.group_by(minute, "platform", "product").agg(pl.len().cast(pl.Int64).alias("views"))
    purchase_counts = purchases.group_by(minute, "platform", "product").agg(
        pl.col("order_id").n_unique().cast(pl.Int64).alias("purchases")
    )
    return (
        view_counts.join(purchase_counts, on=keys, how="full", coalesce=True)
        .with_columns(pl.col("views", "purchases").fill_null(0))
        .select(GOLD_CTR_MINUTE_SCHEMA.names())
        .cast(dict(GOLD_CTR_MINUTE_SCHEMA))
        .sort(keys)
    )
