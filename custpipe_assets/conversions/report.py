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

This module builds and writes the report; the parts live beside it: `report_tables.py` (the numbers),
`report_charts.py` (the figures) and `report_insights.py` (the Markdown).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from custpipe_assets.conversions.delay import DelayFit
from custpipe_assets.conversions.report_charts import delay_chart, fitted_delay_chart, rate_chart, score_chart
from custpipe_assets.conversions.report_insights import insights_markdown
from custpipe_assets.conversions.report_tables import SEGMENT_COLUMNS, fitted_delay_table, matched_scores, report_tables


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
        f"registration_rate_by_{segment}": rate_chart(tables[f"by_{segment}"], segment) for segment in SEGMENT_COLUMNS
    }
    charts["important_score_by_page_category"] = score_chart(matched_scores(conversions, registrations, matches))
    charts["delay_distribution"] = delay_chart(tables["delay_histogram"])
    if delay is not None:
        tables["fitted_delay"] = fitted_delay_table(delay)
        charts["fitted_delay"] = fitted_delay_chart(delay, f"Delay fitted from {delay_label}")
    return ConversionReport(tables=tables, charts=charts, markdown=insights_markdown(tables, delay_label))


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
