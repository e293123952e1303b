"""The AMARO product-view export in its real shape, on small files built by hand in temp folders.

The real export is one file per platform and UTC day, `amaro/product_views/<platform>/productEvent_YYYYMMDD.json`:
one JSON array of batches written one batch per line (`[\\n{batch},\\n{batch}\\n]\\n`), each batch
`{"events": [...], "mpid", "timestamp_unixtime_ms", "batch_id", "message_id", "message_type", "schema_version"}`
and each event `{"data": {..., "timestamp_unixtime_ms", "event_id", "session_id"}, "event_type"}` (see
`generate.py`). Its event ids went through a float64, so different events share one id (`9223372036854776000`).

Every expectation below is worked out by hand from the files written here: timestamps are written from UTC wall
clock times, and the weeks (UTC, starting Monday 00:00) are written out as dates.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from custpipe_assets.core.checks import quarantine_check_schema
from custpipe_assets.core.partitions import weekly_partitions
from custpipe_assets.core.warehouse import Warehouse, WarehouseResource
from custpipe_assets.product_views import assets, checks
from custpipe_assets.product_views import transforms as t
from custpipe_assets.product_views.automation import weeks_of_landed_view_file

EARLIER_WEEK = date(2018, 8, 27)
SUNDAY_WEEK = date(2018, 9, 3)  # Monday 2018-09-03 .. Sunday 2018-09-09
MONDAY_WEEK = date(2018, 9, 10)  # starts Monday 2018-09-10 00:00 UTC
# 64-bit ids printed through a float64, as the real export wrote them: many events, one id
COLLIDED_ID = 9223372036854776000
MPID_1, MPID_2 = -6917529027641081856, 4611686018427387904
SESSION_1, SESSION_2, SESSION_3 = 8070450532247928832, -1152921504606846976, 1234567890123456789
P1, P2, P3 = "20005748_001", "20003157_002", "20009912_005"
NOT_A_TIME = "timestamp_unixtime_ms '{}' is not a time (milliseconds since 1970, before year 10000)"


def _ms(utc: str) -> int:
    """Milliseconds since 1970 of a UTC wall-clock time (`2018-09-09 23:55:00`)."""
    return int(datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp()) * 1000


def _utc(text: str, microsecond: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(microsecond=microsecond, tzinfo=UTC)


def _event(event_type: str, ms, event_id: int, session_id: int, **data) -> dict:
    return {
        "data": {**data, "timestamp_unixtime_ms": ms, "event_id": event_id, "session_id": session_id},
        "event_type": event_type,
    }


def _custom(name: str, kind: str, attributes: dict, ms, event_id: int = COLLIDED_ID, session_id: int = SESSION_1):
    data = {"custom_event_type": kind, "event_name": name, "custom_attributes": attributes}
    return _event("custom_event", ms, event_id, session_id, **data)


def _view(product: str, ms, event_id: int = COLLIDED_ID, session_id: int = SESSION_1) -> dict:
    return _custom("product", "navigation", {"codeColor": product}, ms, event_id, session_id)


def _batch(events: list[dict], mpid: int, batch_id: int, message_id: str) -> dict:
    times = [event["data"]["timestamp_unixtime_ms"] for event in events]
    last = max((time for time in times if isinstance(time, (int, float))), default=0)
    return {
        "events": events,
        "mpid": mpid,
        "timestamp_unixtime_ms": last + 1234,
        "batch_id": batch_id,
        "message_id": message_id,
        "message_type": "events",
        "schema_version": 1,
    }


def _export(path: Path, batches: list[dict]) -> Path:
    """The file as the exporter writes it: one batch per line inside one JSON array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "[\n" + ",\n".join(json.dumps(batch, ensure_ascii=False) for batch in batches) + "\n]\n"
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _landed(path: Path, content: bytes, modified_utc: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if modified_utc is not None:
        moment = _ms(modified_utc) / 1000
        os.utime(path, (moment, moment))
    return path


def _views_dir(root: Path) -> Path:
    return root / "amaro" / "product_views"


# Sunday 2018-09-09 -> Monday 2018-09-10 (UTC), one iOS session uploaded in two batches.
MIDNIGHT_BATCHES = [
    _batch(
        [
            _event("session_start", _ms("2018-09-09 23:55:00"), 11, SESSION_1),  # Sunday
            _view(P1, _ms("2018-09-09 23:57:00") + 0.0625),  # Sunday
            _view(P2, _ms("2018-09-10 00:00:00") - 0.5),  # Sunday 23:59:59.9995, the last instant of the week
            _view(P3, _ms("2018-09-10 00:00:00")),  # Monday 00:00:00 exactly: the next week
        ],
        MPID_1,
        101,
        "5f0c1a2e-8f3b-4c3a-9e57-0d7a61c8b001",
    ),
    _batch(
        [
            _custom("search", "search", {"query": "vestido"}, _ms("2018-09-10 00:01:00") + 0.5),  # Monday
            _view(P1, _ms("2018-09-10 00:02:00") + 0.25),  # Monday
            _view(P2, "2018-09-10T00:03:00Z"),  # not milliseconds: quarantined in the file's home week
            _event("session_end", _ms("2018-09-10 00:05:00"), 12, SESSION_1),  # Monday
        ],
        MPID_1,
        102,
        "5f0c1a2e-8f3b-4c3a-9e57-0d7a61c8b002",
    ),
]


def _midnight_file(root: Path) -> Path:
    return _export(_views_dir(root) / "iOS" / "productEvent_20180909.json", MIDNIGHT_BATCHES)


def test_a_file_crossing_sunday_midnight_feeds_both_weeks_by_its_events_own_times(tmp_path: Path) -> None:
    views = _views_dir(tmp_path)
    path = _midnight_file(tmp_path)
    events_in_file = sum(len(batch["events"]) for batch in json.loads(path.read_text()))
    assert events_in_file == 8

    scan = t.scan_view_file(path, views)
    assert (scan.source_file, scan.platform_folder, scan.status, scan.records) == (
        "amaro/product_views/iOS/productEvent_20180909.json",
        "iOS",
        "ok",
        8,
    )
    assert scan.event_weeks == (SUNDAY_WEEK, MONDAY_WEEK)
    assert scan.home_week == SUNDAY_WEEK, "the earliest event's week"
    assert scan.weeks == (SUNDAY_WEEK, MONDAY_WEEK)
    assert t.view_files_by_week(views, [EARLIER_WEEK, SUNDAY_WEEK, MONDAY_WEEK]) == {
        EARLIER_WEEK: [],
        SUNDAY_WEEK: [path],
        MONDAY_WEEK: [path],
    }

    sunday = t.parse_product_view_files([path], views, week=SUNDAY_WEEK)
    monday = t.parse_product_view_files([path], views, week=MONDAY_WEEK)
    assert sunday.rows.select("batch_index", "event_index").rows() == [(0, 0), (0, 1), (0, 2)]
    assert monday.rows.select("batch_index", "event_index").rows() == [(0, 3), (1, 0), (1, 1), (1, 3)]
    assert set(sunday.rows["week_start"]) == {SUNDAY_WEEK} and set(monday.rows["week_start"]) == {MONDAY_WEEK}
    assert sunday.quarantine.rows() == [
        (
            SUNDAY_WEEK,
            "amaro/product_views/iOS/productEvent_20180909.json",
            None,
            "batch 1 event 2",
            "invalid_timestamp",
            NOT_A_TIME.format("2018-09-10T00:03:00Z"),
            sunday.quarantine["raw"].item(),
        ),
    ]
    raw = json.loads(sunday.quarantine["raw"].item())
    assert (raw["mpid"], raw["timestamp_text"], raw["code_color"]) == (str(MPID_1), "2018-09-10T00:03:00Z", P2)
    assert monday.quarantine.is_empty()
    assert sum(r.rows.height + r.quarantine.height for r in (sunday, monday)) == events_in_file, "nothing lost"
    assert t.parse_product_view_files([path], views, week=EARLIER_WEEK).rows.is_empty()

    sunday_views = t.build_silver_product_views(sunday.rows).views
    monday_views = t.build_silver_product_views(monday.rows).views
    assert sunday_views.select("product", "event_time_utc", "event_time_local").rows() == [
        (P1, _utc("2018-09-09 23:57:00", 62), datetime(2018, 9, 9, 20, 57, 0, 62)),
        (P2, _utc("2018-09-09 23:59:59", 999500), datetime(2018, 9, 9, 20, 59, 59, 999500)),
    ]
    assert monday_views.select("product", "event_time_utc", "event_time_local").rows() == [
        (P3, _utc("2018-09-10 00:00:00"), datetime(2018, 9, 9, 21, 0, 0)),
        (P1, _utc("2018-09-10 00:02:00", 250), datetime(2018, 9, 9, 21, 2, 0, 250)),
    ]


def _odd_names_landing(root: Path) -> dict[str, Path]:
    """Files a real landing folder ends up holding besides `productEvent_YYYYMMDD.json`."""
    views = _views_dir(root)
    monday_batch = _batch(
        [
            _view(P3, _ms("2018-09-10 00:10:00") + 0.0625, session_id=SESSION_2),
            _event("screen_view", _ms("2018-09-10 00:11:00"), 21, SESSION_2, screen_name="Home"),
        ],
        MPID_2,
        201,
        "0b7e4c55-3d1f-4b8e-a7a2-6c1f2d9e0201",
    )
    sunday_batch = _batch(
        [_view(P1, _ms("2018-09-09 12:00:00") + 0.5), _view(P2, _ms("2018-09-09 12:01:00"))],
        MPID_1,
        202,
        "0b7e4c55-3d1f-4b8e-a7a2-6c1f2d9e0202",
    )
    text = "[\n" + json.dumps(sunday_batch) + "\n]\n"
    return {
        "real": _export(views / "iOS" / "productEvent_20180909.json", [sunday_batch]),
        # downloaded twice by hand: a browser renamed it; still the real content, so its events are read
        "renamed": _export(views / "iOS" / "export (1).json", [monday_batch]),
        "notes": _landed(views / "iOS" / "notes.txt", b"re-export requested for 2018-09-09\n", "2018-09-12 12:00:00"),
        "finder": _landed(views / "iOS" / ".DS_Store", b"\x00\x00\x00\x01Bud1", "2018-09-12 12:00:00"),
        "gzipped": _landed(
            views / "Android" / "productEvent_20180910.json.gz", gzip.compress(text.encode()), "2018-09-03 08:00:00"
        ),
        "no_platform": _landed(views / "productEvent_20180909.json", text.encode(), "2018-09-12 12:00:00"),
    }


def test_no_file_is_ignored_whatever_its_name_or_place(tmp_path: Path) -> None:
    files = _odd_names_landing(tmp_path)
    views = _views_dir(tmp_path)
    names = {key: path.relative_to(tmp_path).as_posix() for key, path in files.items()}

    inventory = t.view_file_inventory(views)
    assert inventory.select("source_file", "platform_folder", "status", "records", "weeks").rows() == [
        (names["gzipped"], "Android", "not_json", 1, "2018-09-10"),  # the day in its name, not its mtime
        (names["finder"], "iOS", "not_json", 1, "2018-09-10"),  # no day in its name: when it was modified
        (names["renamed"], "iOS", "ok", 2, "2018-09-10"),  # its events' week
        (names["notes"], "iOS", "not_json", 1, "2018-09-10"),
        (names["real"], "iOS", "ok", 2, "2018-09-03"),
        (names["no_platform"], None, "outside_platform_folder", 1, "2018-09-03"),
    ]

    parsed = t.parse_product_view_files(t.list_product_view_files(views), views)
    assert parsed.rows.select("source_file", "event_name", "code_color").rows() == [
        (names["renamed"], "product", P3),
        (names["renamed"], None, None),  # the screen_view: not a product view, still a bronze row
        (names["real"], "product", P1),
        (names["real"], "product", P2),
    ]
    quarantined = parsed.quarantine.select(
        "week_start", "source_file", "line_number", "position", "reason", "detail"
    ).rows()
    assert sorted(quarantined) == [
        (
            SUNDAY_WEEK,
            names["no_platform"],
            None,
            None,
            "outside_platform_folder",
            "not inside a platform folder (product_views/<platform>/*.json)",
        ),
        (
            MONDAY_WEEK,
            names["gzipped"],
            None,
            None,
            "not_json",
            "name does not end in .json: productEvent_20180910.json.gz",
        ),
        (MONDAY_WEEK, names["finder"], None, None, "not_json", "name does not end in .json: .DS_Store"),
        (MONDAY_WEEK, names["notes"], None, None, "not_json", "name does not end in .json: notes.txt"),
    ]
    assert parsed.quarantine.filter(source_file=names["notes"])["raw"].item() == "re-export requested for 2018-09-09\n"

    # every record of every file is in the weeks the weekly bronze runs: 1 + 1 + 2 + 1 + 2 + 1 records
    by_week = t.view_files_by_week(views, [SUNDAY_WEEK, MONDAY_WEEK])
    assert by_week == {
        SUNDAY_WEEK: [files["real"], files["no_platform"]],
        MONDAY_WEEK: [files["gzipped"], files["finder"], files["renamed"], files["notes"]],
    }
    weekly = [t.parse_product_view_files(paths, views, week=week) for week, paths in by_week.items()]
    assert [(r.rows.height, r.quarantine.height) for r in weekly] == [(2, 1), (2, 3)]


def test_the_files_readable_warning_names_every_file_that_was_not_read(tmp_path: Path) -> None:
    files = _odd_names_landing(tmp_path)
    warehouse = tmp_path / "warehouse.duckdb"
    Warehouse(warehouse).replace_table("bronze.product_view_files", t.view_file_inventory(_views_dir(tmp_path)))
    (files_readable,) = [
        check
        for check in checks.build_checks(weekly_partitions(SUNDAY_WEEK))
        if any(key.asset_key == assets.BRONZE_VIEW_FILES and key.name == "files_readable" for key in check.check_keys)
    ]
    result = files_readable(warehouse=WarehouseResource(path=str(warehouse)))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["failure_count"].value == 4
    sample = result.metadata["sample_failing_rows"].value
    for key in ("gzipped", "finder", "notes", "no_platform"):
        assert files[key].relative_to(tmp_path).as_posix() in sample
    for key in ("real", "renamed"):
        assert files[key].relative_to(tmp_path).as_posix() not in sample


def test_the_order_files_readable_warning_names_files_not_their_lines(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "amaro").mkdir(parents=True)
    (landing / "amaro" / "order_items.csv").write_text("id,order_id,sku,quantity\n1,2,X,1\n3,4,Y,1\n")
    orders = t.parse_orders_csv(landing / "amaro" / "orders.csv", source_file="amaro/orders.csv")  # absent
    items = t.parse_order_items_csv(landing / "amaro" / "order_items.csv", source_file="amaro/order_items.csv")
    rejects = pl.concat([orders.quarantine, items.quarantine])
    assert rejects.select("source_file", "line_number", "reason", "detail").rows() == [
        ("amaro/orders.csv", None, "empty_file", "file is absent"),
        ("amaro/order_items.csv", None, "wrong_header", "missing column(s) code_color"),
        ("amaro/order_items.csv", 2, "wrong_header", None),
        ("amaro/order_items.csv", 3, "wrong_header", None),
    ]
    warehouse = tmp_path / "warehouse.duckdb"
    Warehouse(warehouse).replace_table("bronze.order_rejects", rejects)
    (files_readable,) = [
        check
        for check in checks.build_checks(weekly_partitions(SUNDAY_WEEK))
        if any(
            key.asset_key == assets.BRONZE_ORDER_REJECTS and key.name == "files_readable" for key in check.check_keys
        )
    ]
    result = files_readable(warehouse=WarehouseResource(path=str(warehouse)))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["failure_count"].value == 2, "two files, not their two lines"
    sample = result.metadata["sample_failing_rows"].value
    assert "file is absent" in sample and "missing column(s) code_color" in sample

    def schema_result():
        (schema,) = [
            check
            for check in checks.build_checks(weekly_partitions(SUNDAY_WEEK))
            if any(key.asset_key == assets.BRONZE_ORDER_REJECTS and key.name == "schema" for key in check.check_keys)
        ]
        return schema(dg.build_asset_check_context(), warehouse=WarehouseResource(path=str(warehouse)))

    assert schema_result().passed
    unknown = rejects.head(1).with_columns(reason=pl.lit("bad_date"))  # free text or an unlisted code fails
    Warehouse(warehouse).replace_table("bronze.order_rejects", pl.concat([rejects, unknown]))
    result = schema_result()
    assert not result.passed and result.metadata["failure_count"].value == 1


def test_colliding_event_ids_are_kept_and_only_the_same_event_landed_twice_is_a_duplicate(tmp_path: Path) -> None:
    views = _views_dir(tmp_path)
    ten = _ms("2018-09-09 10:00:00")
    first = _batch(
        [
            _view(P1, ten + 0.0625),  # A
            _view(P2, ten + 60000.5),  # B: same id, other product and time
            _view(P1, ten + 0.0625, session_id=SESSION_2),  # C: same id, product and time, other session
        ],
        MPID_1,
        301,
        "9d1e4f0a-1111-4c3a-9e57-0d7a61c8b301",
    )
    second = _batch(
        [
            _view(P3, ten + 120000, session_id=SESSION_3),  # D: same id, another user
            _event("screen_view", ten + 121000, COLLIDED_ID, SESSION_3, screen_name="Cart"),  # not a view
        ],
        MPID_2,
        302,
        "9d1e4f0a-1111-4c3a-9e57-0d7a61c8b302",
    )
    real = views / "iOS" / "productEvent_20180909.json"
    _export(real, [first, second, second])  # the exporter retried: the last batch landed twice
    # B again, delivered in another batch of a re-downloaded file (other batch and message ids, same event)
    again = _export(
        views / "iOS" / "export (1).json",
        [_batch([first["events"][1]], MPID_1, 399, "9d1e4f0a-1111-4c3a-9e57-0d7a61c8b399")],
    )

    bronze = t.parse_product_view_files(t.list_product_view_files(views), views)
    assert bronze.quarantine.is_empty() and bronze.rows.height == 8
    assert set(bronze.rows["event_id"]) == {"9223372036854776000"}, "the id as landed, exact"
    silver = t.build_silver_product_views(bronze.rows)

    kept = silver.views.select("source_file", "batch_index", "event_index", "product", "session_id", "mpid").rows()
    again_name, real_name = (path.relative_to(tmp_path).as_posix() for path in (again, real))
    assert kept == [
        (again_name, 0, 0, P2, str(SESSION_1), str(MPID_1)),  # B, first seen here (files are read in name order)
        (real_name, 0, 0, P1, str(SESSION_1), str(MPID_1)),  # A
        (real_name, 0, 2, P1, str(SESSION_2), str(MPID_1)),  # C
        (real_name, 1, 0, P3, str(SESSION_3), str(MPID_2)),  # D
    ]
    assert silver.views["event_id"].to_list() == ["9223372036854776000"] * 4
    assert silver.quarantine.select(
        "week_start", "source_file", "line_number", "position", "reason", "detail"
    ).rows() == [
        (
            SUNDAY_WEEK,
            real_name,
            None,
            "batch 0 event 1",
            "duplicate_event",
            f"the same event first seen in {again_name} batch 0 event 0",
        ),
        (
            SUNDAY_WEEK,
            real_name,
            None,
            "batch 2 event 0",
            "duplicate_event",
            f"the same event first seen in {real_name} batch 1 event 0",
        ),
    ]
    assert silver.ignored_event_counts.rows() == [("iOS", "screen_view", None, 2)], "ignored events are counted"
    assert silver.views.height + silver.quarantine.height + 2 == bronze.rows.height
    checks.SILVER_VIEWS.validate(silver.views.select(pl.lit(SUNDAY_WEEK).alias("week_start"), pl.all()))
    quarantine_check_schema(t.VIEW_QUARANTINE_REASONS, weekly=True, description="view quarantine").validate(
        silver.quarantine
    )

    # the WARN check counts the four different views that share one id in the week
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    warehouse.replace_week("silver.product_views", SUNDAY_WEEK, silver.views)
    collisions = warehouse.query(checks._COLLISIONS_SQL, {"weeks": [SUNDAY_WEEK]})
    assert collisions.select("week_start", "platform", "event_id", "views", "sessions").rows() == [
        (SUNDAY_WEEK, "iOS", "9223372036854776000", 4, 3)
    ]
    assert (collisions["first_time"].item(), collisions["last_time"].item()) == (
        _utc("2018-09-09 10:00:00", 62),
        _utc("2018-09-09 10:02:00"),
    )


def _mondays_of_event_times(path: Path) -> set[date]:
    """The weeks a file's events fall in, read with json and datetime alone."""
    days = {
        datetime.fromtimestamp(event["data"]["timestamp_unixtime_ms"] / 1000, tz=UTC).date()
        for batch in json.loads(path.read_text(encoding="utf-8"))
        for event in batch["events"]
        if isinstance(event["data"]["timestamp_unixtime_ms"], (int, float))
    }
    return {day - timedelta(days=day.weekday()) for day in days}


def test_the_arrival_sensor_runs_the_weeks_the_events_fall_in(tmp_path: Path) -> None:
    views = _views_dir(tmp_path)
    crossing = _midnight_file(tmp_path)
    # named after Sunday (the name is a hint at most) but every event is Monday's
    late = _export(
        views / "Android" / "productEvent_20180909.json",
        [
            _batch(
                [
                    _view(P1, _ms("2018-09-10 00:10:00") + 0.5, session_id=SESSION_3),
                    _view(P2, _ms("2018-09-10 00:20:00"), session_id=SESSION_3),
                ],
                MPID_2,
                401,
                "7a3c9e10-2222-4c3a-9e57-0d7a61c8b401",
            )
        ],
    )
    empty = _landed(views / "MobileWeb" / "productEvent_20180909.json", b"", "2018-09-12 12:00:00")
    notes = _landed(views / "iOS" / "notes.txt", b"see ticket 42\n", "2018-09-12 12:00:00")
    elsewhere = _export(tmp_path / "amaro" / "exports" / "productEvent_20180909.json", MIDNIGHT_BATCHES)

    assert weeks_of_landed_view_file(crossing) == (SUNDAY_WEEK, MONDAY_WEEK)
    assert set(weeks_of_landed_view_file(crossing)) == _mondays_of_event_times(crossing)
    assert weeks_of_landed_view_file(late) == (MONDAY_WEEK,)
    assert set(weeks_of_landed_view_file(late)) == _mondays_of_event_times(late)
    assert weeks_of_landed_view_file(empty) == (SUNDAY_WEEK,), "no events: the day in its name"
    assert weeks_of_landed_view_file(notes) == (MONDAY_WEEK,), "no events, no day in its name: when it landed"
    assert weeks_of_landed_view_file(elsewhere) == (), "not a product-view file"
    assert weeks_of_landed_view_file(views / "iOS" / "gone.json") == ()

    # the weeks the sensor asks for are exactly the weeks bronze puts the file's records in
    for path in (crossing, late, empty, notes):
        parsed = t.parse_product_view_files([path], views)
        weeks = set(parsed.rows["week_start"]) | set(parsed.quarantine["week_start"])
        assert tuple(sorted(weeks)) == weeks_of_landed_view_file(path), path.name


def test_the_generator_writes_the_real_shape_these_tests_build(generated) -> None:
    """The hand-made files above follow the generator's real-shape files: same name pattern and layout."""
    views = generated.amaro_dir / "product_views"
    real = sorted(path for path in views.rglob("productEvent_*.json"))
    assert real, "the sample holds real-shape files"
    text = real[0].read_text(encoding="utf-8")
    assert text.startswith("[\n{") and text.endswith("}\n]\n")
    batch = json.loads(text)[0]
    assert set(batch) == {
        "events",
        "mpid",
        "timestamp_unixtime_ms",
        "batch_id",
        "message_id",
        "message_type",
        "schema_version",
    }
    assert set(batch["events"][0]) == {"data", "event_type"}
    assert {"timestamp_unixtime_ms", "event_id", "session_id"} <= set(batch["events"][0]["data"])
    assert pl.Series([real[0].name]).str.contains(r"^productEvent_\d{8}\.json$").item()
