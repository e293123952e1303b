"""The exploratory report: numbers checked on hand-built data, words that follow the data, real PNG charts."""

import base64
from datetime import UTC, datetime, timedelta

import matplotlib.image
import polars as pl
import pytest

from custpipe_assets.conversions.matching import MATCH_SCHEMA, fit_conversion_delay, match_conversions
from custpipe_assets.conversions.report import build_report, markdown_with_embedded_charts, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2018, 9, 3, 8, 0, tzinfo=UTC)


def _hand_built(rates: dict[str, tuple[int, int, int, int | None]]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Per page category (None = unmapped): conversions, of which matched, delay minutes, important_score.

    Every third conversion has no ui_element; devices alternate, so they register alike. Ten broker
    registrations follow no conversion.
    """
    conversion_rows, registration_rows, match_rows = [], [], []
    next_id = 1
    for category, (count, matched, delay_minutes, score) in rates.items():
        for index in range(count):
            created_at = T0 + timedelta(minutes=10 * next_id)
            conversion_rows.append(
                (
                    next_id,
                    created_at,
                    "US" if category else None,
                    index % 2 == 0,
                    None if next_id % 3 == 0 else "button",
                    category,
                    "<script>alert(1)</script>" if category is None else f"{category}_page",
                )
            )
            if index < matched:
                key = f"broker_data/b.csv:{next_id}"
                registered_at = created_at + timedelta(minutes=delay_minutes)
                registration_rows.append((key, score))
                match_rows.append((next_id, key, created_at, registered_at, delay_minutes * 60, "ip_country", 0.9))
            next_id += 1
    registration_rows += [(f"broker_data/noise.csv:{n}", 5) for n in range(10)]
    conversions = pl.DataFrame(
        conversion_rows,
        schema={
            "conversion_id": pl.Int64,
            "created_at": pl.Datetime("us", "UTC"),
            "country_code": pl.String,
            "is_mobile": pl.Boolean,
            "ui_element": pl.String,
            "page_category": pl.String,
            "measurement_category": pl.String,
        },
        orient="row",
    )
    registrations = pl.DataFrame(
        registration_rows, schema={"registration_key": pl.String, "important_score": pl.Int64}, orient="row"
    )
    matches = pl.DataFrame(match_rows, schema=MATCH_SCHEMA, orient="row")
    return conversions, registrations, matches


@pytest.fixture(scope="module")
def hand_report():
    return build_report(*_hand_built({"A": (100, 80, 5, 8), "B": (100, 40, 15, 4), None: (10, 5, 10, None)}))


def test_rates_and_scores_match_the_hand_counts(hand_report):
    assert hand_report.tables["by_page_category"].rows() == [
        ("A", 100, pytest.approx(100 / 210), 80, 0.8),
        ("B", 100, pytest.approx(100 / 210), 40, 0.4),
        ("(unmapped)", 10, pytest.approx(10 / 210), 5, 0.5),
    ]
    by_ui = {row[0]: row[1] for row in hand_report.tables["by_ui_element"].rows()}
    assert by_ui == {"button": 140, "(empty)": 70}
    assert hand_report.tables["by_country"].select("country", "conversions").rows() == [
        ("US", 200),
        ("(unresolved)", 10),
    ]
    scores = hand_report.tables["important_score_by_page_category"]
    assert scores.select("page_category", "registrations", "scored", "mean_score").rows() == [
        ("A", 80, 80, 8.0),
        ("B", 40, 40, 4.0),
        ("(unmapped)", 5, 0, None),
    ]
    summary = hand_report.tables["delay_summary"].row(0, named=True)
    assert summary["matched"] == 125
    assert summary["median_minutes"] == 5.0
    assert summary["p90_minutes"] == 15.0
    assert summary["share_within_30_minutes"] == 1.0
    histogram = dict(hand_report.tables["delay_histogram"].iter_rows())
    assert histogram == {4: 80, 10: 5, 14: 40}


def test_insights_and_actions_are_computed_from_the_data(hand_report):
    markdown = hand_report.markdown
    assert "125 of 210 conversions (59.5%) became a broker registration." in markdown
    assert "10 of the broker's 135 registrations (7.4%) follow no conversion." in markdown
    assert "By page category, `A` registers best (80.0% of 100) and `B` worst (40.0% of 100)" in markdown
    assert "Steer traffic toward `A` pages and review the path from `B` pages" in markdown
    assert "`A` pages score highest on important_score (mean 8.0), from `B` lowest (mean 4.0)" in markdown
    assert "The delay the matcher learned" not in markdown, "no fitted delay was passed"
    assert "70 conversions (33.3%) carry no UI element." in markdown
    assert "Audit the" not in markdown, "devices register alike here: no device action"

    swapped = build_report(*_hand_built({"A": (100, 40, 5, 3), "B": (100, 80, 5, 9)})).markdown
    assert "By page category, `B` registers best (80.0% of 100) and `A` worst (40.0% of 100)" in swapped
    assert "Steer traffic toward `B` pages" in swapped
    close = build_report(*_hand_built({"A": (100, 70, 5, 5), "B": (100, 66, 5, 5)})).markdown
    assert "Steer traffic" not in close, "a 4-point gap is not worth acting on"


def test_junk_values_appear_only_as_inert_code(hand_report):
    markdown = hand_report.markdown
    assert "`<script>alert(1)</script>` (10)" in markdown
    assert markdown.count("<script>") == markdown.count("`<script>")


def test_charts_are_real_deterministic_pngs_written_and_embedded(hand_report, tmp_path):
    assert set(hand_report.charts) == {
        "registration_rate_by_page_category",
        "registration_rate_by_ui_element",
        "registration_rate_by_device",
        "registration_rate_by_country",
        "important_score_by_page_category",
        "delay_distribution",
    }
    written = write_report(hand_report, tmp_path / "report")
    assert sorted(path.name for path in written) == sorted(
        [f"{name}.png" for name in hand_report.charts] + ["report.md"]
    )
    for name, png in hand_report.charts.items():
        assert png.startswith(PNG_SIGNATURE)
        image = matplotlib.image.imread(tmp_path / "report" / f"{name}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 0, f"{name} is blank"
    assert (tmp_path / "report" / "report.md").read_text() == hand_report.markdown
    again = build_report(*_hand_built({"A": (100, 80, 5, 8), "B": (100, 40, 15, 4), None: (10, 5, 10, None)}))
    assert again.charts == hand_report.charts

    embedded = markdown_with_embedded_charts(hand_report)
    assert embedded.startswith(hand_report.markdown.rstrip())
    for name, png in hand_report.charts.items():
        marker = f"![{name}](data:image/png;base64,"
        start = embedded.index(marker) + len(marker)
        assert base64.b64decode(embedded[start : embedded.index(")", start)]) == png


def test_no_conversions_gives_a_report_not_a_crash():
    conversions, registrations, matches = _hand_built({})
    report = build_report(conversions, registrations, matches)
    assert "No conversions in this period" in report.markdown
    assert all(png.startswith(PNG_SIGNATURE) for png in report.charts.values())


def test_report_on_the_sample_accounts_for_every_conversion_and_match(conversions_sample, tmp_path):
    convs, regs = conversions_sample.conversions.rows, conversions_sample.registrations.rows
    matches = match_conversions(convs, regs)
    report = build_report(convs, regs, matches, fit_conversion_delay(convs, regs), "the sample's 8 weeks")
    matched_ids = set(matches.get_column("conversion_id"))
    for segment in ("page_category", "ui_element", "device", "country"):
        table = report.tables[f"by_{segment}"]
        assert table.get_column("conversions").sum() == convs.height
        assert table.get_column("registrations").sum() == matches.height
    mobile = [row["conversion_id"] for row in convs.iter_rows(named=True) if row["is_mobile"]]
    expected_mobile_rate = sum(cid in matched_ids for cid in mobile) / len(mobile)
    device = dict(report.tables["by_device"].select("device", "registration_rate").iter_rows())
    assert device["mobile"] == pytest.approx(expected_mobile_rate)
    assert "## Action steps" in report.markdown and "1. " in report.markdown
    assert len(write_report(report, tmp_path)) == 8  # seven charts, with the fitted delay's, and report.md


def test_the_fitted_delay_shows_in_the_report_as_quantiles_a_sentence_and_a_chart(conversions_sample):
    convs, regs = conversions_sample.conversions.rows, conversions_sample.registrations.rows
    report = build_report(convs, regs, match_conversions(convs, regs), fit_conversion_delay(convs, regs), "the sample")
    within = dict(report.tables["fitted_delay"].select("share_of_true_pairs", "within_seconds").iter_rows())
    # the sample plants the minutes regime: median 5 minutes, 95% within 16 (delays drawn from 1 to 50 minutes)
    assert 200 <= within["50%"] <= 400 and 60 <= within["10%"] < within["50%"] < within["90%"] <= 1200
    assert list(within) == ["10%", "25%", "50%", "75%", "90%", "99%"]
    assert "## The delay the matcher fitted from the sample" in report.markdown
    assert "The delay the matcher learned from the sample: half of the true pairs register within " in report.markdown
    assert report.charts["fitted_delay"].startswith(PNG_SIGNATURE)
    assert f"![fitted_delay](data:image/png;base64,{base64.b64encode(report.charts['fitted_delay']).decode()})" in (
        markdown_with_embedded_charts(report)
    )
