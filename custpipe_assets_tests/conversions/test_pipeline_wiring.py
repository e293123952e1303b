"""The conversions assets as Dagster runs them: the weekly matches in the warehouse, put together, meet the accuracy
targets against the planted truth, and every landed line is accounted for."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from custpipe_assets.conversions.automation import WEEKLY_CONVERSIONS_JOB
from custpipe_assets.conversions.matching import match_quality
from custpipe_assets.core.partitions import week_range_tags
from custpipe_assets.core.quarantine import WEEKLY_QUARANTINE_SCHEMA
from custpipe_assets.core.settings import Settings
from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.definitions import build_definitions
from custpipe_assets.run import landed_weeks
from custpipe_assets.sample.conversions import read_planted_truth


def test_weekly_matches_meet_the_accuracy_targets(sample_run):
    warehouse = Warehouse(sample_run.settings.warehouse)
    matches = warehouse.read("silver.conversion_matches")
    quality = match_quality(matches, read_planted_truth(sample_run.settings.landing_dir))
    print(f"pipeline matches: precision {quality.precision:.4f}, recall {quality.recall:.4f}")
    assert quality.precision >= 0.98 and quality.recall >= 0.95
    assert matches["registration_key"].n_unique() == matches.height  # one-to-one across weeks


def test_gold_has_every_conversion_and_the_checks_pass(sample_run):
    warehouse = Warehouse(sample_run.settings.warehouse)
    gold = warehouse.read("gold.conversions_matched")
    conversions = warehouse.read("silver.conversions")
    assert sorted(gold["conversion_id"]) == sorted(conversions["conversion_id"])
    matched = gold.filter(pl.col("registration_key").is_not_null())
    assert matched.height == warehouse.read("silver.conversion_matches").height
    assert matched["registration_registered_at"].null_count() == 0
    for label in (
        "silver/conversions:reconciles",
        "silver/broker_registrations:reconciles",
        "silver/conversions:schema",
        "silver/conversion_matches:registration_used_once",
        "silver/conversion_matches:delay_steady",
    ):
        assert label in sample_run.summary.checks_passed, label
    report_files = list((sample_run.settings.reports_dir / "conversions").glob("*.png"))
    assert report_files and any(path.name == "fitted_delay.png" for path in report_files)
    report_text = (sample_run.settings.reports_dir / "conversions" / "report.md").read_text()
    assert "## The delay the matcher fitted from the weeks 2018-09-03 to 2018-10-22" in report_text


# --- the weekly job, run the way its Monday schedule runs it ----------------------------------------------------

CONVERSIONS_HEADER = "id;session_id;country_name;is_mobile;ui_element;created_at;measurement_category"
BROKER_HEADER = "timestamp,country_residency,ip_country,important_score"


def _land(root: Path, folder: str, name: str, lines: list[str]) -> None:
    path = root / "brokerchooser" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _run_weeks(settings: Settings, instance: dg.DagsterInstance, first: str, last: str) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def(WEEKLY_CONVERSIONS_JOB)
    return job.execute_in_process(
        instance=instance, tags=week_range_tags(date.fromisoformat(first), date.fromisoformat(last))
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed for e in result.get_asset_check_evaluations()}


def test_a_late_sunday_conversion_gets_its_monday_registration_once_the_next_week_has_run(tmp_path):
    landing = tmp_path / "landing"
    _land(
        landing,
        "conversions",
        "batch_1.csv",
        [
            CONVERSIONS_HEADER,
            "1;s1;France;0;top_cta;2018-09-05 10:00:00;review_page",
            "2;s2;Germany;1;top_cta;2018-09-09 23:50:00;review_page",  # Sunday, 10 minutes before the week ends
            "2;s2;Austria;1;top_cta;2018-09-09 23:50:00;review_page",  # the same id split into a second country row
            "3;s3;Germany;1;side;bar;2018-09-11 09:00:00;review_page",  # one field too many
        ],
    )
    _land(
        landing,
        "broker_data",
        "export_1.csv",
        [
            BROKER_HEADER,
            f"{int(datetime(2018, 9, 5, 10, 4, tzinfo=UTC).timestamp())},,France,3",
            f"{int(datetime(2018, 9, 10, 0, 5, tzinfo=UTC).timestamp())},Germany,Germany,#REF!",  # Monday 00:05
            f"{int(datetime(2018, 9, 10, 0, 5, tzinfo=UTC).timestamp())},Germany,Germany,#REF!",  # exact duplicate
        ],
    )
    settings = Settings(
        landing_dir=landing,
        warehouse=tmp_path / "warehouse.duckdb",
        first_week=date(2018, 9, 3),
        reports_dir=tmp_path / "reports",
    )
    warehouse = Warehouse(settings.warehouse)
    with dg.instance_for_test() as instance:
        # Monday 09-10: the week that ended runs; its Sunday conversion's registration is in a week not run yet
        first = _run_weeks(settings, instance, "2018-09-03", "2018-09-03")
        assert first.success
        matched = warehouse.read("silver.conversion_matches").select("conversion_id", "registration_key").rows()
        assert matched == [(1, "broker_data/export_1.csv:2")]
        assert not _checks(first)["bronze/conversion_source_files:every_line_in_a_materialized_week"]

        # Monday 09-17: the schedule runs 09-03 again with 09-10, so the look-ahead now sees Monday's registration
        second = _run_weeks(settings, instance, "2018-09-03", "2018-09-10")
        assert second.success
        matches = warehouse.read("silver.conversion_matches").sort("conversion_id")
        assert matches.select("conversion_id", "registration_key", "week_start").rows() == [
            (1, "broker_data/export_1.csv:2", date(2018, 9, 3)),
            (2, "broker_data/export_1.csv:3", date(2018, 9, 3)),
        ]
        checks = _checks(second)
        # freshness checks compare the 2018 data with today's clock: stale by design here, not a data problem
        data_checks = {name: passed for name, passed in checks.items() if not name.endswith(":freshness_check")}
        assert all(data_checks.values()), {name: passed for name, passed in data_checks.items() if not passed}
        assert "silver/conversion_matches:delay_steady" in data_checks
        for name in (
            "silver/conversions:reconciles",
            "silver/broker_registrations:reconciles",
            "silver/page_category_mapping:reconciles",
            "silver/conversion_quarantine:schema",
            "silver/page_category_mapping_quarantine:schema",
            "bronze/conversions:schema",
            "bronze/broker_registrations:schema",
            "bronze/conversion_source_files:schema",
            "silver/page_category_mapping:schema",
        ):
            assert name in checks

        # the core quarantine contract: the source is the folder in source_file; a duplicate names the line kept
        quarantine = warehouse.read("silver.conversion_quarantine").sort("source_file", "line_number")
        assert quarantine.columns == list(WEEKLY_QUARANTINE_SCHEMA.names())
        assert quarantine.select("week_start", "source_file", "line_number", "reason", "detail").rows() == [
            (date(2018, 9, 10), "broker_data/export_1.csv", 4, "duplicate", "kept broker_data/export_1.csv line 3"),
            (date(2018, 9, 3), "conversions/batch_1.csv", 4, "duplicate_id", "kept conversions/batch_1.csv line 3"),
            (date(2018, 9, 10), "conversions/batch_1.csv", 5, "too_many_fields", None),
        ]
        counts = warehouse.table_counts()
        # re-running a stretch of weeks replaces it: nothing doubles
        assert _run_weeks(settings, instance, "2018-09-03", "2018-09-10").success
        assert warehouse.table_counts().equals(counts)


def test_the_main_run_covers_every_week_any_landed_file_has_lines_in(tmp_path):
    landing = tmp_path / "landing"
    _land(
        landing,
        "broker_data",
        "export_1.csv",
        [
            BROKER_HEADER,
            f"{int(datetime(2018, 9, 24, 0, 30, tzinfo=UTC).timestamp())},,Germany,1",
        ],
    )
    settings = Settings(landing_dir=landing, warehouse=tmp_path / "w.duckdb", first_week=date(2018, 9, 3))
    assert landed_weeks(settings) == [date(2018, 9, 3), date(2018, 9, 10), date(2018, 9, 17), date(2018, 9, 24)]


def test_the_bronze_line_schema_refuses_a_line_twice_or_an_unknown_read_issue():
    from custpipe_assets.conversions.checks import BRONZE_LINES
    from custpipe_assets.core.checks import SchemaValidation

    lines = pl.DataFrame(
        {
            "week_start": [date(2018, 9, 3)] * 3,
            "source_file": ["a.csv"] * 3,
            "line_number": [2, 2, 3],
            "raw_line": ["x", "x", "y"],
            "read_issue": [None, None, "cosmic_rays"],
        }
    )
    validation = SchemaValidation()
    validation.add(BRONZE_LINES, lines)
    failed = set(pl.concat(validation.failure_cases)["check"])
    assert any("unique" in check or "duplicate" in check for check in failed) and any(
        "isin" in check for check in failed
    ), failed
    clean = SchemaValidation()
    clean.add(BRONZE_LINES, lines.head(1))
    assert clean.failure_count == 0


def _delay_landing(root: Path) -> None:
    """Two weeks of hand-written exports: 60 conversions a week in five countries, each registering after a delay of
    minutes in the first week (2 to 9 minutes) and of seconds in the second (1 to 5 seconds)."""
    countries = ["France", "Germany", "Spain", "Italy", "Poland"]
    conversions, registrations = [CONVERSIONS_HEADER], [BROKER_HEADER]
    for week, delays in ((0, [120, 200, 300, 420, 540]), (1, [1, 2, 3, 4, 5])):
        for n in range(60):
            created = datetime(2018, 9, 3, 6, tzinfo=UTC) + timedelta(weeks=week, hours=2 * n)
            conversion_id = 1000 * (week + 1) + n
            country = countries[n % 5]
            conversions.append(
                f"{conversion_id};s{conversion_id};{country};0;top_cta;{created:%Y-%m-%d %H:%M:%S};review_page"
            )
            registered = created + timedelta(seconds=delays[n % 5] + n % 7)
            registrations.append(f"{int(registered.timestamp())},,{country},5")
    _land(root, "conversions", "batch_1.csv", conversions)
    _land(root, "broker_data", "export_1.csv", registrations)


def test_the_delay_check_warns_when_a_week_registers_after_seconds_instead_of_minutes(tmp_path):
    landing = tmp_path / "landing"
    _delay_landing(landing)
    settings = Settings(
        landing_dir=landing,
        warehouse=tmp_path / "warehouse.duckdb",
        first_week=date(2018, 9, 3),
        reports_dir=tmp_path / "reports",
    )
    with dg.instance_for_test() as instance:
        result = _run_weeks(settings, instance, "2018-09-03", "2018-09-10")
        assert result.success
        evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "delay_steady")
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
        metadata = {name: value.value for name, value in evaluation.metadata.items()}
        assert metadata["failure_count"] == 1 and metadata["weeks_checked"] == 1  # the first week has no history
        quantiles = metadata["delay_quantiles"]
        assert 120 <= quantiles["2018-09-03"]["p50_seconds"] <= 600 and quantiles["2018-09-03"]["shifted"] is None
        assert quantiles["2018-09-10"]["p50_seconds"] <= 10 and quantiles["2018-09-10"]["shifted"] is True
        assert quantiles["2018-09-10"]["history_p50_seconds"] == pytest.approx(quantiles["2018-09-03"]["p50_seconds"])
        assert "2018-09-10" in metadata["sample_failing_rows"] and "```" in metadata["delay_plot"]
        # every week of the matches carries the delay it was matched by
        matches = Warehouse(settings.warehouse).read("silver.conversion_matches")
        expected = {
            (1000 * (week + 1) + n, f"broker_data/export_1.csv:{60 * week + n + 2}")
            for week in (0, 1)
            for n in range(60)
        }
        assert set(matches.select("conversion_id", "registration_key").rows()) == expected
        for week, low, high in (("2018-09-03", 120, 600), ("2018-09-10", 0, 10)):
            event = (
                instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=dg.AssetKey(["silver", "conversion_matches"]), asset_partitions=[week]
                    ),
                    limit=1,
                )
                .records[0]
                .asset_materialization
            )
            assert low <= event.metadata["fitted_delay_median_seconds"].value <= high
            assert event.metadata["fitted_delay_plot"].value.startswith("![fitted delay](data:image/png;base64,")
            assert "| 50% |" in event.metadata["fitted_delay_quantiles"].value
