"""The weekly schedules and the arrival sensors, evaluated for real against files in a temp folder and the
materializations of a real Dagster instance (what ran is what the sensors compare with)."""

import os
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from custpipe_assets.conversions import assets as conversion_assets
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.settings import Settings
from custpipe_assets.definitions import build_definitions
from custpipe_assets.product_views import assets as product_view_assets
from custpipe_assets.purchases.assets import BRONZE_TRANSACTIONS

pytestmark = pytest.mark.slow  # real (bronze-only) Dagster runs

LONG_AGO = time.time() - 3600


def _day_file(landing: Path, day: str, text: str = '{"customer_id": "C1"}\n', mtime: float = LONG_AGO) -> Path:
    path = landing / "transactions" / f"d={day}" / "transactions.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def _definitions(tmp_path: Path) -> dg.Definitions:
    return build_definitions(
        Settings(
            landing_dir=tmp_path,
            warehouse=tmp_path / "w.duckdb",
            first_week=date(2018, 9, 3),
            reports_dir=tmp_path / "reports",
        )
    )


def _tick(
    definitions: dg.Definitions, tmp_path: Path, instance: dg.DagsterInstance, name: str = "transaction_arrivals"
):
    repository = definitions.get_repository_def()
    context = dg.build_sensor_context(
        instance=instance,
        repository_def=repository,
        resources={"landing": LandingResource(path=str(tmp_path))},
    )
    return repository.get_sensor_def(name).evaluate_tick(context)


def _materialize(
    definitions: dg.Definitions, instance: dg.DagsterInstance, keys: set[dg.AssetKey], request: dg.RunRequest
):
    """What the requested run's bronze step does (no checks, nothing downstream): a real run on the instance."""
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=keys, asset_check_selection=set()
    )
    tags = request.tags if request.partition_key is None else {"dagster/partition": request.partition_key}
    assert job.execute_in_process(instance=instance, tags=tags).success


def test_the_sensor_requests_exactly_the_weeks_whose_files_differ_from_what_ran(tmp_path, instance):
    definitions = _definitions(tmp_path)
    _day_file(tmp_path, "2018-09-03")
    _day_file(tmp_path, "2018-09-09")  # Sunday: same week as 09-03
    _day_file(tmp_path, "2018-09-17")  # a week later
    first = _tick(definitions, tmp_path, instance)
    assert sorted(request.partition_key for request in first.run_requests) == ["2018-09-03", "2018-09-17"]
    # nothing ran yet: the same weeks again, under the same run keys (the daemon starts a run key once)
    again = _tick(definitions, tmp_path, instance)
    assert {r.run_key for r in again.run_requests} == {r.run_key for r in first.run_requests}

    for request in first.run_requests:  # the runs happen: each records what it read
        _materialize(definitions, instance, {BRONZE_TRANSACTIONS}, request)
    ran = _tick(definitions, tmp_path, instance)
    assert ran.run_requests == [] and "as its latest materialization read it" in ran.skip_message

    _day_file(tmp_path, "2018-09-18", text='{"customer_id": "C2"}\n')  # a new day in the week of 09-17
    changed = _tick(definitions, tmp_path, instance)
    assert [request.partition_key for request in changed.run_requests] == ["2018-09-17"]
    assert changed.run_requests[0].run_key not in {r.run_key for r in first.run_requests}  # a new file set, a new key

    _day_file(
        tmp_path, "2018-09-04", text='{"customer_id": "C3"}\n', mtime=LONG_AGO + 60
    )  # a late day of the first week
    assert sorted(r.partition_key for r in _tick(definitions, tmp_path, instance).run_requests) == [
        "2018-09-03",
        "2018-09-17",
    ]


def test_a_week_materialized_from_other_files_runs_again(tmp_path, instance):
    """The comparison is with what the latest materialization read, whoever started it (a person, a schedule)."""
    definitions = _definitions(tmp_path)
    day = _day_file(tmp_path, "2018-09-03")
    _materialize(definitions, instance, {BRONZE_TRANSACTIONS}, dg.RunRequest(partition_key="2018-09-03"))
    assert _tick(definitions, tmp_path, instance).run_requests == []
    day.unlink()  # the file is taken back and landed again, later
    _day_file(tmp_path, "2018-09-03", mtime=LONG_AGO + 120)
    assert [r.partition_key for r in _tick(definitions, tmp_path, instance).run_requests] == ["2018-09-03"]


def test_a_file_still_being_copied_waits_for_a_later_tick(tmp_path, instance):
    definitions = _definitions(tmp_path)
    copying = _day_file(tmp_path, "2018-09-03", mtime=time.time())
    waiting = _tick(definitions, tmp_path, instance)
    assert waiting.run_requests == [] and "1 week(s) still being copied" in waiting.skip_message
    os.utime(copying, (LONG_AGO, LONG_AGO))  # the copy finished a while ago
    assert [r.partition_key for r in _tick(definitions, tmp_path, instance).run_requests] == ["2018-09-03"]


def test_the_schedule_runs_the_last_complete_week_on_monday_morning(tmp_path):
    schedule = _definitions(tmp_path).get_repository_def().get_schedule_def("weekly_transactions_schedule")
    assert schedule.cron_schedule == "0 4 * * 1" and schedule.execution_timezone in (None, "UTC")
    monday = datetime(2018, 9, 17, 4, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=monday))
    assert [request.partition_key for request in result.run_requests] == ["2018-09-10"]  # not the week just begun


def _range(request: dg.RunRequest) -> tuple[str, str]:
    return request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]


def test_a_new_conversions_batch_runs_its_weeks_and_their_neighbours_in_one_run(tmp_path, instance):
    definitions = _definitions(tmp_path)
    bronze = {conversion_assets.BRONZE_CONVERSIONS, conversion_assets.BRONZE_REGISTRATIONS}
    batch = tmp_path / "brokerchooser" / "conversions" / "batch_1.csv"
    batch.parent.mkdir(parents=True)
    batch.write_text(
        "id;session_id;country_name;is_mobile;ui_element;created_at;measurement_category\n"
        "1;s1;Germany;1;button;2018-09-09 23:50:00;broker_page\n"
        "2;s2;Germany;0;;2018-09-10 00:10:00;broker_page\n"
        "3;s3;junk line without a time\n"
    )
    os.utime(batch, (LONG_AGO, LONG_AGO))
    first = _tick(definitions, tmp_path, instance, "conversion_arrivals")
    # lines in the weeks of 09-03 and 09-10; 09-17's matching opens an hour into 09-10; no week before 09-03
    assert [_range(r) for r in first.run_requests] == [("2018-09-03", "2018-09-17")]
    assert all(r.partition_key is None for r in first.run_requests)
    _materialize(definitions, instance, bronze, first.run_requests[0])
    assert _tick(definitions, tmp_path, instance, "conversion_arrivals").run_requests == []

    broker = tmp_path / "brokerchooser" / "broker_data" / "export_1.csv"
    broker.parent.mkdir(parents=True)
    broker.write_text("timestamp,country_residency,ip_country,important_score\n1537142400,,Germany,5\n")  # 2018-09-17
    os.utime(broker, (LONG_AGO, LONG_AGO))
    second = _tick(definitions, tmp_path, instance, "conversion_arrivals")
    assert [_range(r) for r in second.run_requests] == [("2018-09-10", "2018-09-24")]
    _materialize(definitions, instance, bronze, second.run_requests[0])
    assert _tick(definitions, tmp_path, instance, "conversion_arrivals").run_requests == []

    with batch.open("a") as appended:  # the batch is re-sent with a line of October in it
        appended.write("4;s4;Germany;1;button;2018-10-02 12:00:00;broker_page\n")
    os.utime(batch, (LONG_AGO + 5, LONG_AGO + 5))
    third = _tick(definitions, tmp_path, instance, "conversion_arrivals")
    assert [_range(r) for r in third.run_requests] == [("2018-09-03", "2018-10-08")]


def test_the_conversions_schedule_reruns_the_week_before_the_one_that_ended(tmp_path):
    schedule = _definitions(tmp_path).get_repository_def().get_schedule_def("weekly_conversions_schedule")
    assert schedule.cron_schedule == "0 4 * * 1" and schedule.execution_timezone == "UTC"
    with dg.instance_for_test() as instance:

        def tick(monday: datetime):
            return schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=monday))

        assert [_range(r) for r in tick(datetime(2018, 9, 24, 4, tzinfo=UTC)).run_requests] == [
            ("2018-09-10", "2018-09-17")
        ]
        assert [_range(r) for r in tick(datetime(2018, 9, 10, 4, tzinfo=UTC)).run_requests] == [
            ("2018-09-03", "2018-09-03")  # no week before the first
        ]
        assert tick(datetime(2018, 9, 3, 4, tzinfo=UTC)).run_requests == []


def test_new_product_view_files_run_their_utc_week(tmp_path, instance):
    definitions = _definitions(tmp_path)
    view_file = tmp_path / "amaro" / "product_views" / "iOS" / "2018-09-12_part-001.json"
    view_file.parent.mkdir(parents=True)
    view_file.write_text("[]")
    os.utime(view_file, (LONG_AGO, LONG_AGO))
    result = _tick(definitions, tmp_path, instance, "product_view_arrivals")
    assert [r.partition_key for r in result.run_requests] == ["2018-09-10"]
    bronze = {product_view_assets.BRONZE_VIEW_EVENTS, product_view_assets.BRONZE_VIEW_REJECTS}
    _materialize(definitions, instance, bronze, result.run_requests[0])
    assert _tick(definitions, tmp_path, instance, "product_view_arrivals").run_requests == []


def test_every_partitioned_domain_job_has_a_monday_schedule(tmp_path):
    repository = _definitions(tmp_path).get_repository_def()
    scheduled = {schedule.job_name for schedule in repository.schedule_defs}
    assert scheduled == {"weekly_transactions", "weekly_store_purchases", "weekly_conversions", "weekly_product_views"}
    assert {schedule.cron_schedule for schedule in repository.schedule_defs} == {"0 4 * * 1"}
