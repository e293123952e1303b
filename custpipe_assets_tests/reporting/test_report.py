"""The check report written from a real Dagster instance after real runs of tiny assets and checks.

The expected counts, order and sample rows are written out by hand from the inputs below; the HTML is read back
with the standard library's HTML parser, so the test sees the tables a browser would show.
"""

import json
from html.parser import HTMLParser

import dagster as dg
import pytest

from custpipe_assets.reporting.report import main, write_check_report

WEEKS = dg.WeeklyPartitionsDefinition(start_date="2018-09-03", day_offset=1, timezone="UTC")
WEEK_1, WEEK_2 = "2018-09-03", "2018-09-10"

CUSTOMERS = [
    {"customer_id": "C1", "name": "Ann", "age": 34},
    {"customer_id": "C2", "name": "<b>Bob</b>", "age": -3},
    {"customer_id": "C3", "name": "Cy", "age": 130},
]


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "none"
    lines = ["| " + " | ".join(rows[0]) + " |", "|---" * len(rows[0]) + "|"]
    lines += ["| " + " | ".join(str(value) for value in row.values()) + " |" for row in rows]
    return "\n".join(lines)


@dg.asset
def customers() -> list[dict]:
    return CUSTOMERS


@dg.asset_check(asset=customers)
def ids_unique(customers: list[dict]) -> dg.AssetCheckResult:
    duplicates = len(customers) - len({row["customer_id"] for row in customers})
    return dg.AssetCheckResult(
        passed=duplicates == 0,
        metadata={"failure_count": duplicates, "sample_failing_rows": dg.MetadataValue.md("none")},
    )


@dg.asset_check(asset=customers)
def age_in_range(customers: list[dict]) -> dg.AssetCheckResult:
    failing = [row for row in customers if not 0 <= row["age"] <= 120]
    return dg.AssetCheckResult(
        passed=not failing,
        metadata={
            "rows_checked": len(customers),
            "failure_count": len(failing),
            "failures_by_check": dg.MetadataValue.md(
                markdown_table([{"column": "age", "check": "in_range(0, 120)", "failures": len(failing)}])
            ),
            "sample_failure_cases": dg.MetadataValue.md(
                markdown_table([{"column": "age", "failure_case": row["age"]} for row in failing])
            ),
            "sample_failing_rows": dg.MetadataValue.md(markdown_table(failing)),
        },
    )


@dg.asset_check(asset=customers)
def names_plain(customers: list[dict]) -> dg.AssetCheckResult:
    failing = [row for row in customers if "<" in row["name"]]
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failure_count": len(failing), "sample_failing_rows": dg.MetadataValue.md(markdown_table(failing))},
    )


CUSTOMER_CHECKS = [customers, ids_unique, age_in_range, names_plain]


def weekly_visits(visits_by_week: dict[str, int]) -> list[dg.AssetsDefinition]:
    @dg.asset(partitions_def=WEEKS)
    def visits(context: dg.AssetExecutionContext) -> int:
        return visits_by_week[context.partition_key]

    @dg.asset_check(asset=visits, partitions_def=WEEKS)
    def visits_not_negative(visits: int) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=visits >= 0,
            metadata={
                "failure_count": int(visits < 0),
                "sample_failing_rows": dg.MetadataValue.md(f"visits: {visits}"),
            },
        )

    return [visits, visits_not_negative]


@pytest.fixture(scope="module")
def instance():
    """Customer checks once; the weekly check for week 1 (failing), week 2, then week 1 again (fixed)."""
    visits_by_week = {WEEK_1: -1, WEEK_2: 5}
    visits = weekly_visits(visits_by_week)
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize(CUSTOMER_CHECKS, instance=instance)
        dg.materialize(visits, instance=instance, partition_key=WEEK_1)
        dg.materialize(visits, instance=instance, partition_key=WEEK_2)
        visits_by_week[WEEK_1] = 3
        dg.materialize(visits, instance=instance, partition_key=WEEK_1)
        yield instance


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts."""

    def __init__(self, page: str):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_json_has_the_latest_result_of_every_check_failing_first(instance, tmp_path):
    report = write_check_report(instance, tmp_path / "reports")
    document = json.loads(report.json.read_text(encoding="utf-8"))

    assert {key: document["summary"][key] for key in ("results", "passed", "failed", "warnings")} == {
        "results": 5,
        "passed": 3,
        "failed": 1,
        "warnings": 1,
    }
    picked = [
        (r["asset_key"], r["check_name"], r["partition"], r["status"], r["severity"], r["failure_count"])
        for r in document["results"]
    ]
    assert picked == [
        ("customers", "age_in_range", None, "failed", "ERROR", 2),
        ("customers", "names_plain", None, "warning", "WARN", 1),
        ("customers", "ids_unique", None, "passed", "ERROR", 0),
        ("visits", "visits_not_negative", WEEK_1, "passed", "ERROR", 0),  # the re-run, not the first failing run
        ("visits", "visits_not_negative", WEEK_2, "passed", "ERROR", 0),
    ]
    failed = document["results"][0]
    assert failed["sample_failing_rows"].splitlines() == [
        "| customer_id | name | age |",
        "|---|---|---|",
        "| C2 | <b>Bob</b> | -3 |",
        "| C3 | Cy | 130 |",
    ]
    assert failed["metadata"]["rows_checked"] == 3
    assert document["results"][3]["sample_failing_rows"] == "visits: 3"
    assert len({r["run_id"] for r in document["results"]}) == 3


def test_markdown_and_html_show_which_rows_failed_and_why(instance, tmp_path):
    report = write_check_report(instance, tmp_path)
    markdown = report.markdown.read_text(encoding="utf-8")
    assert "| 3 | 1 | 1 |" in markdown  # passed, failed, warnings
    assert markdown.index("## customers") < markdown.index("## visits")
    details = markdown[markdown.index("### FAILED: customers · age_in_range") :]
    assert "| C2 | <b>Bob</b> | -3 |\n| C3 | Cy | 130 |" in details
    assert "| age | in_range(0, 120) | 2 |" in details
    assert "### WARNING: customers · names_plain" in markdown
    assert "ids_unique ·" not in markdown  # passing checks get a table row, no details

    page = report.html.read_text(encoding="utf-8")
    assert "<b>Bob</b>" not in page and "&lt;b&gt;Bob&lt;/b&gt;" in page  # data is shown, never run as markup
    assert not any(marker in page for marker in ("http://", "https://", "<link", "<script", "src="))
    tables = Tables(page).tables
    customer_rows = tables[0]
    assert [row[:4] for row in customer_rows] == [
        ["status", "check", "partition", "failures"],
        ["FAILED", "age_in_range", "—", "2"],
        ["WARNING", "names_plain", "—", "1"],
        ["passed", "ids_unique", "—", "0"],
    ]
    assert [["customer_id", "name", "age"], ["C2", "<b>Bob</b>", "-3"], ["C3", "Cy", "130"]] in tables
    assert [["column", "failure_case"], ["age", "-3"], ["age", "130"]] in tables
    assert [row[1:3] for row in tables[-1][1:]] == [["visits_not_negative", WEEK_1], ["visits_not_negative", WEEK_2]]


def test_the_same_instance_gives_the_same_files(instance, tmp_path):
    first, second = write_check_report(instance, tmp_path / "a"), write_check_report(instance, tmp_path / "b")
    for name in ("markdown", "json", "html"):
        assert getattr(first, name).read_bytes() == getattr(second, name).read_bytes()


def test_an_instance_without_checks_gives_a_report_saying_so(tmp_path):
    with dg.DagsterInstance.ephemeral() as empty:
        report = write_check_report(empty, tmp_path / "nested" / "reports")
    document = json.loads(report.json.read_text(encoding="utf-8"))
    assert document["results"] == [] and document["summary"]["passed"] == document["summary"]["failed"] == 0
    assert "No asset check has been evaluated" in report.markdown.read_text(encoding="utf-8")
    assert "No asset check has been evaluated" in report.html.read_text(encoding="utf-8")


def test_main_reports_on_the_instance_in_dagster_home(tmp_path, monkeypatch, capsys):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as persistent:
        dg.materialize(CUSTOMER_CHECKS, instance=persistent)
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    assert main(["--out", str(tmp_path / "out")]) == 0
    assert "1 passed, 1 failed, 1 warnings" in capsys.readouterr().out
    assert "### FAILED: customers · age_in_range" in (tmp_path / "out" / "check_report.md").read_text(encoding="utf-8")

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "missing"))
    assert main(["--out", str(tmp_path / "out2")]) == 2
    assert "no Dagster instance at" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
