"""Bronze, silver and gold transforms on small hand-made files with answers worked out by hand, plus the whole
generated dataset checked against a stdlib-only computation over the raw files. The real AMARO shapes (file
names, weeks from event times, colliding ids, `\r\r\n` CSVs) are in test_real_shapes.py."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from custpipe_assets.core.checks import quarantine_check_schema
from custpipe_assets.product_views import transforms as t

ORDERS_HEADER = (
    "id,user_id,order_date,order_subtotal,order_discount,order_total,order_status,payment_type,shipping_cost,"
    "shipping_service,address_city,address_state,utm_source_medium,device_type"
)
ITEMS_HEADER = "id,order_id,sku,quantity,code_color"


def _order(order_id: int, date: str, status: str, device: str) -> str:
    return f"{order_id},7,{date},100.00,0.00,110.00,{status},credit_card,10.00,PAC,Recife,PE,google / cpc,{device}"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _rejects(quarantine: pl.DataFrame) -> list[tuple]:
    """(line_number, position, reason, detail) of each quarantine row, in order."""
    return quarantine.select("line_number", "position", "reason", "detail").rows()


def test_orders_csv_is_typed_with_line_numbers_and_bad_lines_quarantined(tmp_path: Path) -> None:
    text = "\n".join(
        [
            ORDERS_HEADER,
            _order(1, "2018-09-03 10:00:00", "delivered", "iPhone").replace("Recife", '"Brasília, Asa Sul"'),
            _order(2, "2018/09/03", "delivered", "ios"),
            "3,12,2018-09-03 11:00:00,100.00",
            _order(4, "2018-09-03 12:00:00", "delivered", "android")
            .replace("100.00", "abc")
            .replace("Recife", '"Multi\nline city"'),
            "",
            _order(5, "2018-09-03 13:00:00", "shipped", ""),
        ]
    )
    parsed = t.parse_orders_csv(_write(tmp_path / "orders.csv", text + "\n"))

    assert parsed.rows.schema == t.ORDERS_BRONZE_SCHEMA
    assert parsed.rows["id"].to_list() == [1, 5]
    assert parsed.rows["line_number"].to_list() == [2, 8], "the quoted newline makes record 4 span lines 5-6"
    first = parsed.rows.row(0, named=True)
    assert first["order_date"] == datetime(2018, 9, 3, 10, 0, 0)
    assert first["address_city"] == "Brasília, Asa Sul" and first["order_total"] == 110.0
    assert parsed.rows.row(1, named=True)["device_type"] is None, "empty text is missing, not ''"
    assert parsed.quarantine.schema == t.ORDER_REJECTS_SCHEMA
    assert _rejects(parsed.quarantine) == [
        (3, None, "invalid_order_date", "order_date '2018/09/03' is not a YYYY-MM-DD HH:MM:SS timestamp"),
        (4, None, "too_few_fields", None),
        (5, None, "invalid_order_subtotal", "order_subtotal 'abc' is not a number"),
        (7, None, "blank_line", None),
    ]
    assert set(parsed.quarantine["source_file"]) == {str(tmp_path / "orders.csv")}, "named as the caller names it"
    assert parsed.quarantine["raw"].to_list()[1] == "3,12,2018-09-03 11:00:00,100.00"
    assert "Multi\nline city" in parsed.quarantine["raw"].to_list()[2]
    quarantine_check_schema(t.ORDER_REJECT_REASONS, description="order rejects").validate(parsed.quarantine)


def test_a_line_with_several_mistyped_values_is_rejected_under_the_first_and_names_them_all(tmp_path: Path) -> None:
    text = f"{ITEMS_HEADER}\n1,2,A,1,20000001_001\n2,two,A,1.5,20000001_001\n3,2,A,x,20000001_001\n"
    parsed = t.parse_order_items_csv(_write(tmp_path / "items.csv", text), source_file="amaro/order_items.csv")

    assert parsed.rows["id"].to_list() == [1]
    assert parsed.quarantine.select("source_file", "line_number", "reason", "detail").rows() == [
        (
            "amaro/order_items.csv",
            3,
            "invalid_order_id",
            "order_id 'two' is not an integer; quantity '1.5' is not an integer",
        ),
        ("amaro/order_items.csv", 4, "invalid_quantity", "quantity 'x' is not an integer"),
    ]


def test_csv_file_problems_quarantine_the_file_and_an_absent_file_is_empty(tmp_path: Path) -> None:
    absent = t.parse_order_items_csv(tmp_path / "missing.csv", source_file="amaro/order_items.csv")
    assert absent.rows.schema == t.ORDER_ITEMS_BRONZE_SCHEMA and absent.rows.is_empty()
    assert absent.quarantine.rows() == [("amaro/order_items.csv", None, None, "empty_file", "file is absent", "")]

    no_code = t.parse_order_items_csv(_write(tmp_path / "a.csv", "id,order_id,sku,quantity\n1,2,X,1\n"))
    assert no_code.rows.is_empty()
    assert _rejects(no_code.quarantine) == [
        (None, None, "wrong_header", "missing column(s) code_color"),
        (2, None, "wrong_header", None),
    ], "a file in the wrong columns is named once (no line) and each of its records is kept, not dropped"
    assert no_code.quarantine["raw"].to_list() == ["id,order_id,sku,quantity", "1,2,X,1"]

    empty = t.parse_order_items_csv(_write(tmp_path / "b.csv", ""))
    assert _rejects(empty.quarantine) == [(None, None, "empty_file", "no header line")]


PRODUCT = {"custom_event_type": "navigation", "event_name": "product"}


def _view(event_id: int, timestamp, code: str | None = "20005748_001") -> dict:
    attributes = {} if code is None else {"codeColor": code}
    data = {**PRODUCT, "timestamp_unixtime_ms": timestamp, "event_id": event_id, "session_id": -(2**63)}
    return {"data": {**data, "custom_attributes": attributes}, "event_type": "custom_event"}


def _batch(events, mpid: int = 18446744073709551615) -> dict:
    return {"events": events, "mpid": mpid, "batch_id": 9007199254740993, "message_id": "m", "schema_version": 1}


def _landing_views(root: Path) -> Path:
    """Hand-made amaro/product_views folder: every case the parse and the silver rules must handle."""
    views = root / "amaro" / "product_views"
    earlier = 1536029990000
    ios = [
        _batch(
            [
                _view(9223372036854775807, 1536029999999.5),  # 02:59:59.9995 UTC = 23:59:59.999 the day before
                {"event_type": "screen_view", "data": {"screen_name": "Home", "timestamp_unixtime_ms": earlier}},
                {"event_type": "custom_event", "data": {"event_name": "search", "timestamp_unixtime_ms": earlier}},
                _view(2, earlier, code=None),
                _view(3, earlier, code="20005748-001"),
            ]
        ),
        {"events": 5, "mpid": 1},
        _batch([]),
        _batch([_view(4, "soon")]),
        _batch([_view(9223372036854775807, 1536029999999.5)]),  # the same event delivered again
    ]
    _write(views / "iOS" / "2018-09-04_part-001.json", json.dumps(ios))
    android = [_batch([_view(9223372036854775807, 1536030000000)])]  # exactly 03:00:00 UTC = 00:00 local
    _write(views / "Android" / "2018-09-04_part-001.json", json.dumps(android))
    _write(views / "Android" / "2018-09-04_part-002.json", json.dumps(android)[:30])
    _write(views / "Desktop" / "2018-09-04_part-001.json", json.dumps([_batch([_view(5, 1536029990000)])]))
    _write(views / "loose.json", "[]")
    _write(views / "iOS" / "object.json", '{"events": []}')
    _write(views / "iOS" / "empty.json", "  \n")
    (views / "iOS" / "latin1.json").write_bytes('[{"events": [], "mpid": "São Paulo"}]'.encode("latin-1"))
    return views


def test_view_files_parse_to_exact_bronze_rows_and_quarantine_what_cannot_be_read(tmp_path: Path) -> None:
    views = _landing_views(tmp_path)
    files = t.list_product_view_files(views)
    parsed = t.parse_product_view_files(files, views)

    rows = parsed.rows
    assert rows.schema == t.VIEW_EVENTS_BRONZE_SCHEMA
    first = rows.row(0, named=True)
    assert first["source_file"] == "amaro/product_views/Android/2018-09-04_part-001.json", "relative to the landing"
    assert set(rows["week_start"].to_list()) == {date(2018, 9, 3)}
    assert (first["platform_folder"], first["batch_index"], first["event_index"]) == ("Android", 0, 0)
    ios_first = rows.filter(platform_folder="iOS", batch_index=0, event_index=0).row(0, named=True)
    assert ios_first["event_id"] == "9223372036854775807"
    assert ios_first["session_id"] == "-9223372036854775808"
    assert ios_first["mpid"] == "18446744073709551615", "beyond int64, still exact"
    assert ios_first["batch_id"] == "9007199254740993", "2**53 + 1 is not a float64"
    assert ios_first["timestamp_unixtime_ms"] == 1536029999999.5
    assert ios_first["code_color"] == "20005748_001"
    positions = rows.filter(platform_folder="iOS").select("batch_index", "event_index").rows()
    assert positions == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (4, 0)]

    assert parsed.quarantine.schema == t.VIEW_REJECTS_SCHEMA
    assert parsed.quarantine["line_number"].null_count() == parsed.quarantine.height, "JSON has no line numbers"
    quarantine = {
        (Path(source).relative_to("amaro/product_views").as_posix(), position): (reason, detail)
        for source, position, reason, detail in parsed.quarantine.select(
            "source_file", "position", "reason", "detail"
        ).rows()
    }
    reason, detail = quarantine.pop(("Android/2018-09-04_part-002.json", None))
    assert reason == "unreadable_json" and detail
    reason, detail = quarantine.pop(("iOS/latin1.json", None))
    assert reason == "unreadable_json" and "utf-8" in detail.lower()
    assert quarantine == {
        ("loose.json", None): (
            "outside_platform_folder",
            "not inside a platform folder (product_views/<platform>/*.json)",
        ),
        ("iOS/object.json", None): ("not_an_array", "top-level JSON value is not an array of batches"),
        ("iOS/empty.json", None): ("empty_file", "empty file"),
        ("iOS/2018-09-04_part-001.json", "batch 1"): (
            "batch_without_events",
            "batch is not an object with an events array",
        ),
        ("iOS/2018-09-04_part-001.json", "batch 3 event 0"): (
            "invalid_timestamp",
            "timestamp_unixtime_ms 'soon' is not a time (milliseconds since 1970, before year 10000)",
        ),
    }
    raw_batch = parsed.quarantine.filter(position="batch 1")["raw"].item()
    assert json.loads(raw_batch) == {"events": 5, "mpid": 1}
    assert parsed.quarantine.filter(source_file="amaro/product_views/iOS/object.json")["raw"].item() == (
        '{"events": []}'
    ), "a whole file rejected keeps its text as landed"
    quarantine_check_schema(t.VIEW_REJECT_REASONS, weekly=True, description="view rejects").validate(parsed.quarantine)


def test_silver_views_keep_product_views_once_in_local_time_and_count_the_rest(tmp_path: Path) -> None:
    views_dir = _landing_views(tmp_path)
    bronze = t.parse_product_view_files(t.list_product_view_files(views_dir), views_dir).rows
    silver = t.build_silver_product_views(bronze)

    assert silver.views.schema == t.PRODUCT_VIEWS_SILVER_SCHEMA
    kept = silver.views.select("platform", "event_id", "event_time_utc", "event_time_local").rows()
    assert kept == [
        (
            "Android",
            "9223372036854775807",
            datetime(2018, 9, 4, 3, 0, 0, tzinfo=UTC),
            datetime(2018, 9, 4, 0, 0, 0),
        ),
        (
            "iOS",
            "9223372036854775807",
            datetime(2018, 9, 4, 2, 59, 59, 999500, tzinfo=UTC),
            datetime(2018, 9, 3, 23, 59, 59, 999500),
        ),
    ], "same event_id on two platforms are two views; local time is UTC-3, so 02:59:59 UTC is the day before"
    assert silver.quarantine.schema == t.VIEW_QUARANTINE_SCHEMA
    ios = "amaro/product_views/iOS/2018-09-04_part-001.json"
    quarantined = silver.quarantine.select("week_start", "source_file", "line_number", "position", "reason", "detail")
    assert sorted(quarantined.rows(), key=lambda row: row[4]) == [
        (
            date(2018, 9, 3),
            ios,
            None,
            "batch 4 event 0",
            "duplicate_event",
            f"the same event first seen in {ios} batch 0 event 0",
        ),
        (
            date(2018, 9, 3),
            ios,
            None,
            "batch 0 event 4",
            "invalid_code_color",
            "codeColor '20005748-001' is not a product code like 20005748_001",
        ),
        (
            date(2018, 9, 3),
            "amaro/product_views/Desktop/2018-09-04_part-001.json",
            None,
            "batch 0 event 0",
            "unknown_platform",
            "platform folder 'Desktop' is not one of Android, MobileWeb, iOS",
        ),
        (date(2018, 9, 3), ios, None, "batch 0 event 3", "view_without_code_color", "product view without codeColor"),
    ]
    raw = json.loads(silver.quarantine.filter(reason="invalid_code_color")["raw"].item())
    assert (raw["event_id"], raw["code_color"]) == ("3", "20005748-001"), "raw: the event's bronze fields"
    quarantine_check_schema(t.VIEW_QUARANTINE_REASONS, weekly=True, description="view quarantine").validate(
        silver.quarantine
    )
    assert silver.ignored_event_counts.rows() == [
        ("iOS", "custom_event", "search", 1),
        ("iOS", "screen_view", None, 1),
    ]


def test_silver_purchases_keep_purchase_statuses_with_canonical_platforms(tmp_path: Path) -> None:
    orders = [
        ORDERS_HEADER,
        _order(1, "2018-09-03 10:00:30", "delivered", "iPhone"),
        _order(2, "2018-09-03 10:00:00", "CANCELED", "ios"),
        _order(3, "2018-09-03 10:00:00", "Cancelled", "ios"),
        _order(4, "2018-09-03 10:00:00", "refunded", "ios"),
        _order(5, "2018-09-03 10:00:00", "pending_payment", "ios"),
        _order(6, "2018-09-03 10:00:00", "payment_approved", "mobile web"),
        _order(7, "2018-09-03 10:00:00", "shipped", "mobile_web"),
        _order(8, "2018-09-03 10:00:00", "invoiced", "desktop"),
        _order(9, "2018-09-03 10:00:00", "delivered", ""),
        _order(10, "2018-09-03 10:00:00", "em_analise", "ios"),
        _order(1, "2018-09-03 11:00:00", "delivered", "android"),
        _order(12, "2018-09-03 23:59:59", " Delivered ", "ANDROID"),
    ]
    items = [
        ITEMS_HEADER,
        "1,1,A,1,20000001_001",
        "2,1,A,2,20000001_001",
        "3,1,B,1,20000002_001",
        *(f"{order + 100},{order},C,1,20000003_001" for order in range(2, 10)),
        "10,10,C,1,20000003_001",
        "11,99,C,1,20000003_001",
        "12,12,C,1,N/A",
        "13,12,C,1,20000003_001",
        "13,12,C,1,20000004_001",
    ]
    bronze_orders = t.parse_orders_csv(_write(tmp_path / "orders.csv", "\n".join(orders) + "\n")).rows
    bronze_items = t.parse_order_items_csv(_write(tmp_path / "items.csv", "\n".join(items) + "\n")).rows
    silver = t.build_silver_purchases(bronze_orders, bronze_items)

    assert silver.purchases.schema == t.PURCHASES_SILVER_SCHEMA
    got = silver.purchases.select("order_id", "order_item_id", "product", "platform", "order_status").rows()
    assert got == [
        (6, 106, "20000003_001", "MobileWeb", "payment_approved"),
        (7, 107, "20000003_001", "MobileWeb", "shipped"),
        (8, 108, "20000003_001", "Other", "invoiced"),
        (9, 109, "20000003_001", "Other", "delivered"),
        (1, 1, "20000001_001", "iOS", "delivered"),
        (1, 2, "20000001_001", "iOS", "delivered"),
        (1, 3, "20000002_001", "iOS", "delivered"),
        (12, 13, "20000003_001", "Android", "delivered"),
    ]
    first = silver.purchases.filter(order_item_id=1).row(0, named=True)
    assert first["event_time_local"] == datetime(2018, 9, 3, 10, 0, 30)
    assert first["event_time_utc"] == datetime(2018, 9, 3, 13, 0, 30, tzinfo=UTC)
    counts = {row[0]: row[1:] for row in silver.order_status_counts.rows()}
    assert counts == {
        "cancelled": (False, 2, 2),
        "delivered": (True, 3, 5),
        "invoiced": (True, 1, 1),
        "payment_approved": (True, 1, 1),
        "pending_payment": (False, 1, 1),
        "refunded": (False, 1, 1),
        "shipped": (True, 1, 1),
    }
    assert silver.quarantine.schema == t.PURCHASE_QUARANTINE_SCHEMA
    orders_csv, items_csv = str(tmp_path / "orders.csv"), str(tmp_path / "items.csv")
    quarantined = silver.quarantine.select("source_file", "line_number", "position", "reason", "detail").rows()
    assert sorted(quarantined) == [
        (items_csv, 13, None, "orphan_item", "order_id 10 is not a valid order (absent from orders or quarantined)"),
        (items_csv, 14, None, "orphan_item", "order_id 99 is not a valid order (absent from orders or quarantined)"),
        (items_csv, 15, None, "invalid_code_color", "code_color 'N/A' is not a product code like 20005748_001"),
        (items_csv, 17, None, "duplicate_item_id", f"order item id 13 first at {items_csv} line 16"),
        (
            orders_csv,
            11,
            None,
            "unknown_order_status",
            "order_status 'em_analise' is not a known status "
            "(cancelled, delivered, invoiced, payment_approved, pending_payment, refunded, shipped)",
        ),
        (orders_csv, 12, None, "duplicate_order_id", f"order id 1 first at {orders_csv} line 2"),
    ]
    duplicate = json.loads(silver.quarantine.filter(reason="duplicate_order_id")["raw"].item())
    assert (duplicate["id"], duplicate["order_date"], duplicate["device_type"]) == (1, "2018-09-03 11:00:00", "android")
    quarantine_check_schema(t.PURCHASE_QUARANTINE_REASONS, description="purchase quarantine").validate(
        silver.quarantine
    )


def test_gold_counts_views_and_distinct_orders_per_local_minute() -> None:
    views = pl.DataFrame(
        {
            "platform": ["iOS", "iOS", "iOS", "Android"],
            "product": ["P_1", "P_1", "P_1", "P_1"],
            "event_time_local": [
                datetime(2018, 9, 3, 10, 4, 59, 999999),
                datetime(2018, 9, 3, 10, 4, 0),
                datetime(2018, 9, 3, 10, 5, 0),
                datetime(2018, 9, 3, 10, 5, 0),
            ],
        }
    )
    purchases = pl.DataFrame(
        {
            "order_id": [1, 1, 2, 3],
            "platform": ["iOS", "iOS", "iOS", "Other"],
            "product": ["P_1", "P_1", "P_1", "P_2"],
            "event_time_local": [datetime(2018, 9, 3, 10, 4, 30)] * 3 + [datetime(2018, 9, 3, 10, 7, 0)],
        }
    )
    gold = t.build_gold_ctr_per_minute(views, purchases)
    assert gold.schema == t.GOLD_CTR_MINUTE_SCHEMA
    assert gold.rows() == [
        (datetime(2018, 9, 3, 10, 4), "iOS", "P_1", 2, 2),
        (datetime(2018, 9, 3, 10, 5), "Android", "P_1", 1, 0),
        (datetime(2018, 9, 3, 10, 5), "iOS", "P_1", 1, 0),
        (datetime(2018, 9, 3, 10, 7), "Other", "P_2", 0, 1),
    ]


def test_gold_from_generated_data_matches_a_stdlib_computation_over_the_raw_files(gold, reference) -> None:
    expected = sorted(
        (minute, platform, product, views, len(orders))
        for (minute, platform, product), (views, orders) in reference.items()
    )
    assert gold.rows() == expected
    assert gold.filter(pl.col("platform") == "Other")["purchases"].sum() > 0, "desktop orders kept as Other"


def test_absent_sources_give_empty_frames_with_every_layer_schema(tmp_path: Path) -> None:
    views_dir = tmp_path / "amaro" / "product_views"
    events = t.parse_product_view_files(t.list_product_view_files(views_dir), views_dir)
    orders = t.parse_orders_csv(tmp_path / "amaro" / "orders.csv")
    items = t.parse_order_items_csv(tmp_path / "amaro" / "order_items.csv")
    views = t.build_silver_product_views(events.rows)
    purchases = t.build_silver_purchases(orders.rows, items.rows)
    gold = t.build_gold_ctr_per_minute(views.views, purchases.purchases)

    assert events.rows.schema == t.VIEW_EVENTS_BRONZE_SCHEMA and events.quarantine.schema == t.VIEW_REJECTS_SCHEMA
    assert orders.quarantine.schema == items.quarantine.schema == t.ORDER_REJECTS_SCHEMA
    assert views.views.schema == t.PRODUCT_VIEWS_SILVER_SCHEMA and views.quarantine.schema == t.VIEW_QUARANTINE_SCHEMA
    assert views.ignored_event_counts.schema == t.IGNORED_EVENTS_SCHEMA
    assert purchases.purchases.schema == t.PURCHASES_SILVER_SCHEMA
    assert purchases.quarantine.schema == t.PURCHASE_QUARANTINE_SCHEMA
    assert purchases.order_status_counts.schema == t.ORDER_STATUS_COUNTS_SCHEMA
    assert gold.schema == t.GOLD_CTR_MINUTE_SCHEMA
    assert all(frame.is_empty() for frame in (events.rows, views.views, purchases.purchases, gold))
