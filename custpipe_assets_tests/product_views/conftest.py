"""Fixtures for the product-views tests: generated landing data, an independent reference computation over the
raw files (stdlib only: json, csv, datetime, decimal), published snapshots and a real uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import csv
import json
import math
import re
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import uvicorn

from custpipe_assets.product_views import transforms
from custpipe_assets.product_views.api import create_app, publish_serving_snapshot
from custpipe_assets.sample.product_views import GenerationSummary, generate_product_views_landing

VIEW_PLATFORMS = ["Android", "MobileWeb", "iOS"]
Counts = dict[tuple[datetime, str, str], list]  # (minute_local, platform, product) -> [views, set of order ids]


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    """Two local days of generated landing data (small, so the whole session stays fast)."""
    landing = tmp_path_factory.mktemp("landing")
    return generate_product_views_landing(landing, seed=11, start=date(2018, 9, 3), days=2, views_per_day=600)


def _platform_of_device(device: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", device.lower())
    return {"ios": "iOS", "iphone": "iOS", "ipad": "iOS", "android": "Android", "mobileweb": "MobileWeb"}.get(
        key, "Other"
    )


def _csv_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows by header, whatever its line ends (`\r\r\n`, `\r\n`, `\n`); no field holds a newline here."""
    lines = [line for line in re.split(r"\r*\n|\r", path.read_text(encoding="utf-8")) if line]
    return list(csv.DictReader(lines))


def reference_counts(amaro_dir: Path) -> Counts:
    """Views and purchasing orders per local minute, platform and product, straight from the raw files.

    A view counts once per distinct event (platform, mpid and the whole event object), never once per event_id."""
    counts: Counts = defaultdict(lambda: [0, set()])
    seen_events: set[tuple[str, str, str]] = set()
    for path in sorted((amaro_dir / "product_views").rglob("*.json"), key=str):
        platform = path.parent.name
        try:
            batches = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # the truncated upload
        for batch in batches:
            for event in batch.get("events") or []:
                data = event.get("data") or {}
                if event.get("event_type") != "custom_event" or data.get("event_name") != "product":
                    continue
                code = (data.get("custom_attributes") or {}).get("codeColor")
                timestamp = data.get("timestamp_unixtime_ms")
                if not code or not re.fullmatch(r"\d+_\d+", code) or not isinstance(timestamp, (int, float)):
                    continue
                identity = (platform, str(batch.get("mpid")), json.dumps(event, sort_keys=True))
                if platform not in VIEW_PLATFORMS or identity in seen_events:
                    continue
                seen_events.add(identity)
                utc = datetime(1970, 1, 1) + timedelta(microseconds=math.floor(timestamp * 1000))
                local = utc - timedelta(hours=3)
                counts[(local.replace(second=0, microsecond=0), platform, code)][0] += 1
    orders: dict[int, tuple[datetime, str]] = {}
    for row in _csv_rows(amaro_dir / "orders.csv"):
        if None in row or None in row.values():
            continue  # ragged line
        try:
            placed = datetime.strptime(row["order_date"], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
        status = row["order_status"].strip().lower().replace("canceled", "cancelled")
        known = {"payment_approved", "invoiced", "shipped", "delivered", "pending_payment", "cancelled", "refunded"}
        order_id = int(row["id"])
        if status not in known or order_id in orders:
            continue
        if status in {"payment_approved", "invoiced", "shipped", "delivered"}:
            orders[order_id] = (placed, _platform_of_device(row["device_type"]))
        else:
            orders[order_id] = (placed, "")  # a real order, not a purchase
    for row in _csv_rows(amaro_dir / "order_items.csv"):
        order = orders.get(int(row["order_id"]))
        if order is None or not order[1] or not re.fullmatch(r"\d+_\d+", row["code_color"].strip()):
            continue
        placed, platform = order
        counts[(placed.replace(second=0), platform, row["code_color"].strip())][1].add(int(row["order_id"]))
    return counts


@pytest.fixture(scope="session")
def reference(generated: GenerationSummary) -> Counts:
    return reference_counts(generated.amaro_dir)


def expected_ctr_rows(
    counts: Counts,
    start: datetime,
    end: datetime,
    aggregation: int,
    platform: str | None = None,
    product: str | None = None,
) -> list[dict]:
    """The API contract computed by hand: every bucket for every series, ctr half-up to 4 decimals or None."""
    platforms = [platform] if platform else VIEW_PLATFORMS
    in_range = {key: value for key, value in counts.items() if start <= key[0] < end and key[1] in platforms}
    products = [product] if product else sorted({key[2] for key in in_range})
    totals: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (minute, key_platform, key_product), (minute_views, orders) in in_range.items():
        bucket = (minute - start) // timedelta(minutes=aggregation)
        totals[(bucket, key_platform, key_product)][0] += minute_views
        totals[(bucket, key_platform, key_product)][1] += len(orders)
    rows = []
    bucket = 0
    while start + bucket * timedelta(minutes=aggregation) < end:
        for series_platform in platforms:
            for series_product in products:
                views, purchases = totals.get((bucket, series_platform, series_product), (0, 0))
                ctr = None
                if views:
                    ctr = float((Decimal(purchases) / Decimal(views)).quantize(Decimal("0.0001"), ROUND_HALF_UP))
                bucket_start = start + bucket * timedelta(minutes=aggregation)
                rows.append(
                    {
                        "startTimestamp": bucket_start.strftime("%Y-%m-%d %H:%M:%S"),
                        "platform": series_platform,
                        "product": series_product,
                        "ctr": ctr,
                    }
                )
        bucket += 1
    return rows


@pytest.fixture(scope="session")
def gold(generated: GenerationSummary):
    amaro = generated.amaro_dir
    orders = transforms.parse_orders_csv(amaro / "orders.csv").rows
    items = transforms.parse_order_items_csv(amaro / "order_items.csv").rows
    views_dir = amaro / "product_views"
    events = transforms.parse_product_view_files(transforms.list_product_view_files(views_dir), views_dir).rows
    views = transforms.build_silver_product_views(events).views
    purchases = transforms.build_silver_purchases(orders, items).purchases
    return transforms.build_gold_ctr_per_minute(views, purchases)


@contextmanager
def running_api(serving_path: Path) -> Iterator[str]:
    """The real app under uvicorn on an ephemeral 127.0.0.1 port, in a thread; yields the base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(serving_path), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture(scope="session")
def live_api(gold, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of an API serving a snapshot published from the generated data."""
    serving_path = tmp_path_factory.mktemp("serving") / "ctr_per_minute.parquet"
    publish_serving_snapshot(gold, serving_path)
    with running_api(serving_path) as base_url:
        yield base_url


@pytest.fixture
def start_api() -> Callable:
    return running_api


@pytest.fixture
def expected_ctr() -> Callable:
    return expected_ctr_rows


@pytest.fixture(scope="session")
def reference_counts_of() -> Callable[[Path], Counts]:
    """The independent raw-file computation, for tests of the Dagster wiring."""
    return reference_counts
