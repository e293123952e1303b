"""Fixtures of the cluster tests: the weekly purchase counts computed independently from the raw files (the same
oracle as the purchases tests, copied so this folder stands alone), and a local cluster that is always stopped."""

import csv
import json
import re
import shutil
import socket
import tempfile
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from custpipe_assets import cluster as local_cluster
from custpipe_assets.core.settings import Settings
from custpipe_assets.sample import generate_sample

FIRST_WEEK = date(2018, 9, 3)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows by header, whatever the line ends (`\\r\\r\\n`, `\\r\\n`, `\\n`), BOM and spaces around fields dropped."""
    lines = [line for line in re.split(r"\r*\n|\r", path.read_text(encoding="utf-8-sig")) if line.strip()]
    return [{key.strip(): (value or "").strip() for key, value in row.items()} for row in csv.DictReader(lines)]


def expected_counts(landing: Path) -> Counter:
    """The contract computed by hand: json.loads each line, skip what the README says is rejected, count items."""
    customers = {row["customer_id"] for row in _csv_rows(landing / "customers.csv")}
    products = {row["product_id"] for row in _csv_rows(landing / "products.csv")}
    seen, counts = set(), Counter()
    for path in sorted((landing / "transactions").glob("d=*/transactions.json")):
        day = date.fromisoformat(path.parent.name[2:])
        week = day - timedelta(days=day.weekday())
        for raw in path.read_text(encoding="utf-8-sig").splitlines():
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if (
                not isinstance(record, dict)
                or not record.get("customer_id")
                or not isinstance(record.get("basket"), list)
            ):
                continue
            try:
                purchased = datetime.strptime(record.get("date_of_purchase") or "", "%Y-%m-%d %H:%M:%S")
            except ValueError:
                continue
            if not week <= purchased.date() < week + timedelta(days=7):
                continue
            key = (record["customer_id"], record["date_of_purchase"], json.dumps(record["basket"], sort_keys=True))
            if key in seen or not record["basket"]:
                continue
            seen.add(key)
            for item in record["basket"]:
                price = item.get("price")
                if (
                    record["customer_id"] in customers
                    and item.get("product_id") in products
                    and isinstance(price, int | float)
                    and not isinstance(price, bool)
                    and price > 0
                ):
                    counts[(week, record["customer_id"], item["product_id"])] += 1
    return counts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """PostgreSQL, Redis and two Celery workers on free ports, over the generated sample (seed 11); stopped by PID
    whatever the test did. Skipped only when the services are not installed (.ci/run installs them)."""
    missing = local_cluster.missing_services()
    if missing:
        pytest.skip(f"the local cluster needs {', '.join(missing)} (installed by .ci/run; apt-get install them)")
    # not under pytest's tmp folder: that is private to root (0700) and the postgres user must reach its data
    root = Path(tempfile.mkdtemp(prefix="custpipe-cluster-", dir="/tmp"))
    root.chmod(0o755)
    generate_sample(root / "landing", seed=11, first_week=FIRST_WEEK)
    settings = Settings(
        landing_dir=root / "landing",
        warehouse=root / "unused.duckdb",
        first_week=FIRST_WEEK,
        ctr_snapshot=root / "serving" / "ctr.parquet",
        reports_dir=root / "reports",
    )
    try:
        yield local_cluster.up(
            root / "cluster", settings=settings, postgres_port=free_port(), redis_port=free_port(), log=print
        )
    finally:
        local_cluster.down(root / "cluster", log=print)
        shutil.rmtree(root, ignore_errors=True)
