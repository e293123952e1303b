"""The CTR API over real HTTP (uvicorn on 127.0.0.1): values against hand-worked answers and a stdlib computation
over the raw files, time-zone and bucket edges, every bad parameter, snapshot reloads, and answering while another
process holds the DuckDB warehouse's write lock and republishes the snapshot."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from custpipe_assets.product_views import transforms as t
from custpipe_assets.product_views.api import publish_serving_snapshot

REPO_ROOT = Path(__file__).resolve().parents[2]


def _get(base_url: str, **params) -> httpx.Response:
    return httpx.get(f"{base_url}/ctr", params=params, timeout=30)


def _gold(*rows: tuple[datetime, str, str, int, int]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=t.GOLD_CTR_MINUTE_SCHEMA, orient="row")


@pytest.mark.parametrize(
    ("start", "end", "aggregation", "platform"),
    [
        (datetime(2018, 9, 3), datetime(2018, 9, 5), 1440, None),
        (datetime(2018, 9, 3, 18), datetime(2018, 9, 4), 60, "iOS"),
        (datetime(2018, 9, 3, 12), datetime(2018, 9, 4), 97, "Android"),  # the last bucket is cut at the end
    ],
)
def test_ctr_matches_a_computation_over_the_raw_files(
    live_api, reference, expected_ctr, start, end, aggregation, platform
) -> None:
    params = {
        "startTimestamp": f"{start:%Y-%m-%d %H:%M:%S}",
        "endTimestamp": f"{end:%Y-%m-%d %H:%M:%S}",
        "aggregation": aggregation,
    }
    if platform:
        params["platform"] = platform
    response = _get(live_api, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == expected_ctr(reference, start, end, aggregation, platform)
    assert any(row["ctr"] for row in body) and any(row["ctr"] is None for row in body)


def test_ctr_for_one_product_and_platform_matches_the_raw_files(live_api, reference, expected_ctr) -> None:
    views_per_product: dict[str, int] = {}
    for (_, platform, product), (views, _) in reference.items():
        if platform == "MobileWeb":
            views_per_product[product] = views_per_product.get(product, 0) + views
    product = max(views_per_product, key=views_per_product.__getitem__)
    start, end = datetime(2018, 9, 3), datetime(2018, 9, 5)
    for platform in (None, "MobileWeb"):
        params = {"platform": platform} if platform else {}
        response = _get(
            live_api,
            startTimestamp="2018-09-03 00:00:00",
            endTimestamp="2018-09-05 00:00:00",
            aggregation=180,
            product=product,
            **params,
        )
        assert response.status_code == 200, response.text
        assert response.json() == expected_ctr(reference, start, end, 180, platform, product)
        assert len(response.json()) == 16 * (1 if platform else 3), "every bucket of every requested series"


def _edge_landing(root: Path) -> Path:
    """iOS views of one product around local midnight (UTC 03:00), and one iOS purchase at local midnight."""

    def view(event_id: int, timestamp: float) -> dict:
        data = {"event_name": "product", "timestamp_unixtime_ms": timestamp, "event_id": event_id}
        return {"event_type": "custom_event", "data": {**data, "custom_attributes": {"codeColor": "20005748_001"}}}

    utc_midnight_local = 1536030000000  # 2018-09-04 03:00:00 UTC = 2018-09-04 00:00:00 GMT-03:00
    events = [
        view(1, utc_midnight_local - 1000),  # 02:59:59 UTC -> 23:59:59 on the 3rd, local
        view(2, utc_midnight_local),  # exactly on the 00:00 bucket boundary -> the later bucket
        view(3, utc_midnight_local + 5 * 60_000 - 0.5),  # 00:04:59.9995 -> still the 00:00 bucket
        view(4, utc_midnight_local + 5 * 60_000),  # 00:05:00 -> excluded when endTimestamp is 00:05:00
    ]
    views_dir = root / "amaro" / "product_views"
    (views_dir / "iOS").mkdir(parents=True)
    (views_dir / "iOS" / "2018-09-04_part-001.json").write_text(json.dumps([{"events": events, "mpid": 1}]))
    header = "id,user_id,order_date,order_subtotal,order_discount,order_total,order_status,payment_type,"
    header += "shipping_cost,shipping_service,address_city,address_state,utm_source_medium,device_type\n"
    order = "1,9,2018-09-04 00:00:00,10.00,0.00,10.00,delivered,boleto,0.00,PAC,Recife,PE,google / cpc,iPhone\n"
    (root / "amaro" / "orders.csv").write_text(header + order)
    (root / "amaro" / "order_items.csv").write_text("id,order_id,sku,quantity,code_color\n1,1,X,1,20005748_001\n")
    return root / "amaro"


def test_time_zone_and_bucket_edges_end_to_end(tmp_path: Path, start_api) -> None:
    amaro = _edge_landing(tmp_path)
    views_dir = amaro / "product_views"
    bronze = t.parse_product_view_files(t.list_product_view_files(views_dir), views_dir).rows
    orders = t.parse_orders_csv(amaro / "orders.csv").rows
    items = t.parse_order_items_csv(amaro / "order_items.csv").rows
    gold = t.build_gold_ctr_per_minute(
        t.build_silver_product_views(bronze).views, t.build_silver_purchases(orders, items).purchases
    )
    serving_path = publish_serving_snapshot(gold, tmp_path / "serving" / "ctr.parquet")
    with start_api(serving_path) as base_url:
        five = _get(
            base_url,
            startTimestamp="2018-09-03 23:55:00",
            endTimestamp="2018-09-04 00:05:00",
            aggregation=5,
            platform="iOS",
        )
        ten = _get(base_url, startTimestamp="2018-09-03 23:55:00", endTimestamp="2018-09-04 00:06:00", aggregation=10)
        before = _get(
            base_url, startTimestamp="2018-09-03 23:00:00", endTimestamp="2018-09-03 23:59:00", aggregation=60
        )

    assert five.json() == [
        {"startTimestamp": "2018-09-03 23:55:00", "platform": "iOS", "product": "20005748_001", "ctr": 0.0},
        {"startTimestamp": "2018-09-04 00:00:00", "platform": "iOS", "product": "20005748_001", "ctr": 0.5},
    ]
    assert ten.json() == [
        {"startTimestamp": "2018-09-03 23:55:00", "platform": "Android", "product": "20005748_001", "ctr": None},
        {"startTimestamp": "2018-09-03 23:55:00", "platform": "MobileWeb", "product": "20005748_001", "ctr": None},
        {"startTimestamp": "2018-09-03 23:55:00", "platform": "iOS", "product": "20005748_001", "ctr": 0.3333},
        {"startTimestamp": "2018-09-04 00:05:00", "platform": "Android", "product": "20005748_001", "ctr": None},
        {"startTimestamp": "2018-09-04 00:05:00", "platform": "MobileWeb", "product": "20005748_001", "ctr": None},
        {"startTimestamp": "2018-09-04 00:05:00", "platform": "iOS", "product": "20005748_001", "ctr": 0.0},
    ]
    assert before.json() == [], "the 23:59:59 view is outside [23:00, 23:59): no product has data there"


def test_ctr_is_rounded_half_up_to_four_decimals_and_null_without_views(tmp_path: Path, start_api) -> None:
    minute = datetime(2018, 9, 3, 10)
    gold = _gold(
        (minute, "iOS", "20000001_001", 32, 1),
        (minute, "iOS", "20000002_001", 3, 1),
        (minute, "iOS", "20000003_001", 3, 2),
        (minute, "iOS", "20000004_001", 1, 2),
        (minute, "iOS", "20000005_001", 0, 1),
        (minute, "Other", "20000006_001", 0, 5),
    )
    serving_path = publish_serving_snapshot(gold, tmp_path / "ctr.parquet")
    with start_api(serving_path) as base_url:
        response = _get(
            base_url,
            startTimestamp="2018-09-03 10:00:00",
            endTimestamp="2018-09-03 10:01:00",
            aggregation=1,
            platform="iOS",
        )
    assert [(row["product"], row["ctr"]) for row in response.json()] == [
        ("20000001_001", 0.0313),  # 1/32 = 0.03125: half-up, not half-to-even
        ("20000002_001", 0.3333),
        ("20000003_001", 0.6667),
        ("20000004_001", 2.0),
        ("20000005_001", None),
    ]


@pytest.mark.parametrize(
    ("override", "status", "parameter"),
    [
        ({"startTimestamp": None}, 422, "startTimestamp"),
        ({"endTimestamp": None}, 422, "endTimestamp"),
        ({"aggregation": None}, 422, "aggregation"),
        ({"startTimestamp": "yesterday"}, 422, "startTimestamp"),
        ({"startTimestamp": "2018-09-03T10:00:00"}, 422, "startTimestamp"),
        ({"endTimestamp": "2018-02-30 10:00:00"}, 422, "endTimestamp"),
        ({"startTimestamp": "2018-09-03 10:00:30"}, 422, "startTimestamp"),
        ({"endTimestamp": "2018-09-03 10:00:00"}, 422, "endTimestamp"),
        ({"endTimestamp": "2018-09-03 09:00:00"}, 422, "endTimestamp"),
        ({"aggregation": "0"}, 422, "aggregation"),
        ({"aggregation": "-5"}, 422, "aggregation"),
        ({"aggregation": "abc"}, 422, "aggregation"),
        ({"aggregation": "1.5"}, 422, "aggregation"),
        ({"platform": "Desktop"}, 422, "platform"),
        ({"platform": "ios"}, 422, "platform"),
        ({"product": ""}, 422, "product"),
        ({"product": "99999999_999"}, 404, "product"),
        ({"startTimestamp": "2017-01-01 00:00:00", "aggregation": "1"}, 422, "aggregation"),
    ],
)
def test_bad_parameters_get_a_4xx_naming_the_parameter(live_api, override, status, parameter) -> None:
    params = {"startTimestamp": "2018-09-03 10:00:00", "endTimestamp": "2018-09-03 12:00:00", "aggregation": "60"}
    params.update(override)
    response = _get(live_api, **{key: value for key, value in params.items() if value is not None})
    assert response.status_code == status, response.text
    body = response.json()
    assert parameter in [error["parameter"] for error in body["errors"]]
    assert body["detail"].startswith(f"{parameter}: ") or f"; {parameter}: " in body["detail"]


def test_openapi_schema_and_docs_are_served(live_api) -> None:
    schema = httpx.get(f"{live_api}/openapi.json").json()
    operation = schema["paths"]["/ctr"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {"startTimestamp", "endTimestamp", "aggregation", "product", "platform"}
    assert [name for name, parameter in parameters.items() if parameter["required"]] == [
        "startTimestamp",
        "endTimestamp",
        "aggregation",
    ]
    assert set(operation["responses"]) == {"200", "404", "422", "503"}
    docs = httpx.get(f"{live_api}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_missing_snapshot_is_503_and_a_republished_snapshot_is_picked_up(tmp_path: Path, start_api) -> None:
    serving_path = tmp_path / "serving" / "ctr.parquet"
    params = {"startTimestamp": "2018-09-03 10:00:00", "endTimestamp": "2018-09-03 10:01:00", "aggregation": 1}
    with start_api(serving_path) as base_url:
        missing = _get(base_url, **params)
        assert missing.status_code == 503 and "no serving snapshot" in missing.json()["detail"]
        publish_serving_snapshot(_gold((datetime(2018, 9, 3, 10), "iOS", "20000001_001", 4, 1)), serving_path)
        assert _get(base_url, platform="iOS", **params).json()[0]["ctr"] == 0.25
        publish_serving_snapshot(_gold((datetime(2018, 9, 3, 10), "iOS", "20000001_001", 4, 3)), serving_path)
        assert _get(base_url, platform="iOS", **params).json()[0]["ctr"] == 0.75
        garbage = tmp_path / "garbage"
        garbage.write_text("not parquet")
        garbage.replace(serving_path)
        unreadable = _get(base_url, **params)
        assert unreadable.status_code == 503 and "unreadable" in unreadable.json()["detail"]
    publish_serving_snapshot(_gold((datetime(2018, 9, 3, 10), "iOS", "20000001_001", 4, 3)), serving_path)
    assert [path.name for path in serving_path.parent.iterdir()] == ["ctr.parquet"], "no temporary files left"


def test_publishing_a_frame_without_the_gold_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lacks columns \['platform', 'product', 'views', 'purchases'\]"):
        publish_serving_snapshot(pl.DataFrame({"minute_local": [datetime(2018, 9, 3)]}), tmp_path / "ctr.parquet")
    assert not any(tmp_path.iterdir())


# Another process: holds the warehouse's write lock (as a pipeline run does), rewrites a gold table in it and
# republishes the serving snapshot `versions` times with purchases = version out of 100 views.
WRITER_SCRIPT = """
import sys, time
from datetime import datetime
import duckdb, polars as pl
from custpipe_assets.product_views.api import publish_serving_snapshot

warehouse, serving_path, versions = sys.argv[1], sys.argv[2], int(sys.argv[3])
connection = duckdb.connect(warehouse)
connection.execute("SET enable_progress_bar = false")  # it would print to stdout, which the test reads
connection.execute(
    "CREATE TABLE gold_ctr_per_minute (minute_local TIMESTAMP, platform VARCHAR, product VARCHAR,"
    " views BIGINT, purchases BIGINT)"
)
print("locked", flush=True)
for version in range(1, versions + 1):
    frame = pl.DataFrame({"minute_local": [datetime(2018, 9, 3, 10)], "platform": ["iOS"],
                          "product": ["20005748_001"], "views": [100], "purchases": [version]})
    connection.execute("DELETE FROM gold_ctr_per_minute")
    connection.execute("INSERT INTO gold_ctr_per_minute SELECT * FROM frame")
    connection.execute("CHECKPOINT")
    publish_serving_snapshot(frame, serving_path)
    time.sleep(0.01)
print("published", flush=True)
sys.stdin.readline()
"""


def test_api_answers_while_another_process_holds_the_warehouse_lock_and_republishes(tmp_path: Path, start_api) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    serving_path = tmp_path / "serving" / "ctr.parquet"
    publish_serving_snapshot(_gold((datetime(2018, 9, 3, 10), "iOS", "20005748_001", 100, 0)), serving_path)
    versions = 25
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(warehouse), str(serving_path), str(versions)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(warehouse), read_only=True)
        published = threading.Event()

        def wait_for_published() -> None:
            for line in writer.stdout:
                if line.strip() == "published":
                    published.set()

        threading.Thread(target=wait_for_published, daemon=True).start()
        params = {
            "startTimestamp": "2018-09-03 10:00:00",
            "endTimestamp": "2018-09-03 10:01:00",
            "aggregation": 1,
            "platform": "iOS",
        }
        seen: list[float] = []
        with start_api(serving_path) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
            while not published.is_set():
                assert writer.poll() is None, "the writer process died"
                response = client.get("/ctr", params=params)
                assert response.status_code == 200, response.text
                seen.append(response.json()[0]["ctr"])
            final = client.get("/ctr", params=params)
        assert final.json()[0]["ctr"] == versions / 100
        assert len(set(seen)) >= 2, "snapshots replaced mid-stream were picked up"
        assert seen == sorted(seen), "never an older snapshot after a newer one"
        assert set(seen) <= {version / 100 for version in range(versions + 1)}, "never a half-written snapshot"
        assert writer.poll() is None, "the writer still held the lock throughout"
    finally:
        writer.communicate(input="\n", timeout=30)
    assert writer.returncode == 0
