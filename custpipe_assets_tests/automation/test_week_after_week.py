"""Week after week without waste, as the daemon would run it, on a real Dagster instance configured by our own
dagster.yaml and the generated sample:

- after the main job (`make run`) no sensor asks for anything, and the automation sensor's first tick neither;
- a new day file starts exactly one run for its week, after which the rollup of that week, the features, the model,
  the segments and the metrics follow by declarative automation (and nothing else does);
- a failed run produces an alert record, POSTed to a webhook on 127.0.0.1 and mailed through an SMTP server on
  127.0.0.1; with no channel set, the record alone;
- a successful weekly run rewrites the check report; a weekly run executes its steps in one process;
- a long backfill writes a log line per week into the run's log (managed Python loggers);
- the freshness checks judge the week that ended: stale for the 2018 sample, fresh for a sample of recent weeks.
"""

import json
import os
import smtplib
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import dagster as dg
import polars as pl
import pytest
import yaml

from custpipe_assets.core.alerts import FAILURE_SENSOR, REPORT_SENSOR, read_alerts
from custpipe_assets.core.arrivals import monday_of
from custpipe_assets.core.automation import AUTOMATION_SENSOR, FRESHNESS_DEADLINE_CRON
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.settings import AlertSettings, Settings
from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.definitions import build_definitions
from custpipe_assets.purchases.assets import BRONZE_TRANSACTIONS, CUSTOMER_PRODUCT_PURCHASES
from custpipe_assets.run import INSTANCE_YAML, run_everything
from custpipe_assets.sample import generate_sample
from custpipe_assets.sample.customers import generate_customers_landing
from custpipe_assets.segmentation import assets as segmentation

pytestmark = pytest.mark.slow  # end-to-end Dagster runs

FIRST_WEEK = date(2018, 9, 3)
AN_HOUR_AGO = time.time() - 3600
RUN_STATUS_SENSORS = {FAILURE_SENSOR, REPORT_SENSOR}  # judged on runs, not on the repository they run in
SEGMENTATION_GOLD = {
    segmentation.CUSTOMER_FEATURES,
    segmentation.SEGMENT_MODEL,
    segmentation.CUSTOMER_SEGMENTS,
    segmentation.SEGMENT_METRICS,
}


@dataclass
class History:
    """The main job's runs over the generated sample, and the state of every sensor since (cursors)."""

    settings: Settings
    instance: dg.DagsterInstance
    definitions: dg.Definitions
    summary: object
    cursors: dict[str, str | None] = field(default_factory=dict)
    automation_cursor: object = None

    def tick(self, name: str, definitions: dg.Definitions | None = None):
        """One evaluation of sensor `name`, carrying its cursor from the previous one, as the daemon does."""
        repository = (definitions or self.definitions).get_repository_def()
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(name),
            repository_def=None if name in RUN_STATUS_SENSORS else repository,
            resources={"landing": LandingResource(path=str(self.settings.landing_dir))},
        )
        result = repository.get_sensor_def(name).evaluate_tick(context)
        self.cursors[name] = result.cursor
        return result

    def automation_tick(self):
        """One evaluation of the automation sensor's conditions (what its tick requests)."""
        sensor = self.definitions.get_repository_def().get_sensor_def(AUTOMATION_SENSOR)
        result = dg.evaluate_automation_conditions(
            defs=self.definitions,
            instance=self.instance,
            cursor=self.automation_cursor,
            asset_selection=sensor.asset_selection,
        )
        self.automation_cursor = result.cursor
        return result


def age(landing: Path, seconds_ago: float = 3600) -> None:
    """Files that landed a while ago: none is still being copied."""
    when = time.time() - seconds_ago
    for path in landing.rglob("*"):
        os.utime(path, (when, when))


@pytest.fixture(scope="module")
def history(tmp_path_factory, settings_under):
    settings = settings_under(tmp_path_factory.mktemp("week_after_week"))
    generate_sample(settings.landing_dir, seed=11, first_week=FIRST_WEEK)
    age(settings.landing_dir)
    with dg.instance_for_test(overrides=yaml.safe_load(INSTANCE_YAML)) as instance:
        summary = run_everything(settings, instance=instance, log=lambda *_: None)
        assert summary.success, f"the main job failed: {summary.run_id}"
        yield History(settings, instance, build_definitions(settings), summary)


def sensor_names(definitions: dg.Definitions) -> list[str]:
    return sorted(sensor.name for sensor in definitions.get_repository_def().sensor_defs)


def test_after_the_main_job_no_sensor_asks_for_anything(history):
    names = sensor_names(history.definitions)
    assert {
        "transaction_arrivals",
        "conversion_arrivals",
        "product_view_arrivals",
        AUTOMATION_SENSOR,
        FAILURE_SENSOR,
        REPORT_SENSOR,
        "purchases_freshness",
        "conversions_freshness",
    } <= set(names)
    repository = history.definitions.get_repository_def()
    assert all(repository.get_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING for name in names)

    for name in names:
        if name == AUTOMATION_SENSOR:
            assert history.automation_tick().total_requested == 0, "the automation's first tick starts nothing"
            continue
        result = history.tick(name)
        assert result.run_requests == [], f"{name} asked for {[r.partition_key or r.tags for r in result.run_requests]}"
    # and the arrival sensors say why: every landed week is as its latest materialization read it
    skipped = history.tick("transaction_arrivals").skip_message
    assert f"every landed week ({len(history.summary.weeks_of('purchases'))})" in skipped, skipped


def _new_day_file(landing: Path, day: date, customer_id: str, product_id: str) -> Path:
    """A day file that lands late, with one purchase of a known customer and product."""
    path = landing / "transactions" / f"d={day.isoformat()}" / "transactions.json"
    assert not path.exists()
    path.parent.mkdir(parents=True)
    line = {
        "customer_id": customer_id,
        "basket": [{"product_id": product_id, "price": 250}],
        "date_of_purchase": f"{day.isoformat()} 12:34:00",
    }
    path.write_text(json.dumps(line) + "\n")
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    return path


def _missing_day(landing: Path) -> date:
    dirt = pl.read_csv(landing / "_truth" / "transaction_dirt.csv")
    return date.fromisoformat(dirt.filter(pl.col("kind") == "missing_day_folder")["day"].item())


def _run_requested(history: History, result) -> list[tuple[dg.AssetKey, str | None]]:
    """Run what an automation tick requested, as the daemon would: one run per partition, checks riding along."""
    graph = history.definitions.resolve_asset_graph()
    by_partition: dict[str | None, set[dg.AssetKey]] = {}
    requested = []
    for key in graph.get_all_asset_keys():
        if not graph.get(key).is_materializable or not result.get_num_requested(key):
            continue
        partitions = sorted(result.get_requested_partitions(key)) if graph.get(key).is_partitioned else [None]
        for partition in partitions:
            by_partition.setdefault(partition, set()).add(key)
            requested.append((key, partition))
    job = history.definitions.resolve_implicit_global_asset_job_def()
    for partition, keys in sorted(by_partition.items(), key=lambda item: item[0] or ""):
        run = job.get_subset(asset_selection=keys).execute_in_process(
            instance=history.instance, partition_key=partition, tags={"dagster/sensor_name": AUTOMATION_SENSOR}
        )
        assert run.success
    return requested


def test_a_new_day_file_runs_exactly_its_week_and_the_gold_tables_follow(history):
    landing, warehouse = history.settings.landing_dir, Warehouse(history.settings.warehouse)
    features_before = warehouse.read("gold.customer_features")
    customer = features_before.sort("purchases").row(0, named=True)  # the least active customer
    product = warehouse.read("silver.products")["product_id"][0]
    day = _missing_day(landing)
    week = monday_of(day)
    _new_day_file(landing, day, customer["customer_id"], product)

    requests = history.tick("transaction_arrivals").run_requests
    assert [r.partition_key for r in requests] == [week.isoformat()]
    assert all(history.tick(name).run_requests == [] for name in ("conversion_arrivals", "product_view_arrivals"))
    weekly = history.definitions.resolve_job_def("weekly_transactions").execute_in_process(
        instance=history.instance,
        partition_key=requests[0].partition_key,
        tags={**requests[0].tags, "dagster/sensor_name": "transaction_arrivals"},
    )
    assert weekly.success and weekly.dagster_run.job_name == "weekly_transactions"
    assert history.tick("transaction_arrivals").run_requests == [], "the week now holds what was read"

    followed = []
    for _ in range(5):  # tick by tick, as the automation sensor does
        result = history.automation_tick()
        if not result.total_requested:
            break
        followed.append(_run_requested(history, result))
    assert followed[0] == [(segmentation.WEEKLY_ROLLUPS, week.isoformat())], "first the week's rollup"
    assert {key for key, _ in followed[1]} == SEGMENTATION_GOLD, "then features, model, segments, metrics, in one run"
    assert len(followed) == 2 and history.automation_tick().total_requested == 0

    features_after = warehouse.read("gold.customer_features")
    changed = features_after.filter(pl.col("customer_id") == customer["customer_id"]).row(0, named=True)
    assert changed["purchases"] == customer["purchases"] + 1
    run_of = {key: history.instance.get_latest_materialization_event(key).run_id for key in SEGMENTATION_GOLD}
    assert len(set(run_of.values())) == 1 and weekly.run_id not in run_of.values()


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Enough of SMTP (RFC 5321) for smtplib: EHLO with AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    messages: ClassVar[list] = []

    def handle(self):
        def reply(line: str):
            self.wfile.write(f"{line}\r\n".encode())

        reply("220 127.0.0.1 test SMTP")
        envelope = {"auth": None, "from": None, "to": [], "data": ""}
        while line := self.rfile.readline().decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                reply("250-127.0.0.1")
                reply("250 AUTH PLAIN")
            elif verb == "AUTH":
                envelope["auth"] = line.split(" ", 2)[2]
                reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                envelope["from"] = line
                reply("250 OK")
            elif verb == "RCPT":
                envelope["to"].append(line)
                reply("250 OK")
            elif verb == "DATA":
                reply("354 End data with <CR><LF>.<CR><LF>")
                data = []
                while (text := self.rfile.readline().decode()) not in (".\r\n", ""):
                    data.append(text)
                envelope["data"] = "".join(data)
                type(self).messages.append(dict(envelope))
                reply("250 OK")
            elif verb == "QUIT":
                reply("221 Bye")
                return
            else:
                reply("250 OK")


@pytest.fixture
def alert_servers():
    """A webhook receiver and an SMTP server, both real, on 127.0.0.1."""
    _Webhook.received, _SmtpHandler.messages = [], []
    webhook = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (webhook, smtp)]
    for thread in threads:
        thread.start()
    try:
        yield f"http://127.0.0.1:{webhook.server_address[1]}/alerts", smtp.server_address[1]
    finally:
        for server in (webhook, smtp):
            server.shutdown()
            server.server_close()


def _failing_run(history: History, settings: Settings):
    """A real failure: the weekly job of a week whose landing folder is gone."""
    definitions = build_definitions(settings)
    history.tick(FAILURE_SENSOR, definitions)  # up to date before the failure, as a running daemon is
    result = definitions.resolve_job_def("weekly_transactions").execute_in_process(
        instance=history.instance,
        partition_key="2018-09-10",
        raise_on_error=False,
    )
    assert not result.success
    history.tick(FAILURE_SENSOR, definitions)
    return result


def test_a_failed_run_produces_an_alert_record_posted_to_the_webhook_and_mailed(history, alert_servers, tmp_path):
    webhook_url, smtp_port = alert_servers
    settings = replace(
        history.settings,
        landing_dir=tmp_path / "gone",
        reports_dir=tmp_path / "reports",
        alerts=AlertSettings(
            webhook_url=webhook_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_to=("data-team@example.com",),
            smtp_user="custpipe",
            smtp_password="s3cret",
        ),
    )
    failed = _failing_run(history, settings)

    (record,) = read_alerts(settings.reports_dir)
    assert record["run_id"] == failed.run_id and record["job"] == "weekly_transactions"
    assert record["weeks"] == {"partition": "2018-09-10"}
    assert any("landing folder" in error for error in record["failed_steps"].values()), record
    assert record["delivered"] == {"webhook": "sent", "email": "sent"}

    ((path, content_type, posted),) = _Webhook.received
    assert path == "/alerts" and content_type == "application/json"
    assert posted["run_id"] == failed.run_id and posted["failed_steps"] == record["failed_steps"]
    assert posted["text"].startswith(f"custpipe: weekly_transactions week 2018-09-10 failed (run {failed.run_id})")
    (mail,) = _SmtpHandler.messages
    assert "data-team@example.com" in mail["to"][0] and mail["auth"]
    assert "Subject: [custpipe] run failed: weekly_transactions week 2018-09-10" in mail["data"]
    assert failed.run_id in mail["data"]

    history.tick(FAILURE_SENSOR, build_definitions(settings))  # the next tick: no second alert for the same run
    assert len(read_alerts(settings.reports_dir)) == 1


def test_with_no_channel_set_or_one_unreachable_the_alert_record_is_still_written(history, tmp_path):
    quiet = replace(history.settings, landing_dir=tmp_path / "gone", reports_dir=tmp_path / "quiet")
    failed = _failing_run(history, quiet)
    (record,) = read_alerts(quiet.reports_dir)
    assert record["run_id"] == failed.run_id and record["delivered"] == {}

    with smtplib.socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = replace(
        quiet,
        reports_dir=tmp_path / "unreachable",
        alerts=AlertSettings(webhook_url=f"http://127.0.0.1:{closed_port}/hook"),
    )
    failed = _failing_run(history, unreachable)
    (record,) = read_alerts(unreachable.reports_dir)
    assert record["run_id"] == failed.run_id and record["delivered"]["webhook"].startswith("failed: ")


def test_a_successful_weekly_run_rewrites_the_check_report(history):
    report = history.settings.reports_dir / "check_report.json"
    history.tick(REPORT_SENSOR)
    report.unlink(missing_ok=True)
    run = history.definitions.resolve_job_def("weekly_transactions").execute_in_process(
        instance=history.instance, partition_key="2018-09-17"
    )
    assert run.success
    assert not report.exists()
    history.tick(REPORT_SENSOR)
    document = json.loads(report.read_text())
    latest = {(r["asset_key"], r["check_name"], r["partition"]): r for r in document["results"]}
    assert latest[("gold/customer_product_purchases", "reconciles", "2018-09-17")]["run_id"] == run.run_id
    assert ("gold/customer_product_purchases", "freshness_check", None) in latest
    assert (history.settings.reports_dir / "check_report.html").exists()


def test_a_weekly_run_launched_as_the_daemon_launches_it_runs_its_steps_in_one_process(history):
    """`dagster job execute` in a new process (the run worker the daemon starts), over the same instance."""
    environment = {**history.settings.environment(), "DAGSTER_HOME": history.instance.root_directory}
    started = time.monotonic()
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "job",
            "execute",
            "-m",
            "custpipe_assets.definitions",
            "-a",
            "defs",
            "-j",
            "weekly_transactions",
            "--tags",
            json.dumps({"dagster/partition": "2018-09-24"}),
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.monotonic() - started
    assert completed.returncode == 0, completed.stderr[-3000:]
    (record,) = history.instance.get_run_records(
        dg.RunsFilter(job_name="weekly_transactions", tags={"dagster/partition": "2018-09-24"})
    )
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    steps = [
        event
        for event in history.instance.all_logs(record.dagster_run.run_id)
        if event.dagster_event and event.dagster_event.event_type == dg.DagsterEventType.STEP_START
    ]
    assert len(steps) >= 4 and len({event.dagster_event.pid for event in steps}) == 1, (
        "every step in the run's own process"
    )
    assert seconds < 120, f"{seconds:.0f} s for one sample week (measured: benchmarks/weekly_runs.py)"


def test_a_backfill_writes_a_progress_line_per_batch_of_weeks_into_the_run_log(history):
    purchases = next(run for run in history.summary.runs if run.domain == "purchases")
    lines = [
        event.user_message
        for event in history.instance.all_logs(purchases.run_id)
        if event.user_message.startswith("bronze.transactions: weeks ")
    ]
    assert lines, "no progress line in the run's log"
    covered = []  # "bronze.transactions: weeks 2018-09-03 .. 2018-10-22 written (8/8 weeks), 5,036 rows"
    for line in lines:
        first, last = date.fromisoformat(line.split()[2]), date.fromisoformat(line.split()[4])
        covered += [week for week in purchases.weeks if first <= week <= last]
    assert covered == purchases.weeks, "every week once, in order"
    total = len(purchases.weeks)
    assert f"({total}/{total} weeks)" in lines[-1]


def _freshness(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> dg.AssetCheckEvaluation:
    key = dg.AssetCheckKey(asset_key, "freshness_check")
    (record,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    return record.event.dagster_event.event_specific_data


def _expected_week(now: datetime) -> date:
    """The week that must be there: the one that ended before the last Monday 06:00 UTC."""
    assert FRESHNESS_DEADLINE_CRON == "0 6 * * 1"
    deadline = datetime.combine(monday_of(now.date()), datetime.min.time(), UTC) + timedelta(hours=6)
    if deadline > now:
        deadline -= timedelta(days=7)
    return deadline.date() - timedelta(days=7)


def test_the_freshness_checks_find_the_2018_sample_stale(history):
    for key in (BRONZE_TRANSACTIONS, CUSTOMER_PRODUCT_PURCHASES, segmentation.WEEKLY_ROLLUPS):
        evaluation = _freshness(history.instance, key)
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
        assert f"partition {_expected_week(datetime.now(UTC)).isoformat()}" in evaluation.description
    assert f"{CUSTOMER_PRODUCT_PURCHASES.to_user_string()}:freshness_check" in history.summary.checks_warned


def test_the_freshness_checks_pass_when_the_week_that_ended_is_there(tmp_path, instance):
    last_week = monday_of(datetime.now(UTC).date()) - timedelta(days=7)
    first_week = last_week - timedelta(weeks=7)  # the small sample's eight weeks end with the week that ended
    generate_customers_landing(tmp_path / "landing", seed=5, scale="small", first_week=first_week)
    settings = Settings(
        landing_dir=tmp_path / "landing",
        warehouse=tmp_path / "w.duckdb",
        first_week=first_week,
        reports_dir=tmp_path / "reports",
    )
    summary = run_everything(settings, instance=instance, domains=["purchases"], log=lambda *_: None)
    assert summary.success and summary.weeks[-1] == last_week
    for key in (BRONZE_TRANSACTIONS, CUSTOMER_PRODUCT_PURCHASES):
        evaluation = _freshness(instance, key)
        assert evaluation.passed, evaluation.description
        assert f"{key.to_user_string()}:freshness_check" in summary.checks_passed
