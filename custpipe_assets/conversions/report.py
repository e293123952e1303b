"""The exploratory conversions report: tables, charts and insights computed from the matched data.

What belongs here: turning silver conversions, silver registrations and the matches into
- tables: conversions, share and registration rate (matched conversions / conversions) by page category,
  UI element, device and country; important_score by page category; the conversion -> registration delay of
  the matches, and the delay the matcher fitted from the data (its quantiles, when the caller passes the fit);
- charts: matplotlib figures (Agg canvas, no pyplot state) as PNG bytes, written to a folder on request;
- Markdown: the insights in words and the action steps they suggest, every number and every choice of
  sentence computed from the tables, plus a variant with the charts embedded as base64 images, which is what
  a Dagster asset attaches as metadata.
There is no site traffic in the data, so "conversion rate" here is the share of conversions a segment has, and
"registration rate" how many of its conversions became a broker registration.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from custpipe_assets.conversions.delay import SUMMARY_QUANTILES, DelayFit
from custpipe_assets.conversions.transforms import unmapped_measurement_categories

# segment column -> label of its missing values
SEGMENT_COLUMNS = {
    "page_category": "(unmapped)",
    "ui_element": "(empty)",
    "device": "(unknown)",
    "country": "(unresolved)",
}
MIN_SEGMENT_SHARE = 0.02  # segments smaller than this share of conversions are not named best or worst
MIN_SEGMENT_CONVERSIONS = 30
RATE_GAP_WORTH_ACTING = 0.10  # 10 percentage points between best and worst segment
Z_NOT_CHANCE = 3.0  # two-proportion z-score above which a best-vs-worst gap is not put down to chance
DEVICE_GAP_WORTH_ACTING = 0.05
UNMATCHED_REGISTRATIONS_WORTH_ACTING = 0.05
DELAY_BIN_MINUTES = 2
TOP_SEGMENTS_CHARTED = 15
FITTED_DELAY_COLORS = 32  # the fitted-delay chart is attached to every week of the matches: kept small


@dataclass(frozen=True)
class ConversionReport:
    """Report pieces: named tables, named PNG charts (bytes) and the insights as Markdown."""

    tables: dict[str, pl.DataFrame]
    charts: dict[str, bytes]
    markdown: str


def build_report(
    conversions: pl.DataFrame,
    registrations: pl.DataFrame,
    matches: pl.DataFrame,
    delay: DelayFit | None = None,
    delay_label: str = "the report's weeks",
) -> ConversionReport:
    """Compute tables, charts and insights from silver conversions, silver registrations and the matches; with
    `delay` (the matcher's fit, over `delay_label`) also the fitted delay's quantiles and its chart."""
    tables = report_tables(conversions, registrations, matches)
    charts = {
        f"registration_rate_by_{segment}": _rate_chart(tables[f"by_{segment}"], segment) for segment in SEGMENT_COLUMNS
    }
    charts["important_score_by_page_category"] = _score_chart(_matched_scores(conversions, registrations, matches))
    charts["delay_distribution"] = _delay_chart(tables["delay_histogram"])
    if delay is not None:
        tables["fitted_delay"] = fitted_delay_table(delay)
        charts["fitted_delay"] = fitted_delay_chart(delay, f"Delay fitted from {delay_label}")
    return ConversionReport(tables=tables, charts=charts, markdown=insights_markdown(tables, delay_label))


def report_tables(
    conversions: pl.DataFrame, registrations: pl.DataFrame, matches: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """The report's numbers: overview, rates per segment, scores per page category, delay distribution."""
    flagged = _segments(conversions).with_columns(
        matched=pl.col("conversion_id").is_in(matches.get_column("conversion_id").implode())
    )
    tables = {f"by_{segment}": _rates_by(flagged, segment) for segment in SEGMENT_COLUMNS}
    scores = _matched_scores(conversions, registrations, matches)
    tables["important_score_by_page_category"] = (
        scores.group_by("page_category")
        .agg(
            registrations=pl.len().cast(pl.Int64),
            scored=pl.col("important_score").count().cast(pl.Int64),
            mean_score=pl.col("important_score").mean(),
            median_score=pl.col("important_score").median(),
        )
        .sort(["mean_score", "page_category"], descending=[True, False], nulls_last=True)
    )
    delays = matches.select((pl.col("delay_seconds") / 60).alias("delay_minutes"))
    bin_start = (pl.col("delay_minutes") // DELAY_BIN_MINUTES * DELAY_BIN_MINUTES).cast(pl.Int64)
    tables["delay_histogram"] = (
        delays.group_by(bin_start.alias("from_minute")).agg(registrations=pl.len().cast(pl.Int64)).sort("from_minute")
    )
    tables["delay_summary"] = delays.select(
        matched=pl.len().cast(pl.Int64),
        median_minutes=pl.col("delay_minutes").median(),
        p90_minutes=pl.col("delay_minutes").quantile(0.9, interpolation="linear"),
        p99_minutes=pl.col("delay_minutes").quantile(0.99, interpolation="linear"),
        share_within_30_minutes=(pl.col("delay_minutes") <= 30).mean(),
    )
    tables["overview"] = pl.DataFrame(
        {
            "conversions": [conversions.height],
            "matched_conversions": [matches.height],
            "registration_rate": [matches.height / conversions.height if conversions.height else None],
            "registrations": [registrations.height],
            "unmatched_registrations": [registrations.height - matches.height],
            "unmapped_conversions": [conversions.filter(pl.col("page_category").is_null()).height],
            "unresolved_country_conversions": [conversions.filter(pl.col("country_code").is_null()).height],
        },
        schema_overrides={"registration_rate": pl.Float64},
    )
    tables["unmapped_measurement_categories"] = unmapped_measurement_categories(conversions).rename(
        {"rows": "conversions"}
    )
    return tables


def insights_markdown(tables: dict[str, pl.DataFrame], delay_label: str = "the report's weeks") -> str:
    """Insights and the actions they suggest, in words; each sentence is chosen and filled from the tables."""
    overview = tables["overview"].row(0, named=True)
    insights: list[str] = []
    actions: list[str] = []
    if not overview["conversions"]:
        return "# Conversions report\n\nNo conversions in this period: nothing to report.\n"
    insights.append(
        f"{overview['matched_conversions']:,} of {overview['conversions']:,} conversions "
        f"({_pct(overview['registration_rate'])}) became a broker registration."
    )
    if overview["registrations"]:
        unmatched_share = overview["unmatched_registrations"] / overview["registrations"]
        insights.append(
            f"{overview['unmatched_registrations']:,} of the broker's {overview['registrations']:,} registrations "
            f"({_pct(unmatched_share)}) follow no conversion."
        )
        if unmatched_share > UNMATCHED_REGISTRATIONS_WORTH_ACTING:
            actions.append(
                f"Ask the broker to pass back the site's session id: {_pct(unmatched_share)} of its registrations "
                "cannot be attributed by time and country alone."
            )
    min_size = max(MIN_SEGMENT_CONVERSIONS, MIN_SEGMENT_SHARE * overview["conversions"])
    _segment_insight(
        tables["by_page_category"],
        "page_category",
        "page category",
        min_size,
        insights,
        actions,
        lambda best, worst: f"Steer traffic toward {best} pages and review the path from {worst} pages to the broker.",
    )
    _segment_insight(
        tables["by_ui_element"],
        "ui_element",
        "UI element",
        min_size,
        insights,
        actions,
        lambda best, worst: f"Give {best} more placements and rework or replace {worst}.",
    )
    _device_insight(tables["by_device"], insights, actions)
    _segment_insight(
        tables["by_country"],
        "country",
        "country",
        min_size,
        insights,
        actions,
        lambda best, worst: f"Check the broker's onboarding for {worst} (language, eligibility) against {best}.",
    )
    _empty_ui_insight(tables["by_ui_element"], insights, actions)
    _score_insight(tables["important_score_by_page_category"], insights, actions)
    _delay_insight(tables["delay_summary"], insights)
    if "fitted_delay" in tables:
        _fitted_delay_insight(tables["fitted_delay"], delay_label, insights)
    _quality_insight(overview, tables["unmapped_measurement_categories"], insights, actions)
    lines = ["# Conversions report", "", "## Insights", ""]
    lines += [f"- {sentence}" for sentence in insights]
    lines += ["", "## Action steps", ""]
    numbered = [f"{number}. {action}" for number, action in enumerate(actions, start=1)]
    lines += numbered or ["No segment stands out enough to act on."]
    lines += ["", "## Registration rate by page category", "", _markdown_table(tables["by_page_category"]), ""]
    if "fitted_delay" in tables:
        lines += [
            f"## The delay the matcher fitted from {delay_label}",
            "",
            "Seconds from conversion to registration below which each share of the true pairs falls.",
            "",
            _markdown_table(tables["fitted_delay"]),
            "",
        ]
    return "\n".join(lines)


def fitted_delay_table(delay: DelayFit) -> pl.DataFrame:
    """The fitted delay's quantiles: share of true pairs, seconds, and the same in words."""
    seconds = delay.quantiles_seconds(SUMMARY_QUANTILES)
    return pl.DataFrame(
        {
            "share_of_true_pairs": [f"{round(q * 100)}%" for q in SUMMARY_QUANTILES],
            "within_seconds": [round(float(value), 1) for value in seconds],
            "within": [_duration(float(value)) for value in seconds],
        }
    )


def fitted_delay_chart(delay: DelayFit, title: str) -> bytes:
    """Candidate pairs per bin of ln(1 + delay) against what the fit explains them by: chance pairs (measured from
    the wrong-way pairs) plus true pairs spread by the fitted density; the 10th, 50th and 90th percentiles marked."""
    histogram = delay.histogram
    figure = Figure(figsize=(7, 4), layout="constrained")
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


def write_report(report: ConversionReport, out_dir: Path) -> list[Path]:
    """Write every chart as `<name>.png` and the insights as `report.md` into out_dir; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, png in report.charts.items():
        path = out_dir / f"{name}.png"
        path.write_bytes(png)
        written.append(path)
    markdown_path = out_dir / "report.md"
    markdown_path.write_text(report.markdown, encoding="utf-8")
    return [*written, markdown_path]


def markdown_with_embedded_charts(report: ConversionReport) -> str:
    """The insights followed by every chart as a base64 PNG image, for Dagster's MetadataValue.md."""
    images = [
        f"### {name.replace('_', ' ').capitalize()}\n\n"
        f"![{name}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
        for name, png in report.charts.items()
    ]
    return "\n\n".join([report.markdown.rstrip(), "## Charts", *images]) + "\n"


def _segments(conversions: pl.DataFrame) -> pl.DataFrame:
    return conversions.select(
        "conversion_id",
        pl.col("page_category").fill_null(SEGMENT_COLUMNS["page_category"]),
        pl.col("ui_element").fill_null(SEGMENT_COLUMNS["ui_element"]),
        pl.when(pl.col("is_mobile"))
        .then(pl.lit("mobile"))
        .when(~pl.col("is_mobile"))
        .then(pl.lit("desktop"))
        .otherwise(pl.lit(SEGMENT_COLUMNS["device"]))
        .alias("device"),
        pl.col("country_code").fill_null(SEGMENT_COLUMNS["country"]).alias("country"),
    )


def _rates_by(flagged: pl.DataFrame, segment: str) -> pl.DataFrame:
    total = flagged.height
    return (
        flagged.group_by(segment)
        .agg(conversions=pl.len().cast(pl.Int64), registrations=pl.col("matched").sum().cast(pl.Int64))
        .with_columns(
            share_of_conversions=pl.col("conversions") / total,
            registration_rate=pl.col("registrations") / pl.col("conversions"),
        )
        .select(segment, "conversions", "share_of_conversions", "registrations", "registration_rate")
        .sort(["conversions", segment], descending=[True, False])
    )


def _matched_scores(conversions: pl.DataFrame, registrations: pl.DataFrame, matches: pl.DataFrame) -> pl.DataFrame:
    return (
        matches.select("conversion_id", "registration_key")
        .join(conversions.select("conversion_id", "page_category"), on="conversion_id", how="inner")
        .join(registrations.select("registration_key", "important_score"), on="registration_key", how="inner")
        .with_columns(pl.col("page_category").fill_null(SEGMENT_COLUMNS["page_category"]))
    )


def _best_and_worst(table: pl.DataFrame, segment: str, min_size: float) -> tuple[dict, dict] | None:
    """Highest and lowest registration rate among named segments big enough to matter (ties: by name)."""
    eligible = table.filter(
        (pl.col("conversions") >= min_size) & ~pl.col(segment).is_in(list(SEGMENT_COLUMNS.values()))
    ).sort(["registration_rate", segment], descending=[True, False])
    if eligible.height < 2:
        return None
    return eligible.row(0, named=True), eligible.row(-1, named=True)


def _segment_insight(
    table: pl.DataFrame,
    segment: str,
    label: str,
    min_size: float,
    insights: list[str],
    actions: list[str],
    action: Callable[[str, str], str],
) -> None:
    extremes = _best_and_worst(table, segment, min_size)
    if extremes is None:
        return
    best, worst = extremes
    gap = best["registration_rate"] - worst["registration_rate"]
    insights.append(
        f"By {label}, {_code(best[segment])} registers best ({_pct(best['registration_rate'])} of "
        f"{best['conversions']:,}) and {_code(worst[segment])} worst ({_pct(worst['registration_rate'])} of "
        f"{worst['conversions']:,}): a gap of {gap * 100:.1f} points."
    )
    if gap >= RATE_GAP_WORTH_ACTING and _gap_z_score(best, worst) >= Z_NOT_CHANCE:
        actions.append(action(_code(best[segment]), _code(worst[segment])))


def _gap_z_score(higher: dict, lower: dict) -> float:
    """Two-proportion z-score of the registration-rate gap: small segments' gaps are mostly chance."""
    registered = higher["registrations"] + lower["registrations"]
    converted = higher["conversions"] + lower["conversions"]
    pooled = registered / converted
    spread = math.sqrt(pooled * (1 - pooled) * (1 / higher["conversions"] + 1 / lower["conversions"]))
    gap = higher["registration_rate"] - lower["registration_rate"]
    return gap / spread if spread else 0.0


def _device_insight(table: pl.DataFrame, insights: list[str], actions: list[str]) -> None:
    rates = {row["device"]: row for row in table.iter_rows(named=True)}
    if "mobile" not in rates or "desktop" not in rates:
        return
    mobile, desktop = rates["mobile"], rates["desktop"]
    gap = desktop["registration_rate"] - mobile["registration_rate"]
    insights.append(
        f"Mobile brings {_pct(mobile['share_of_conversions'])} of conversions and registers at "
        f"{_pct(mobile['registration_rate'])}, desktop at {_pct(desktop['registration_rate'])}."
    )
    if abs(gap) >= DEVICE_GAP_WORTH_ACTING and abs(_gap_z_score(desktop, mobile)) >= Z_NOT_CHANCE:
        weaker = "mobile" if gap > 0 else "desktop"
        actions.append(
            f"Audit the {weaker} registration flow on the broker's side: it loses {abs(gap) * 100:.1f} points "
            "against the other device."
        )


def _empty_ui_insight(table: pl.DataFrame, insights: list[str], actions: list[str]) -> None:
    empty = table.filter(pl.col("ui_element") == SEGMENT_COLUMNS["ui_element"])
    if empty.is_empty():
        return
    row = empty.row(0, named=True)
    insights.append(f"{row['conversions']:,} conversions ({_pct(row['share_of_conversions'])}) carry no UI element.")
    actions.append(
        f"Fix the tracking tag that leaves ui_element empty on {_pct(row['share_of_conversions'])} of conversions."
    )


def _score_insight(table: pl.DataFrame, insights: list[str], actions: list[str]) -> None:
    scored = table.filter(
        pl.col("mean_score").is_not_null() & (pl.col("page_category") != SEGMENT_COLUMNS["page_category"])
    )
    if scored.height < 2:
        return
    best, worst = scored.row(0, named=True), scored.row(-1, named=True)
    insights.append(
        f"Registrations from {_code(best['page_category'])} pages score highest on important_score "
        f"(mean {best['mean_score']:.1f}), from {_code(worst['page_category'])} lowest "
        f"(mean {worst['mean_score']:.1f})."
    )
    if best["mean_score"] - worst["mean_score"] >= 1:
        actions.append(
            f"Weigh {_code(best['page_category'])} pages higher than their volume suggests: their registrations "
            f"are worth more to the broker ({best['mean_score'] - worst['mean_score']:.1f} points above "
            f"{_code(worst['page_category'])})."
        )


def _delay_insight(table: pl.DataFrame, insights: list[str]) -> None:
    summary = table.row(0, named=True)
    if not summary["matched"]:
        return
    insights.append(
        f"Registrations follow their conversion after {summary['median_minutes']:.1f} minutes (median); "
        f"90% within {summary['p90_minutes']:.1f}, {_pct(summary['share_within_30_minutes'])} within 30."
    )


def _fitted_delay_insight(table: pl.DataFrame, delay_label: str, insights: list[str]) -> None:
    within = dict(zip(table["share_of_true_pairs"], table["within"], strict=True))
    insights.append(
        f"The delay the matcher learned from {delay_label}: half of the true pairs register within {within['50%']}, "
        f"10% within {within['10%']}, 90% within {within['90%']} (it is fitted from the data, not assumed)."
    )


def _duration(seconds: float) -> str:
    """1.5 s, 4.2 min, 2.0 h: a delay in the unit a person would say it in."""
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _quality_insight(overview: dict, unmapped: pl.DataFrame, insights: list[str], actions: list[str]) -> None:
    if overview["unmapped_conversions"]:
        top = ", ".join(
            f"{_code(row['measurement_category'])} ({row['conversions']})"
            for row in unmapped.head(3).iter_rows(named=True)
        )
        insights.append(
            f"{overview['unmapped_conversions']:,} conversions have a measurement category outside the mapping; "
            f"most common: {top}."
        )
        actions.append(
            "Extend the page-category mapping for the legitimate categories above and find where the junk ones "
            "are emitted."
        )
    if overview["unresolved_country_conversions"]:
        insights.append(
            f"{overview['unresolved_country_conversions']:,} conversions have a country no ISO code fits; "
            "they can only be matched by time."
        )


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


def _code(value: object) -> str:
    """Render a data value inline and inert: junk like `<script>` must not become markup."""
    return "`" + str(value).replace("`", "'") + "`"


def _markdown_table(frame: pl.DataFrame) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def _png(figure: Figure, colors: int | None = None) -> bytes:
    """The figure as PNG bytes; with `colors`, reduced to that many (a quarter of the size, for charts attached to
    every weekly partition)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    if colors is None:
        return buffer.getvalue()
    reduced = io.BytesIO()
    Image.open(buffer).convert("RGB").quantize(colors).save(reduced, format="PNG", optimize=True)
    return reduced.getvalue()


def _rate_chart(table: pl.DataFrame, segment: str) -> bytes:
    shown = table.head(TOP_SEGMENTS_CHARTED).reverse()
    figure = Figure(figsize=(7, 0.35 * shown.height + 1.4), layout="constrained")
    axes = figure.add_subplot()
    labels = [f"{value} (n={count})" for value, count in zip(shown[segment], shown["conversions"], strict=True)]
    axes.barh(labels, shown["registration_rate"].to_list(), color="#3b75af")
    axes.set_xlim(0, 1)
    axes.set_xlabel("registration rate (matched conversions / conversions)")
    title_suffix = f" (top {TOP_SEGMENTS_CHARTED} by volume)" if table.height > TOP_SEGMENTS_CHARTED else ""
    axes.set_title(f"Registration rate by {segment.replace('_', ' ')}{title_suffix}")
    return _png(figure)


def _score_chart(scores: pl.DataFrame) -> bytes:
    per_category = (
        scores.drop_nulls("important_score")
        .group_by("page_category")
        .agg(pl.col("important_score"))
        .sort("page_category")
    )
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    if per_category.height:
        axes.boxplot(per_category["important_score"].to_list(), tick_labels=per_category["page_category"].to_list())
        axes.tick_params(axis="x", labelrotation=20)
    axes.set_ylabel("important_score")
    axes.set_title("important_score of matched registrations by page category")
    return _png(figure)


def _delay_chart(histogram: pl.DataFrame) -> bytes:
    figure = Figure(figsize=(7, 4), layout="constrained")
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
