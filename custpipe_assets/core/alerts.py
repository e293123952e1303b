"""Runs nobody watches: a failed run is announced, and every successful weekly run rewrites the check report.

- `run_failure_alerts` (a run-failure sensor, on by default) writes one JSON line per failed run to
  `<CUSTPIPE_REPORTS_DIR>/alerts.jsonl` (always: the record a person or a test can read back), then sends it where
  the settings say: a JSON POST to `CUSTPIPE_ALERT_WEBHOOK_URL`, an email through `CUSTPIPE_SMTP_HOST` to
  `CUSTPIPE_SMTP_TO`; with neither set, a log line says where the record is. A channel that cannot be reached is
  noted in the record and the log, never retried into duplicate alerts.
- `check_report_after_weekly_runs` (a run-status sensor on SUCCESS of the weekly jobs, on by default) rewrites
  `check_report.{md,json,html}` in the reports folder, so the Monday report exists without anyone running
  `custpipe report`.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import dagster as dg
import requests

from custpipe_assets.core.settings import AlertSettings, Settings
from custpipe_assets.reporting.report import write_check_report

ALERTS_FILE = "alerts.jsonl"
FAILURE_SENSOR = "run_failure_alerts"
REPORT_SENSOR = "check_report_after_weekly_runs"
DELIVERY_TIMEOUT_S = 10.0
RANGE_TAGS = ("dagster/partition", "dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def failure_record(run: dg.DagsterRun, message: str, step_errors: dict[str, str]) -> dict:
    """What a person needs to act on a failed run, as one JSON-able dict."""
    weeks = {name.rsplit("/", 1)[-1]: run.tags[name] for name in RANGE_TAGS if name in run.tags}
    record = {
        "alert": "run_failure",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run.run_id,
        "job": run.job_name,
        "weeks": weeks,
        "started_by": next(
            (run.tags[name] for name in ("dagster/sensor_name", "dagster/schedule_name") if name in run.tags),
            "a person",
        ),
        "message": message,
        "failed_steps": step_errors,
        "ui_path": f"/runs/{run.run_id}",
    }
    # one line a chat webhook (Slack, Teams, Mattermost incoming webhooks) shows as the message
    record["text"] = f"custpipe: {run.job_name} {_weeks_text(record)} failed (run {run.run_id}): {message}".replace(
        "  ", " "
    )
    return record


def deliver(record: dict, alerts: AlertSettings) -> dict[str, str]:
    """Send `record` to every configured channel; per channel "sent" or why not (nothing configured: {})."""
    outcome = {}
    if alerts.webhook_url:
        try:
            response = requests.post(alerts.webhook_url, json=record, timeout=DELIVERY_TIMEOUT_S)
            response.raise_for_status()
            outcome["webhook"] = "sent"
        except requests.RequestException as error:
            outcome["webhook"] = f"failed: {error}"
    if alerts.smtp_host:
        try:
            send_email(record, alerts)
            outcome["email"] = "sent"
        except (OSError, smtplib.SMTPException) as error:
            outcome["email"] = f"failed: {error}"
    return outcome


def send_email(record: dict, alerts: AlertSettings) -> None:
    message = EmailMessage()
    message["Subject"] = f"[custpipe] run failed: {record['job']} {_weeks_text(record)}".strip()
    message["From"] = alerts.smtp_from
    message["To"] = ", ".join(alerts.smtp_to)
    message.set_content(
        f"{record['message']}\n\n"
        + "".join(f"step {step}: {error}\n" for step, error in record["failed_steps"].items())
        + f"\nrun {record['run_id']} (in the Dagster UI: {record['ui_path']})\n\n{json.dumps(record, indent=2)}\n"
    )
    connect = smtplib.SMTP_SSL if alerts.smtp_port == 465 else smtplib.SMTP
    with connect(alerts.smtp_host, alerts.smtp_port, timeout=DELIVERY_TIMEOUT_S) as smtp:
        smtp.ehlo()
        if connect is smtplib.SMTP and smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
        if alerts.smtp_user:
            smtp.login(alerts.smtp_user, alerts.smtp_password or "")
        smtp.send_message(message)


def _weeks_text(record: dict) -> str:
    weeks = record["weeks"]
    if "partition" in weeks:
        return f"week {weeks['partition']}"
    if weeks:
        return f"weeks {weeks.get('asset_partition_range_start')} .. {weeks.get('asset_partition_range_end')}"
    return ""


def append_record(reports_dir: Path, record: dict) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / ALERTS_FILE
    with path.open("a", encoding="utf-8") as alerts_file:
        alerts_file.write(json.dumps(record, sort_keys=True) + "\n")
    return path


def read_alerts(reports_dir: Path) -> list[dict]:
    """Every alert record written so far, oldest first."""
    path = reports_dir / ALERTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_alert_sensors(settings: Settings, weekly_jobs: Sequence) -> list[dg.SensorDefinition]:
    """The run-failure alert (every job of the code location) and the report rewrite after each weekly job."""

    @dg.run_failure_sensor(
        name=FAILURE_SENSOR,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Every failed run: a JSON line in the reports folder's alerts.jsonl, then a "
        "webhook POST and/or an email when CUSTPIPE_ALERT_WEBHOOK_URL / "
        "CUSTPIPE_SMTP_HOST are set.",
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
        step_errors = {
            event.step_key or "?": (
                event.event_specific_data.error.message.strip()
                if event.event_specific_data and event.event_specific_data.error
                else event.message
            )
            for event in context.get_step_failure_events()
        }
        record = failure_record(context.dagster_run, context.failure_event.message or "run failed", step_errors)
        record["delivered"] = deliver(record, settings.alerts)
        path = append_record(settings.reports_dir, record)
        if not record["delivered"]:
            context.log.info(
                f"run {record['run_id']} of {record['job']} failed; no alert channel is set "
                f"(CUSTPIPE_ALERT_WEBHOOK_URL, CUSTPIPE_SMTP_HOST): the alert is only in {path}"
            )
        else:
            context.log.info(
                f"run {record['run_id']} of {record['job']} failed: alert {record['delivered']}, recorded in {path}"
            )

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name=REPORT_SENSOR,
        monitored_jobs=list(weekly_jobs),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="After every successful weekly run, rewrites the check report "
        "(check_report.md/.json/.html in CUSTPIPE_REPORTS_DIR).",
    )
    def check_report_after_weekly_runs(context: dg.RunStatusSensorContext) -> None:
        paths = write_check_report(context.instance, settings.reports_dir)
        context.log.info(
            f"run {context.dagster_run.run_id} of {context.dagster_run.job_name}: check report rewritten, {paths.html}"
        )

    return [run_failure_alerts, check_report_after_weekly_runs]
