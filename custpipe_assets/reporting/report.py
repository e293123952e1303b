"""The Monday asset-check report: the latest result of every check, as Markdown, JSON and one self-contained HTML page.

Check results come only from `check_results.latest_check_results`; this module orders and renders them: summary
counts first, then one table per asset (assets with failures first, failing checks first), then, for every check
that did not pass, which rows failed and why (the samples the check attached). Output is a pure function of the
instance's check results, so the same instance gives byte-identical files.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from pathlib import Path

import dagster as dg
from markdown_it import MarkdownIt

from custpipe_assets.core.settings import Settings
from custpipe_assets.reporting.check_results import FAILED, PASSED, WARNING, CheckResultRecord, latest_check_results

DEFAULT_OUT_DIR = "data/reports"
TITLE = "Asset check report"
NO_RESULTS = "No asset check has been evaluated in this Dagster instance yet: run `custpipe run` (or `make run`) first."

_STATUS_RANK = {FAILED: 0, WARNING: 1, PASSED: 2}
_STATUS_LABEL = {FAILED: "FAILED", WARNING: "WARNING", PASSED: "passed"}
# markdown metadata shown as the "why" under a failing check, in this order
_KNOWN_SAMPLES = {
    "sample_failing_rows": "Failing rows (sample)",
    "failures_by_check": "Failures by rule",
    "sample_failure_cases": "Failure cases (sample)",
}
_IN_THE_TABLE = {"failure_count", "rows_checked"}
# raw HTML in a sample (a customer name like "<b>") must show as text, never as markup
_MARKDOWN = MarkdownIt("js-default")


@dataclass(frozen=True)
class ReportPaths:
    markdown: Path
    json: Path
    html: Path


@dataclass(frozen=True)
class Summary:
    passed: int
    failed: int
    warnings: int
    latest_evaluation: str | None

    @classmethod
    def of(cls, records: Sequence[CheckResultRecord]) -> Summary:
        statuses = [record.status for record in records]
        latest = max((record.timestamp for record in records), default=None)
        return cls(
            statuses.count(PASSED), statuses.count(FAILED), statuses.count(WARNING), _when(latest) if latest else None
        )


def write_check_report(instance: dg.DagsterInstance, out_dir: Path) -> ReportPaths:
    """Write check_report.md, .json and .html into `out_dir` (created if missing) from the instance's latest results."""
    records = ordered(latest_check_results(instance))
    summary = Summary.of(records)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(out_dir / "check_report.md", out_dir / "check_report.json", out_dir / "check_report.html")
    paths.markdown.write_text(render_markdown(records, summary), encoding="utf-8")
    paths.json.write_text(render_json(records, summary), encoding="utf-8")
    paths.html.write_text(render_html(records, summary), encoding="utf-8")
    return paths


def ordered(records: Sequence[CheckResultRecord]) -> list[CheckResultRecord]:
    """Assets with the worst result first, and within an asset failed, then warning, then passed checks."""
    worst: dict[str, int] = {}
    for record in records:
        worst[record.asset_key] = min(worst.get(record.asset_key, _STATUS_RANK[PASSED]), _STATUS_RANK[record.status])
    return sorted(
        records,
        key=lambda r: (
            worst[r.asset_key],
            r.asset_key,
            _STATUS_RANK[r.status],
            r.check_name,
            r.partition or "",
            r.covered_partitions,
        ),
    )


def partition_label(record: CheckResultRecord) -> str:
    """One partition, `first … last (n partitions)` for a single-run range, or `—` for an unpartitioned check."""
    if record.partition is not None:
        return record.partition
    covered = record.covered_partitions
    if not covered:
        return "—"
    if len(covered) == 1:
        return covered[0]
    return f"{covered[0]} … {covered[-1]} ({len(covered)} partitions)"


def render_json(records: Sequence[CheckResultRecord], summary: Summary) -> str:
    results = [
        {
            "asset_key": record.asset_key,
            "check_name": record.check_name,
            "status": record.status,
            "partition": record.partition,
            "covered_partitions": list(record.covered_partitions),
            "passed": record.passed,
            "severity": record.severity,
            "failure_count": record.failure_count,
            "sample_failing_rows": record.sample_failing_rows,
            "description": record.description,
            "metadata": record.metadata,
            "run_id": record.run_id,
            "timestamp": record.timestamp.isoformat(),
        }
        for record in records
    ]
    document = {"summary": {"results": len(records), **vars(summary)}, "results": results}
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render_markdown(records: Sequence[CheckResultRecord], summary: Summary) -> str:
    lines = [f"# {TITLE}", ""]
    if not records:
        return "\n".join([*lines, NO_RESULTS, ""])
    lines += [
        f"Latest evaluation: {summary.latest_evaluation}. One row per check and partition, its latest result.",
        "",
        "| passed | failed | warnings |",
        "|---|---|---|",
        f"| {summary.passed} | {summary.failed} | {summary.warnings} |",
    ]
    for asset_key, asset_records in groupby(records, key=lambda r: r.asset_key):
        asset_records = list(asset_records)
        lines += [
            "",
            f"## {asset_key}",
            "",
            "| status | check | partition | failures | rows checked | evaluated | run |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(_md_cell(cell) for cell in _row(record)) + " |" for record in asset_records]
        for record in asset_records:
            if not record.passed:
                lines += ["", *_markdown_details(record)]
    return "\n".join(lines) + "\n"


def _markdown_details(record: CheckResultRecord) -> list[str]:
    lines = [f"### {_detail_title(record)}", "", _failure_sentence(record)]
    if record.description:
        lines += ["", record.description]
    if extra := _other_metadata(record):
        lines += ["", extra]
    for heading, sample in _samples(record):
        lines += ["", f"**{heading}**", "", sample]
    return lines


def render_html(records: Sequence[CheckResultRecord], summary: Summary) -> str:
    body = [f"<h1>{TITLE}</h1>"]
    if not records:
        body.append(f'<p class="empty">{_inline_html(NO_RESULTS)}</p>')
    else:
        body += [
            f'<p class="asof">Latest evaluation: {html.escape(summary.latest_evaluation or "")}. '
            "One row per check and partition, its latest result.</p>",
            '<div class="summary">',
            f'<div class="count passed"><b>{summary.passed}</b> passed</div>',
            f'<div class="count failed"><b>{summary.failed}</b> failed</div>',
            f'<div class="count warning"><b>{summary.warnings}</b> warnings</div>',
            "</div>",
        ]
        anchors = {id(record): f"result-{number}" for number, record in enumerate(records, start=1)}
        for asset_key, asset_records in groupby(records, key=lambda r: r.asset_key):
            asset_records = list(asset_records)
            body += [
                f"<section><h2>{html.escape(asset_key)}</h2>",
                "<table>",
                "<thead><tr><th>status</th><th>check</th><th>partition</th><th>failures</th>"
                "<th>rows checked</th><th>evaluated</th><th>run</th></tr></thead>",
                "<tbody>",
            ]
            for record in asset_records:
                cells = [html.escape(cell) for cell in _row(record)]
                if not record.passed:
                    cells[1] = f'<a href="#{anchors[id(record)]}">{cells[1]}</a>'
                body.append(f'<tr class="{record.status}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
            body += ["</tbody></table>"]
            body += [_html_details(record, anchors[id(record)]) for record in asset_records if not record.passed]
            body.append("</section>")
    return _HTML_PAGE.format(title=TITLE, style=_STYLE, body="\n".join(body))


def _html_details(record: CheckResultRecord, anchor: str) -> str:
    parts = [
        f'<div class="detail {record.status}" id="{anchor}">',
        f"<h3>{html.escape(_detail_title(record))}</h3>",
        f"<p>{html.escape(_failure_sentence(record))}</p>",
    ]
    if record.description:
        parts.append(f'<p class="description">{html.escape(record.description)}</p>')
    if extra := _other_metadata(record):
        parts.append(f'<p class="metadata">{html.escape(extra)}</p>')
    for heading, sample in _samples(record):
        parts += [f"<h4>{html.escape(heading)}</h4>", f'<div class="sample">{_MARKDOWN.render(sample)}</div>']
    parts.append("</div>")
    return "\n".join(parts)


def _row(record: CheckResultRecord) -> list[str]:
    rows_checked = record.metadata.get("rows_checked")
    return [
        _STATUS_LABEL[record.status],
        record.check_name,
        partition_label(record),
        "" if record.failure_count is None else str(record.failure_count),
        "" if rows_checked is None else str(rows_checked),
        _when(record.timestamp),
        record.run_id[:8],
    ]


def _detail_title(record: CheckResultRecord) -> str:
    title = f"{_STATUS_LABEL[record.status]}: {record.asset_key} · {record.check_name}"
    return (
        title if record.partition is None and not record.covered_partitions else f"{title} · {partition_label(record)}"
    )


def _failure_sentence(record: CheckResultRecord) -> str:
    count = record.failure_count
    failures = "an unknown number of failures" if count is None else f"{count} failure{'' if count == 1 else 's'}"
    return f"{record.severity} check, {failures}; run {record.run_id} at {_when(record.timestamp)}."


def _other_metadata(record: CheckResultRecord) -> str:
    """One-line metadata not shown in the table or as a sample (e.g. rows_in, rows_out), as `name: value` pairs."""
    pairs = [
        f"{name}: {json.dumps(value) if isinstance(value, dict | list) else value}"
        for name, value in record.metadata.items()
        if name not in _IN_THE_TABLE | _KNOWN_SAMPLES.keys() and not _is_markdown_block(value)
    ]
    return " · ".join(pairs)


def _samples(record: CheckResultRecord) -> list[tuple[str, str]]:
    """(heading, markdown) for what the check attached to explain a failure: the known samples first, in a fixed
    order, then any other multi-line text under its own name; the checks' placeholder `none` is left out."""
    known = [(heading, record.metadata.get(name)) for name, heading in _KNOWN_SAMPLES.items()]
    others = [
        (name, value)
        for name, value in record.metadata.items()
        if name not in _KNOWN_SAMPLES and _is_markdown_block(value)
    ]
    return [
        (heading, value.strip())
        for heading, value in known + others
        if isinstance(value, str) and value.strip() not in ("", "none")
    ]


def _is_markdown_block(value: object) -> bool:
    return isinstance(value, str) and "\n" in value


def _when(timestamp: datetime) -> str:
    return timestamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _inline_html(text: str) -> str:
    """Escape, then show `code` spans (the only inline markup our own sentences use) as <code>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{piece}</code>" if index % 2 else piece for index, piece in enumerate(pieces))


_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; }
h1 { margin-bottom: .25rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #d0d7de; }
.asof, .empty { color: #57606a; }
.summary { display: flex; gap: 1rem; margin: 1.25rem 0; }
.count { padding: .75rem 1.25rem; border-radius: 6px; border: 1px solid #d0d7de; min-width: 7rem; }
.count b { display: block; font-size: 1.8rem; }
.count.passed { background: #dafbe1; } .count.failed { background: #ffebe9; } .count.warning { background: #fff8c5; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr.failed td:first-child { background: #ffebe9; font-weight: 600; color: #a40e26; }
tr.warning td:first-child { background: #fff8c5; font-weight: 600; color: #7d4e00; }
tr.passed td:first-child { color: #1a7f37; }
.detail { border-left: 4px solid #d0d7de; padding: .25rem 1rem; margin: 1rem 0; }
.detail.failed { border-color: #cf222e; } .detail.warning { border-color: #bf8700; }
.detail h3 { font-size: 1rem; margin: .5rem 0; } .detail h4 { font-size: .9rem; margin: .75rem 0 .25rem; }
.sample { overflow-x: auto; font-size: .9rem; }
code { background: #f6f8fa; padding: 0 .25rem; border-radius: 4px; }
"""

_HTML_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
</body>
</html>
"""


def main(argv: Sequence[str] | None = None) -> int:
    """`custpipe report [--out DIR]`: the report of the instance in DAGSTER_HOME (default: the one `custpipe run` uses)."""
    parser = argparse.ArgumentParser(prog="custpipe report", description="Write the asset check report.")
    parser.add_argument("--out", type=Path, help=f"default: CUSTPIPE_REPORTS_DIR or {DEFAULT_OUT_DIR}")
    args = parser.parse_args(argv)
    out = args.out or Settings.from_env().reports_dir  # where the settings say, never the working directory's
    if "DAGSTER_HOME" not in os.environ:
        from custpipe_assets.run import DEFAULT_DAGSTER_HOME

        os.environ["DAGSTER_HOME"] = str(Path(DEFAULT_DAGSTER_HOME).absolute())
    home = Path(os.environ["DAGSTER_HOME"])
    if not home.is_dir():
        print(
            f"custpipe report: no Dagster instance at {home} (DAGSTER_HOME). Run `custpipe run` first.", file=sys.stderr
        )
        return 2
    with dg.DagsterInstance.get() as instance:
        paths = write_check_report(instance, out)
    summary = json.loads(paths.json.read_text(encoding="utf-8"))["summary"]
    print(f"checks: {summary['passed']} passed, {summary['failed']} failed, {summary['warnings']} warnings")
    for path in (paths.markdown, paths.json, paths.html):
        print(f"wrote {path}")
    return 0
