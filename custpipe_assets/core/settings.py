"""Settings: the environment variables a user may set, their defaults, and the clear errors when they point nowhere.

Every setting is optional and its default works on a fresh clone (paths are relative to the working directory,
which is the repository root for `make` and `dagster dev`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

LANDING_DIR_ENV = "CUSTPIPE_LANDING_DIR"
WAREHOUSE_ENV = "CUSTPIPE_WAREHOUSE"
FIRST_WEEK_ENV = "CUSTPIPE_FIRST_WEEK"
PURCHASES_API_URL_ENV = "CUSTPIPE_PURCHASES_API_URL"
CTR_SNAPSHOT_ENV = "CUSTPIPE_CTR_SNAPSHOT"
REPORTS_DIR_ENV = "CUSTPIPE_REPORTS_DIR"
DUCKLAKE_DATA_PATH_ENV = "CUSTPIPE_DUCKLAKE_DATA_PATH"
ALERT_WEBHOOK_URL_ENV = "CUSTPIPE_ALERT_WEBHOOK_URL"
SMTP_HOST_ENV = "CUSTPIPE_SMTP_HOST"
SMTP_PORT_ENV = "CUSTPIPE_SMTP_PORT"
SMTP_FROM_ENV = "CUSTPIPE_SMTP_FROM"
SMTP_TO_ENV = "CUSTPIPE_SMTP_TO"
SMTP_USER_ENV = "CUSTPIPE_SMTP_USER"
SMTP_PASSWORD_ENV = "CUSTPIPE_SMTP_PASSWORD"

DEFAULT_LANDING_DIR = "data/landing"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_FIRST_WEEK = date(2018, 9, 3)
DEFAULT_CTR_SNAPSHOT = "data/serving/ctr_per_minute.parquet"
DEFAULT_REPORTS_DIR = "data/reports"


class SettingsError(ValueError):
    """A setting has a value the pipeline cannot use; the message names the setting and the value."""


@dataclass(frozen=True)
class AlertSettings:
    """Where a failed run is announced (`core/alerts.py`): a webhook (JSON POST), email over SMTP, both, or
    neither (then only the alert record under the reports folder and a log line)."""

    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "custpipe@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_user: str | None = None
    smtp_password: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AlertSettings:
        host = environ.get(SMTP_HOST_ENV) or None
        recipients = tuple(
            address.strip() for address in (environ.get(SMTP_TO_ENV) or "").split(",") if address.strip()
        )
        if host and not recipients:
            raise SettingsError(
                f"{SMTP_HOST_ENV}={host!r} is set but {SMTP_TO_ENV} names no recipient (comma-separated addresses)"
            )
        port_text = environ.get(SMTP_PORT_ENV) or "25"
        try:
            port = int(port_text)
        except ValueError as error:
            raise SettingsError(f"{SMTP_PORT_ENV}={port_text!r} is not a port number") from error
        return cls(
            webhook_url=environ.get(ALERT_WEBHOOK_URL_ENV) or None,
            smtp_host=host,
            smtp_port=port,
            smtp_from=environ.get(SMTP_FROM_ENV) or cls.smtp_from,
            smtp_to=recipients,
            smtp_user=environ.get(SMTP_USER_ENV) or None,
            smtp_password=environ.get(SMTP_PASSWORD_ENV) or None,
        )

    def environment(self) -> dict[str, str]:
        """These settings as CUSTPIPE_* variables (only the ones set)."""
        values = {
            ALERT_WEBHOOK_URL_ENV: self.webhook_url,
            SMTP_HOST_ENV: self.smtp_host,
            SMTP_PORT_ENV: str(self.smtp_port) if self.smtp_host else None,
            SMTP_FROM_ENV: self.smtp_from if self.smtp_host else None,
            SMTP_TO_ENV: ",".join(self.smtp_to) or None,
            SMTP_USER_ENV: self.smtp_user,
            SMTP_PASSWORD_ENV: self.smtp_password,
        }
        return {name: value for name, value in values.items() if value}


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    warehouse: Path | str  # a DuckDB file, or a DuckLake target `ducklake:postgres:...` (kept as text)
    first_week: date
    purchases_api_url: str | None = None
    # absolute against the working directory when the settings are made, not when this module was imported
    ctr_snapshot: Path = field(default_factory=lambda: Path(DEFAULT_CTR_SNAPSHOT).absolute())
    reports_dir: Path = field(default_factory=lambda: Path(DEFAULT_REPORTS_DIR).absolute())
    ducklake_data_path: str | None = None  # where a DuckLake warehouse writes its Parquet files
    alerts: AlertSettings = AlertSettings()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        return cls(
            landing_dir=Path(environ.get(LANDING_DIR_ENV) or DEFAULT_LANDING_DIR).absolute(),
            warehouse=warehouse_target(environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE),
            first_week=parse_first_week(environ.get(FIRST_WEEK_ENV) or DEFAULT_FIRST_WEEK.isoformat()),
            purchases_api_url=environ.get(PURCHASES_API_URL_ENV) or None,
            ctr_snapshot=Path(environ.get(CTR_SNAPSHOT_ENV) or DEFAULT_CTR_SNAPSHOT).absolute(),
            reports_dir=Path(environ.get(REPORTS_DIR_ENV) or DEFAULT_REPORTS_DIR).absolute(),
            ducklake_data_path=ducklake_data_path(environ.get(DUCKLAKE_DATA_PATH_ENV)),
            alerts=AlertSettings.from_env(environ),
        )

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) without any CUSTPIPE_* variable, plus these settings as
        CUSTPIPE_* variables: what a child process (a `dagster dev`, a second run) needs to see exactly them."""
        environment = {
            name: value
            for name, value in (os.environ if base is None else base).items()
            if not name.startswith("CUSTPIPE_")
        }
        environment.update(
            {
                LANDING_DIR_ENV: str(self.landing_dir),
                WAREHOUSE_ENV: str(self.warehouse),
                FIRST_WEEK_ENV: self.first_week.isoformat(),
                CTR_SNAPSHOT_ENV: str(self.ctr_snapshot),
                REPORTS_DIR_ENV: str(self.reports_dir),
                **({PURCHASES_API_URL_ENV: self.purchases_api_url} if self.purchases_api_url else {}),
                **({DUCKLAKE_DATA_PATH_ENV: self.ducklake_data_path} if self.ducklake_data_path else {}),
                **self.alerts.environment(),
            }
        )
        return environment


def warehouse_target(value: str) -> Path | str:
    """A DuckDB file path (made absolute) or a DuckLake target `ducklake:...` (README: Beyond one machine), as is."""
    return value if value.startswith("ducklake:") else Path(value).absolute()


def ducklake_data_path(value: str | None) -> str | None:
    """A local data path made absolute (every worker resolves it alike); a URL (s3://...) as written."""
    if not value:
        return None
    return value if "://" in value else str(Path(value).absolute())


def parse_first_week(value: str) -> date:
    """The first weekly partition's Monday; anything else is refused rather than silently shifted."""
    try:
        first_week = date.fromisoformat(value)
    except ValueError as error:
        raise SettingsError(f"{FIRST_WEEK_ENV}={value!r} is not an ISO date (YYYY-MM-DD)") from error
    if first_week.weekday() != 0:
        raise SettingsError(f"{FIRST_WEEK_ENV}={value!r} is a {first_week:%A}; weekly partitions start on a Monday")
    return first_week


def require_landing_dir(landing_dir: Path) -> Path:
    """The landing folder, or one clear error naming the path and the setting."""
    if not landing_dir.is_dir():
        raise SettingsError(
            f"landing folder {landing_dir} does not exist. Set {LANDING_DIR_ENV} to the folder your sources land "
            f"in, or run `custpipe generate` to write the sample data there."
        )
    return landing_dir
