"""Customer segments, pure transforms: KMeans over the feature table, named segments, diagnostics, segment metrics.

What belongs here: choosing and weighting the model inputs, fitting and applying the (picklable) segment model,
naming segments from their centroids, the fit diagnostics (inertia, silhouette, sizes, a PNG plot), and the
metrics marketing reads per segment. No Dagster.

Model inputs (MODEL_INPUTS), each standardised over the customers the model is fitted on, then weighted:
behaviour at weight 1 - log1p(total_spend), log1p(purchase_frequency), log1p(avg_transaction_value) (logs,
because money and counts are heavy-tailed) and recency_days as it is (lapsing is a matter of weeks without a
purchase; a log would squeeze "a month ago" against "two months ago") - and demographics at weight
DEMOGRAPHIC_WEIGHT - age_scaled, income_scaled, gender_female - so they only tip customers whose behaviour sits
between segments.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from custpipe_assets.segmentation.features import MONEY

# sklearn and matplotlib are imported where they are used, not at module load: start-up time of every run
if TYPE_CHECKING:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

DEMOGRAPHIC_WEIGHT = 0.25
MODEL_INPUTS: dict[str, tuple[pl.Expr, float]] = {
    "log_total_spend": (pl.col("total_spend").cast(pl.Float64).log1p(), 1.0),
    "log_purchase_frequency": (pl.col("purchase_frequency").log1p(), 1.0),
    "log_avg_transaction_value": (pl.col("avg_transaction_value").log1p(), 1.0),
    "recency_days": (pl.col("recency_days").cast(pl.Float64), 1.0),
    "age_scaled": (pl.col("age_scaled"), DEMOGRAPHIC_WEIGHT),
    "income_scaled": (pl.col("income_scaled"), DEMOGRAPHIC_WEIGHT),
    "gender_female": (pl.col("gender_female").cast(pl.Float64), DEMOGRAPHIC_WEIGHT),
}
FIT_SAMPLE = 200_000  # KMeans is fitted on at most this many customers (a seeded sample), then applied to all
SILHOUETTE_SAMPLE = 5_000  # silhouette costs O(n^2): scored on a seeded sample
PLOT_SAMPLE = 5_000
N_INIT = 4

SEGMENTS_SCHEMA = pl.Schema({"customer_id": pl.String, "segment_id": pl.Int32, "segment_name": pl.String})
SEGMENT_METRICS_SCHEMA = pl.Schema(
    {
        "segment_id": pl.Int32,
        "segment_name": pl.String,
        "customers": pl.Int64,
        "total_spend": MONEY,
        "avg_clv": pl.Float64,
        "customer_share": pl.Float64,
        "spend_share": pl.Float64,
    }
)
# gold.segment_model: the fitted model pickled in one row, beside the settings it was fitted with and its scores
SEGMENT_MODEL_SCHEMA = pl.Schema(
    {
        "n_clusters": pl.Int64,
        "random_state": pl.Int64,
        "inertia": pl.Float64,
        "silhouette": pl.Float64,
        "model_pickle": pl.Binary,
    }
)
CENTROID_COLUMNS = ("total_spend", "purchase_frequency", "avg_transaction_value", "recency_days", "clv")


@dataclass(frozen=True)
class SegmentModel:
    """A fitted segmentation: everything needed to assign new feature rows, plus the fit's diagnostics.

    Segment ids are ordered by the segment's mean total spend, highest first, so id 0 is the most valuable
    segment whatever order KMeans found the clusters in.
    """

    scaler: StandardScaler
    kmeans: KMeans
    segment_of_cluster: tuple[int, ...]  # KMeans label -> segment_id
    segment_names: tuple[str, ...]  # by segment_id
    profile: pl.DataFrame  # per segment: id, name, customers and mean CENTROID_COLUMNS (the naming evidence)
    inertia: float  # sum of squared distances to the assigned centroid, in weighted model-input units, all customers
    silhouette: float  # NaN when undefined (one segment, or fewer customers than segments + 1)
    sizes: dict[str, int]  # customers per segment name in the fit
    plot_png: bytes


def fit_segments(features: pl.DataFrame, n_clusters: int = 4, random_state: int = 42) -> SegmentModel:
    """Fit KMeans on the weighted MODEL_INPUTS of the feature table and name the segments from their centroids."""
    if not 1 <= n_clusters <= features.height:
        customers = features.height
        raise ValueError(f"n_clusters must be between 1 and the number of customers, {customers}; got {n_clusters}")
    # imported here, not at module load: start-up time of every run
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(random_state)
    raw_inputs = _raw_inputs(features)
    scaler = StandardScaler().fit(raw_inputs)
    matrix = _weighted(scaler, raw_inputs)
    fit_rows = _sample(rng, features.height, FIT_SAMPLE)
    kmeans = KMeans(n_clusters=n_clusters, n_init=N_INIT, random_state=random_state).fit(matrix[fit_rows])
    labels = kmeans.predict(matrix)

    by_cluster = (
        features.select(*(pl.col(column).cast(pl.Float64) for column in CENTROID_COLUMNS))
        .with_columns(pl.Series("cluster", labels))
        .group_by("cluster")
        .agg(pl.len().alias("customers"), *(pl.col(column).mean() for column in CENTROID_COLUMNS))
    )
    # a cluster that no customer fell into (possible when fitted on a sample) still needs an id and a name
    by_cluster = (
        pl.DataFrame({"cluster": np.arange(n_clusters, dtype=labels.dtype)})
        .join(by_cluster, on="cluster", how="left")
        .with_columns(pl.col("customers").fill_null(0))
        .sort(pl.col("total_spend").fill_null(-np.inf), "cluster", descending=[True, False])
        .with_row_index("segment_id")
    )
    segment_of_cluster = np.empty(n_clusters, dtype=np.int64)
    segment_of_cluster[by_cluster.get_column("cluster").to_numpy()] = by_cluster.get_column("segment_id").to_numpy()
    names = name_segments(by_cluster)
    profile = by_cluster.select(
        pl.col("segment_id").cast(pl.Int32), pl.Series("segment_name", names), "customers", *CENTROID_COLUMNS
    )
    segment_ids = segment_of_cluster[labels]
    return SegmentModel(
        scaler=scaler,
        kmeans=kmeans,
        segment_of_cluster=tuple(int(segment) for segment in segment_of_cluster),
        segment_names=tuple(names),
        profile=profile,
        inertia=float(((matrix - kmeans.cluster_centers_[labels]) ** 2).sum()),
        silhouette=_silhouette(matrix, segment_ids, rng),
        sizes=dict(zip(names, profile.get_column("customers").to_list(), strict=True)),
        plot_png=_plot(features, segment_ids, names, rng),
    )


def name_segments(profile: pl.DataFrame) -> list[str]:
    """A unique name per row of a segment profile (rows in segment_id order), from its mean behaviour.

    With k segments, up to k - 1 roles are handed out greedily, each to the not-yet-named segment that fits it
    best: `dormant` (highest mean recency_days), `high-value` (highest mean clv), `frequent
    shoppers` (highest mean purchase_frequency). The rest are `occasional buyers`, numbered by segment id when
    there are several; a single segment is `all customers`.
    """
    count = profile.height
    if count == 1:
        return ["all customers"]
    names: list[str | None] = [None] * count
    roles = (("dormant", "recency_days"), ("high-value", "clv"), ("frequent shoppers", "purchase_frequency"))
    for name, column in roles[: count - 1]:
        values = profile.get_column(column).fill_null(-np.inf).to_numpy()
        unnamed = [row for row in range(count) if names[row] is None]
        names[max(unnamed, key=lambda row: values[row])] = name
    rest = [row for row in range(count) if names[row] is None]
    for number, row in enumerate(rest, start=1):
        names[row] = "occasional buyers" if len(rest) == 1 else f"occasional buyers {number}"
    return [str(name) for name in names]


def assign_segments(model: SegmentModel, features: pl.DataFrame) -> pl.DataFrame:
    """gold.customer_segments: customer_id, segment_id, segment_name for every row of the feature table."""
    labels = model.kmeans.predict(_weighted(model.scaler, _raw_inputs(features)))
    segment_ids = np.asarray(model.segment_of_cluster, dtype=np.int64)[labels]
    return (
        pl.DataFrame(
            {
                "customer_id": features.get_column("customer_id"),
                "segment_id": segment_ids,
                "segment_name": np.asarray(model.segment_names, dtype=object)[segment_ids],
            }
        )
        .cast(dict(SEGMENTS_SCHEMA))
        .sort("customer_id")
    )


def segment_metrics(segments: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """gold.segment_metrics: per segment, customers, total spend (exact), average CLV, share of customers and spend.

    Raises ValueError unless segments and features hold the same customers once each, so the metrics always
    add up to the feature table.
    """
    try:
        joined = features.select("customer_id", "total_spend", "clv", pl.lit(True).alias("in_features")).join(
            segments.select("customer_id", "segment_id", "segment_name", pl.lit(True).alias("in_segments")),
            on="customer_id",
            how="full",
            coalesce=True,
            validate="1:1",
        )
    except pl.exceptions.ComputeError:
        raise ValueError("segments and features must each hold one row per customer_id") from None
    unmatched = joined.filter(pl.col("in_features").is_null() | pl.col("in_segments").is_null())
    if unmatched.height:
        sample = unmatched.get_column("customer_id").head(5).to_list()
        raise ValueError(f"{unmatched.height} customer(s) are in only one of segments and features, e.g. {sample}")
    all_customers = joined.height
    all_spend = joined.get_column("total_spend").cast(pl.Float64).sum()
    return (
        joined.group_by("segment_id", "segment_name")
        .agg(
            pl.len().alias("customers"),
            pl.col("total_spend").sum().cast(MONEY),
            pl.col("clv").mean().alias("avg_clv"),
        )
        .with_columns(
            (pl.col("customers") / all_customers).alias("customer_share"),
            (pl.col("total_spend").cast(pl.Float64) / all_spend if all_spend else pl.lit(0.0)).alias("spend_share"),
        )
        .cast(dict(SEGMENT_METRICS_SCHEMA))
        .sort("segment_id")
    )


def _raw_inputs(features: pl.DataFrame) -> np.ndarray:
    return features.select(expression.alias(name) for name, (expression, _) in MODEL_INPUTS.items()).to_numpy()


def _weighted(scaler: StandardScaler, raw_inputs: np.ndarray) -> np.ndarray:
    weights = np.array([weight for _, weight in MODEL_INPUTS.values()])
    return scaler.transform(raw_inputs) * weights


def _sample(rng: np.random.Generator, population: int, size: int) -> np.ndarray:
    """Row indices of a seeded sample without replacement, in row order; every row when population <= size."""
    if population <= size:
        return np.arange(population)
    return np.sort(rng.choice(population, size=size, replace=False))


def _silhouette(matrix: np.ndarray, segment_ids: np.ndarray, rng: np.random.Generator) -> float:
    # imported here, not at module load: start-up time of every run
    from sklearn.metrics import silhouette_score

    rows = _sample(rng, len(matrix), SILHOUETTE_SAMPLE)
    if not 2 <= len(np.unique(segment_ids[rows])) <= len(rows) - 1:
        return float("nan")
    return float(silhouette_score(matrix[rows], segment_ids[rows]))


def _plot(features: pl.DataFrame, segment_ids: np.ndarray, names: list[str], rng: np.random.Generator) -> bytes:
    """PNG: spend against frequency and against recency, one colour per segment (on a seeded sample of customers)."""
    # imported here, not at module load: start-up time of every run
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = _sample(rng, features.height, PLOT_SAMPLE)
    spend = features.get_column("total_spend").cast(pl.Float64).to_numpy()[rows]
    frequency = features.get_column("purchase_frequency").to_numpy()[rows]
    recency = features.get_column("recency_days").to_numpy()[rows]
    shown = segment_ids[rows]
    figure = Figure(figsize=(11, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    for segment_id, name in enumerate(names):
        members = shown == segment_id
        for axes, x_values in ((left, frequency), (right, recency)):
            axes.scatter(x_values[members], spend[members], s=8, alpha=0.6, label=name)
    for axes, label in ((left, "purchases per week"), (right, "days since last purchase")):
        axes.set_xlabel(label)
        axes.set_ylabel("total spend")
        axes.set_yscale("symlog", linthresh=10)
    left.set_xscale("symlog", linthresh=1)
    right.legend(title="segment", loc="best", fontsize="small")
    figure.suptitle(f"Customer segments (k={len(names)}, {features.height:,} customers)")
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.88, wspace=0.22)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
