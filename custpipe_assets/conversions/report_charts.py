"""The conversions report's charts: matplotlib figures on an Agg canvas (no pyplot state), as PNG bytes; the
fitted-delay chart reduced to a few colours, as it is attached to every weekly partition.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from PIL import Image

from custpipe_assets.conversions.delay import DelayFit
from custpipe_assets.conversions.report_tables import DELAY_BIN_MINUTES

# matplotlib is imported where a chart is drawn, not at module load: start-up time of every run
if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_SEGMENTS_CHARTED = 15
FITTED_DELAY_COLORS = 32  # the fitted-delay chart is attached to every week of the matches: kept small


def fitted_delay_chart(delay: DelayFit, title: str) -> bytes:
    """Candidate pairs per bin of ln(1 + delay) against what the fit explains them by: chance pairs (measured from
    the wrong-way pairs) plus true pairs spread by the fitted density; the 10th, 50th and 90th percentiles marked."""
    histogram = delay.histogram
    figure = _figure(figsize=(7, 4))
    axes = figure.add_subplot()
    if histogram.height:
        lower = np.log1p(histogram["from_seconds"].to_numpy())
        upper = np.log1p(histogram["to_seconds"].to_numpy())
        grid = np.concatenate([lower, upper[-1:]])
        cdf = np.concatenate([[0.0], np.cumsum(np.diff(grid) * delay.density_in_log_delay((grid[1:] + grid[:-1]) / 2))])
        true_pairs = delay.total_true_pairs * np.diff(cdf)
        chance = histogram["expected_chance_pairs"].to_numpy()
        axes.bar(
            lower,
            histogram["candidate_pairs"].to_list(),
            width=upper - lower,
            align="edge",
            color="#c9d6e3",
            label="candidate pairs (registration after the conversion)",
        )
        middle = (lower + upper) / 2
        axes.plot(middle, chance, color="#888888", linestyle="--", label="chance pairs (from wrong-way pairs)")
        axes.plot(middle, chance + true_pairs, color="#3b75af", label="fit: chance + true pairs")
        for q in (0.1, 0.5, 0.9):
            axes.axvline(math.log1p(delay.quantile_seconds(q)), color="#d62728", linewidth=0.8, linestyle=":")
        axes.set_yscale("symlog", linthresh=1)
        ticks = {0: "0", 1: "1 s", 10: "10 s", 60: "1 min", 600: "10 min", 3600: "1 h", 6 * 3600: "6 h"}
        shown = {tick: label for tick, label in ticks.items() if tick <= delay.window_seconds}
        axes.set_xticks([math.log1p(tick) for tick in shown], list(shown.values()))
        axes.legend(loc="upper right", fontsize=8)
    axes.set_xlabel("delay from conversion to registration (log scale; dotted: 10th, 50th, 90th percentile)")
    axes.set_ylabel("pairs per bin")
    axes.set_title(title)
    return _png(figure, colors=FITTED_DELAY_COLORS)


def _figure(**options) -> Figure:
    """An empty figure with the constrained layout."""
    # imported here, not at module load: start-up time of every run
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **options)


def _png(figure: Figure, colors: int | None = None) -> bytes:
    """The figure as PNG bytes; with `colors`, reduced to that many (a quarter of the size, for charts attached to
    every weekly partition)."""
    # imported here, not at module load: start-up time of every run
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    if colors is None:
        return buffer.getvalue()
    reduced = io.BytesIO()
    Image.open(buffer).convert("RGB").quantize(colors).save(reduced, format="PNG", optimize=True)
    return reduced.getvalue()


def rate_chart(table: pl.DataFrame, segment: str) -> bytes:
    shown = table.head(TOP_SEGMENTS_CHARTED).reverse()
    figure = _figure(figsize=(7, 0.35 * shown.height + 1.4))
    axes = figure.add_subplot()
    labels = [f"{value} (n={count})" for value, count in zip(shown[segment], shown["conversions"], strict=True)]
    axes.barh(labels, shown["registration_rate"].to_list(), color="#3b75af")
    axes.set_xlim(0, 1)
    axes.set_xlabel("registration rate (matched conversions / conversions)")
    title_suffix = f" (top {TOP_SEGMENTS_CHARTED} by volume)" if table.height > TOP_SEGMENTS_CHARTED else ""
    axes.set_title(f"Registration rate by {segment.replace('_', ' ')}{title_suffix}")
    return _png(figure)


def score_chart(scores: pl.DataFrame) -> bytes:
    per_category = (
        scores.drop_nulls("important_score")
        .group_by("page_category")
        .agg(pl.col("important_score"))
        .sort("page_category")
    )
    figure = _figure(figsize=(7, 4))
    axes = figure.add_subplot()
    if per_category.height:
        axes.boxplot(per_category["important_score"].to_list(), tick_labels=per_category["page_category"].to_list())
        axes.tick_params(axis="x", labelrotation=20)
    axes.set_ylabel("important_score")
    axes.set_title("important_score of matched registrations by page category")
    return _png(figure)


def delay_chart(histogram: pl.DataFrame) -> bytes:
    figure = _figure(figsize=(7, 4))
    axes = figure.add_subplot()
    axes.bar(
        histogram["from_minute"].to_list(),
        histogram["registrations"].to_list(),
        width=DELAY_BIN_MINUTES,
        align="edge",
        color="#3b75af",
    )
    axes.set_xlabel("minutes from conversion to registration")
    axes.set_ylabel("matched registrations")
    axes.set_title("Time from conversion to registration")
    return _png(figure)
