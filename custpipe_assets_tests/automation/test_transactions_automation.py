"""The weekly schedule and the transaction arrival sensor, evaluated for real against files in a temp folder."""

import os
import time
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg

from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.settings import Settings
from custpipe_assets.definitions import build_definitions

LONG_AGO = time.time() - 3600


def _day_file(landing: Path, day: str, text: str = '{"customer_id": "C1"}\n', mtime: float = LONG_AGO) -> Path:
    path = landing / "transactions" / f"d={day}" / "transactions.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def _definitions(tmp_path: Path) -> dg.Definitions:
    return build_definitions(Settings(landing_dir=tmp_path, warehouse=tmp_path / "w.duckdb", first_week=date(2018, 9, 3)))


def _tick(definitions: dg.Definitions, tmp_path: Path, cursor: str | None):
    repository = definitions.get_repository_def()
    sensor = repository.get_sensor_def("transaction_arrivals")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, repository_def=repository,
            resources={"landing": LandingResource(path=str(tmp_path))},
        )
        result = sensor.evaluate_tick(context)
    return result


def test_the_sensor_requests_exactly_the_weeks_whose_files_are_new_or_changed(tmp_path):
    definitions = _definitions(tmp_path)
    _day_file(tmp_path, "2018-09-03")
    _day_file(tmp_path, "2018-09-09")   # Sunday: same week as 09-03
    _day_file(tmp_path, "2018-09-17")   # a week later
    first = _tick(definitions, tmp_path, None)
    assert sorted(request.partition_key for request in first.run_requests) == ["2018-09-03", "2018-09-17"]

    again = _tick(definitions, tmp_path, first.cursor)  # nothing new: no run, however often it ticks
    assert again.run_requests == []

    _day_file(tmp_path, "2018-09-18", text='{"customer_id": "C2"}\n')  # a new day in the week of 09-17
    changed = _tick(definitions, tmp_path, again.cursor)
    assert [request.partition_key for request in changed.run_requests] == ["2018-09-17"]
    assert changed.run_requests[0].run_key != first.run_requests[1].run_key  # a new file set, a new run key


def test_a_file_still_being_copied_waits_for_a_later_tick(tmp_path):
    definitions = _definitions(tmp_path)
    copying = _day_file(tmp_path, "2018-09-03", mtime=time.time())
    waiting = _tick(definitions, tmp_path, None)
    assert waiting.run_requests == [] and "being copied" in waiting.skip_message
    os.utime(copying, (LONG_AGO, LONG_AGO))  # the copy finished a while ago
    assert [r.partition_key for r in _tick(definitions, tmp_path, waiting.cursor).run_requests] == ["2018-09-03"]


def test_the_schedule_runs_the_last_complete_week_on_monday_morning(tmp_path):
    schedule = _definitions(tmp_path).get_repository_def().get_schedule_def("weekly_transactions_schedule")
    assert schedule.cron_schedule == "0 4 * * 1" and schedule.execution_timezone in (None, "UTC")
    monday = datetime(2018, 9, 17, 4, 0, tzinfo=timezone.utc)
    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=monday))
    assert [request.partition_key for request in result.run_requests] == ["2018-09-10"]  # not the week just begun
