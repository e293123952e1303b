"""The generator: deterministic for a seed, refuses to clobber, and lands every kind of dirt the pipeline expects."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from custpipe_assets.sample.product_views import generate_product_views_landing

SMALL = {"start": date(2018, 9, 3), "days": 2, "views_per_day": 300}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    generate_product_views_landing(tmp_path / "a", seed=3, **SMALL)
    generate_product_views_landing(tmp_path / "b", seed=3, **SMALL)
    generate_product_views_landing(tmp_path / "c", seed=4, **SMALL)
    first = _digest(tmp_path / "a")
    assert first == _digest(tmp_path / "b")
    assert first != _digest(tmp_path / "c")


def test_refuses_a_non_empty_amaro_folder_unless_overwrite(tmp_path: Path) -> None:
    stale = tmp_path / "amaro" / "product_views" / "iOS" / "2001-01-01_part-001.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("[]")
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_product_views_landing(tmp_path, **SMALL)
    assert stale.exists()
    generate_product_views_landing(tmp_path, overwrite=True, **SMALL)
    assert not stale.exists(), "overwrite replaces the folder, it does not mix old files in"


def test_landing_has_the_expected_layout_proportions_and_dirt(generated) -> None:
    amaro = generated.amaro_dir
    view_files = sorted((amaro / "product_views").rglob("*.json"))
    assert {path.parent.name for path in view_files} == {"iOS", "Android", "MobileWeb"}
    real = [path for path in view_files if re.fullmatch(r"productEvent_\d{8}\.json", path.name)]
    older = [path for path in view_files if re.fullmatch(r"\d{4}-\d{2}-\d{2}_part-\d{3}\.json", path.name)]
    assert len(real) + len(older) == len(view_files) and len(real) > len(older) > 1, "both shapes, mostly real"
    per_platform_day = {(path.parent.name, path.name[:10]) for path in older}
    assert len(older) > len(per_platform_day), "several older-shape part files per platform and day"
    assert len({(path.parent.name, path.name) for path in real}) == len(real), "one real file per platform and day"

    readable, malformed = [], []
    for path in view_files:
        try:
            readable.append(json.loads(path.read_text()))
        except ValueError:
            malformed.append(str(path.relative_to(amaro)))
    assert malformed == generated.malformed_files and len(malformed) == 1

    events = [event for batches in readable for batch in batches for event in batch["events"]]
    product_views = [e for e in events if e["event_type"] == "custom_event" and e["data"]["event_name"] == "product"]
    assert 0.35 < len(product_views) / len(events) < 0.65
    assert {e["event_type"] for e in events} >= {"screen_view", "session_start", "custom_event"}
    assert {e["data"].get("event_name") for e in events if e["event_type"] == "custom_event"} >= {
        "product",
        "search",
        "add_to_cart",
    }
    timestamps = [e["data"]["timestamp_unixtime_ms"] for e in events]
    assert any(isinstance(t, float) and t % 1 for t in timestamps), "fractional milliseconds"
    assert any(isinstance(t, str) for t in timestamps), "a non-numeric timestamp"
    assert any("codeColor" not in e["data"]["custom_attributes"] for e in product_views)

    raw_text = "".join(path.read_text() for path in view_files)
    ids = [int(match) for match in re.findall(r'"(?:session_id|batch_id|mpid)": (-?\d+)', raw_text)]
    assert all(-(2**63) <= value < 2**63 for value in ids)
    assert any(abs(value) > 2**63 - 10**6 for value in ids), "ids at the int64 limits"
    assert any(float(value) != value for value in ids), "ids beyond float precision"
    for batch_id in generated.duplicated_batch_ids:
        assert raw_text.count(f'"batch_id": {batch_id},') == 2, "a batch delivered twice"
    assert len(generated.duplicated_batch_ids) == 2, "once across two part files, once inside a real-shape file"

    orders_bytes = (amaro / "orders.csv").read_bytes()
    assert orders_bytes.count(b"\r\r\n") == orders_bytes.count(b"\n"), "orders.csv ends every line with \\r\\r\\n"
    items_bytes = (amaro / "order_items.csv").read_bytes()
    assert items_bytes.count(b"\r\n") == items_bytes.count(b"\n") and b"\r\r" not in items_bytes
    orders = list(csv.reader(orders_bytes.decode("utf-8").replace("\r\r\n", "\n").splitlines()))
    header, order_rows = orders[0], orders[1:]
    assert header[:3] == ["id", "user_id", "order_date"] and header[-1] == "device_type"
    statuses = {row[6].lower() for row in order_rows if len(row) == len(header)}
    assert statuses >= {"delivered", "canceled", "cancelled", "refunded", "pending_payment", "em_analise"}
    devices = {row[13] for row in order_rows if len(row) == len(header)}
    assert {"mobile web", "mobile_web"} & devices and {"ios", "iPhone"} & devices and "desktop" in devices
    assert any(len(row) != len(header) for row in order_rows), "a ragged line"
    ids = [row[0] for row in order_rows]
    assert len(ids) != len(set(ids)), "a duplicated order line"

    items = list(csv.DictReader(items_bytes.decode("utf-8").splitlines()))
    viewed = {e["data"]["custom_attributes"].get("codeColor") for e in product_views}
    codes = {item["code_color"] for item in items}
    assert any(re.fullmatch(r"\d+_\d+", code) and code not in viewed for code in codes), "never-viewed products"
    assert any(not re.fullmatch(r"\d+_\d+", code) for code in codes), "a malformed code_color"
    assert any(item["order_id"] not in set(ids) for item in items), "an orphan item"
    assert generated.orders == len(order_rows) and generated.order_items == len(items)


def _events_of(path: Path) -> list[tuple[int | None, dict]]:
    return [(batch.get("mpid"), event) for batch in json.loads(path.read_text()) for event in batch["events"]]


def test_real_shape_files_cross_midnight_and_a_week_and_their_event_ids_collide(generated) -> None:
    landing = generated.amaro_dir.parent
    utc_days = {}
    for name in (generated.midnight_crossing_file, generated.week_crossing_file):
        path = landing / name
        assert re.fullmatch(r"productEvent_\d{8}\.json", path.name)
        times = [e["data"]["timestamp_unixtime_ms"] for _, e in _events_of(path)]
        utc_days[name] = {datetime.fromtimestamp(t / 1000, tz=UTC).date() for t in times if isinstance(t, (int, float))}
        named = datetime.strptime(path.name[13:21], "%Y%m%d").date()
        assert named in utc_days[name] and named + timedelta(days=1) in utc_days[name], "events past UTC midnight"
    week_days = utc_days[generated.week_crossing_file]
    assert {day - timedelta(days=day.weekday()) for day in week_days} == {
        min(week_days) - timedelta(days=min(week_days).weekday()),
        max(week_days) - timedelta(days=max(week_days).weekday()),
    } and len({day.isocalendar().week for day in week_days}) == 2, "Sunday -> Monday UTC: two ISO weeks"

    views = [
        (path.parent.name, mpid, json.dumps(event, sort_keys=True), str(event["data"]["event_id"]))
        for path in sorted((generated.amaro_dir / "product_views").rglob("productEvent_*.json"))
        for mpid, event in _events_of(path)
        if event["data"].get("event_name") == "product"
    ]
    by_id: dict[tuple[str, str], set[str]] = {}
    for platform, mpid, content, event_id in views:
        by_id.setdefault((platform, event_id), set()).add(f"{mpid}|{content}")
    assert sum(len(contents) for contents in by_id.values() if len(contents) > 1) > len(views) // 2, (
        "most views share their event_id with a different view"
    )
    assert len({(p, m, c) for p, m, c, _ in views}) < len(views), "and some views are the same event landed twice"
