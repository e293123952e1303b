"""The purchase-history service and its client, over real HTTP on 127.0.0.1 with a hand-made customer list.

Expectations come from outside the code under test: raw `requests` calls instead of the client, phone numbers
normalised with phonenumbers, dates parsed by hand, personas read back from the CSV the test wrote.
"""

from __future__ import annotations

import itertools
import logging
import re
import socket
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
import polars as pl
import pytest
import requests

from custpipe_assets.sample.purchases_service import parse_faults, start_service
from custpipe_assets.segmentation.purchases_client import PurchasesApiError, fetch_purchases

HISTORY_START = date(2018, 9, 3)
RANGE_START = HISTORY_START - timedelta(days=5)
RANGE_END = HISTORY_START + timedelta(days=120)
PERSONAS = ("high_value", "frequent", "occasional", "dormant")
CUSTOMERS_PER_PERSONA = 10
FAST = {"retries": 5, "backoff_factor": 0.0, "timeout_s": 5.0}


def write_customers(landing_dir: Path) -> dict[str, str]:
    """Write `_stand_in/store_customers.csv`; returns persona by E.164 mobile."""
    persona_by_mobile = {}
    lines = ["customer_id,mobile_e164,persona"]
    for index in range(CUSTOMERS_PER_PERSONA * len(PERSONAS)):
        persona = PERSONAS[index % len(PERSONAS)]
        mobile = f"+4477009001{index:02d}"
        persona_by_mobile[mobile] = persona
        lines.append(f"C{index:03d},{mobile},{persona}")
    (landing_dir / "_stand_in").mkdir(parents=True)
    (landing_dir / "_stand_in" / "store_customers.csv").write_text("\n".join(lines) + "\n")
    return persona_by_mobile


def raw_records(base_url: str, start: date, end: date) -> list[dict[str, Any]]:
    """Every served record, paged with plain requests, checking `total` on the way."""
    records: list[dict[str, Any]] = []
    page: int | None = 1
    while page is not None:
        response = requests.get(
            f"{base_url}/purchases",
            params={"start_date": start.isoformat(), "end_date": end.isoformat(), "page": page, "page_size": 5000},
            timeout=10,
        )
        response.raise_for_status()
        body = response.json()
        records.extend(body["data"])
        page = body["next_page"]
    assert len(records) == body["total"]
    return records


def normalised_mobile(mobile: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(mobile, "GB"), phonenumbers.PhoneNumberFormat.E164)


def served_day(text: str) -> date:
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise AssertionError(f"unexpected date format {text!r}")


def as_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.select("mobile", "date", "amount", "store").to_dicts()


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    landing_dir = tmp_path_factory.mktemp("landing")
    return landing_dir, write_customers(landing_dir)


@pytest.fixture(scope="module")
def service(landing: tuple[Path, dict[str, str]]):
    with start_service(landing[0], seed=7) as running:
        yield running


@pytest.fixture(scope="module")
def expected_records(service) -> list[dict[str, Any]]:
    return raw_records(service.url, RANGE_START, RANGE_END)


def purchases_url(base_url: str, **params: Any) -> str:
    query = {"start_date": "2018-09-03", "end_date": "2018-10-03", "page": 1, "page_size": 50} | params
    return f"{base_url}/purchases?" + "&".join(f"{key}={value}" for key, value in query.items() if value is not None)


# --- the service ---------------------------------------------------------------------------------------------


def test_health(service) -> None:
    response = requests.get(f"{service.url}/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_same_request_gives_same_bytes_and_seed_changes_them(landing, service) -> None:
    url = purchases_url(service.url)
    first = requests.get(url, timeout=5).content
    assert requests.get(url, timeout=5).content == first
    with start_service(landing[0], seed=7) as same_seed, start_service(landing[0], seed=8) as other_seed:
        assert requests.get(purchases_url(same_seed.url), timeout=5).content == first
        assert requests.get(purchases_url(other_seed.url), timeout=5).content != first


def test_page_envelope(service, expected_records) -> None:
    total = len(expected_records)
    last_page = -(-total // 50)
    first = requests.get(purchases_url(service.url, start_date=RANGE_START, end_date=RANGE_END), timeout=5).json()
    assert (first["page"], first["page_size"], first["total"], first["next_page"]) == (1, 50, total, 2)
    assert first["data"] == expected_records[:50]
    last = requests.get(
        purchases_url(service.url, start_date=RANGE_START, end_date=RANGE_END, page=last_page), timeout=5
    ).json()
    assert last["next_page"] is None
    assert last["data"] == expected_records[(last_page - 1) * 50 :]
    default_size = requests.get(
        purchases_url(service.url, start_date=RANGE_START, end_date=RANGE_END, page_size=None), timeout=5
    ).json()
    assert default_size["page_size"] == 500 and len(default_size["data"]) == min(500, total)


def test_personas_drive_behaviour(landing, expected_records) -> None:
    persona_by_mobile = landing[1]
    dormant_cutoff = HISTORY_START + timedelta(days=14)
    rows = [
        {
            "persona": persona_by_mobile[normalised_mobile(record["mobile"])],
            "mobile": normalised_mobile(record["mobile"]),
            "day": served_day(record["date"]),
            "amount": record["amount"],
        }
        for record in expected_records
        if normalised_mobile(record["mobile"]) in persona_by_mobile
    ]
    frame = pl.DataFrame(rows)
    assert frame.filter(pl.col("day") < HISTORY_START).is_empty()
    dormant = frame.filter(pl.col("persona") == "dormant")
    assert dormant.height > 0
    assert dormant["day"].max() < dormant_cutoff
    per_customer = frame.group_by("persona", "mobile").agg(
        purchases=pl.len(), spend=pl.col("amount").sum(), mean_amount=pl.col("amount").mean()
    )
    # Customers without purchases count as zero.
    by_persona = {
        persona: {
            "purchases": per_customer.filter(pl.col("persona") == persona)["purchases"].sum() / CUSTOMERS_PER_PERSONA,
            "spend": per_customer.filter(pl.col("persona") == persona)["spend"].sum() / CUSTOMERS_PER_PERSONA,
            "mean_amount": frame.filter(pl.col("persona") == persona)["amount"].mean(),
        }
        for persona in PERSONAS
    }
    assert by_persona["high_value"]["spend"] > 5 * by_persona["occasional"]["spend"]
    assert by_persona["frequent"]["purchases"] > 5 * by_persona["occasional"]["purchases"]
    assert by_persona["frequent"]["mean_amount"] < by_persona["occasional"]["mean_amount"]
    assert by_persona["high_value"]["mean_amount"] > by_persona["occasional"]["mean_amount"]


def test_dirt_is_present_and_rare(landing, expected_records) -> None:
    persona_by_mobile = landing[1]
    total = len(expected_records)
    repeated = sum(a == b for a, b in itertools.pairwise(expected_records))
    null_amounts = sum(record["amount"] is None for record in expected_records)
    date_only = sum(bool(re.fullmatch(r"\d{4}-\d\d-\d\d", record["date"])) for record in expected_records)
    day_first = sum(bool(re.fullmatch(r"\d\d/\d\d/\d{4}", record["date"])) for record in expected_records)
    national = sum(record["mobile"].startswith("07") for record in expected_records)
    double_zero = sum(record["mobile"].startswith("0044 ") for record in expected_records)
    unknown = [
        record["mobile"] for record in expected_records if normalised_mobile(record["mobile"]) not in persona_by_mobile
    ]
    for count in (repeated, null_amounts, date_only, day_first, national, double_zero, len(unknown)):
        assert 0 < count <= 0.04 * total
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(mobile)) for mobile in unknown)
    stores = {record["store"] for record in expected_records}
    assert len(stores) == 6
    assert all(re.fullmatch(r"[A-Z][a-z]+-[A-Z][\w ]+", store) for store in stores)
    assert {"London-Oxford St", "Leeds-Briggate"} <= stores


def test_missing_customer_list_serves_empty_history(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), start_service(tmp_path) as running:
        body = requests.get(purchases_url(running.url), timeout=5).json()
    assert body == {"data": [], "page": 1, "page_size": 50, "total": 0, "next_page": None}
    assert "store_customers.csv is missing" in caplog.text


def test_unknown_persona_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "_stand_in").mkdir()
    (tmp_path / "_stand_in" / "store_customers.csv").write_text(
        "customer_id,mobile_e164,persona\nC1,+447700900001,vip\n"
    )
    with pytest.raises(ValueError, match=r"line 2: unknown persona 'vip'"):
        start_service(tmp_path)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"start_date": None}, "start_date"),
        ({"end_date": "03/10/2018"}, "end_date"),
        ({"start_date": "2018-10-04"}, "end_date"),
        ({"page": 0}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": 5001}, "page_size"),
        ({"page_size": ""}, "page_size"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_get_400_naming_them(service, params: dict[str, Any], parameter: str) -> None:
    response = requests.get(purchases_url(service.url, **params), timeout=5)
    assert response.status_code == 400
    body = response.json()
    assert body["parameter"] == parameter
    assert parameter in body["error"]


def test_fault_spec_is_validated() -> None:
    assert [(step.kind, step.remaining) for step in parse_faults("500:2, timeout:*")] == [("500", 2), ("timeout", None)]
    with pytest.raises(ValueError, match="'418:1'"):
        parse_faults("418:1")
    with pytest.raises(ValueError, match="'500:0'"):
        parse_faults("500:0")


# --- the client ----------------------------------------------------------------------------------------------


def test_small_pages_give_every_record_once(service, expected_records) -> None:
    small = fetch_purchases(service.url, RANGE_START, RANGE_END, page_size=7, **FAST)
    big = fetch_purchases(service.url, RANGE_START, RANGE_END, page_size=5000, **FAST)
    assert small.frame.schema == pl.Schema(
        {"mobile": pl.String, "date": pl.String, "amount": pl.Float64, "store": pl.String, "page": pl.Int64}
    )
    assert as_rows(small.frame) == as_rows(big.frame) == expected_records
    assert small.pages == -(-len(expected_records) // 7) and big.pages == 1
    assert small.records == len(expected_records)
    assert small.frame.group_by("page").len()["len"].max() == 7
    assert small.retries == big.retries == 0


def test_brief_fault_mix_is_survived(landing, expected_records) -> None:
    faults = "500:2,429:1,timeout:1,malformed:1,duplicate_page:1"
    with start_service(landing[0], faults=faults, fault_sleep_s=1.0) as running:
        result = fetch_purchases(running.url, RANGE_START, RANGE_END, page_size=500, **FAST | {"timeout_s": 0.3})
        requests_seen = running.purchase_requests
    assert as_rows(result.frame) == expected_records
    assert result.retry_reasons == {
        "500": 2,
        "429": 1,
        "ReadTimeoutError": 1,
        "malformed body": 1,
        "duplicate page": 1,
    }
    assert requests_seen == result.pages + 6 == result.pages + result.retries


@pytest.mark.parametrize(
    ("faults", "reason", "count"),
    [("500:2", "500", 2), ("429:1", "429", 1), ("503:1", "503", 1), ("malformed:2", "malformed body", 2)],
)
def test_passing_faults_are_retried(landing, expected_records, faults: str, reason: str, count: int) -> None:
    with start_service(landing[0], faults=faults) as running:
        result = fetch_purchases(running.url, RANGE_START, RANGE_END, page_size=500, **FAST)
        requests_seen = running.purchase_requests
    assert as_rows(result.frame) == expected_records
    assert result.retry_reasons == {reason: count}
    assert requests_seen == result.pages + count


def test_read_timeout_is_retried(landing, expected_records) -> None:
    with start_service(landing[0], faults="timeout:1", fault_sleep_s=1.0) as running:
        result = fetch_purchases(running.url, RANGE_START, RANGE_END, page_size=5000, **FAST | {"timeout_s": 0.3})
    assert as_rows(result.frame) == expected_records
    assert result.retry_reasons == {"ReadTimeoutError": 1}


def test_page_served_twice_is_asked_again(landing, expected_records) -> None:
    with start_service(landing[0], faults="duplicate_page:1") as running:
        result = fetch_purchases(running.url, RANGE_START, RANGE_END, page_size=100, **FAST)
    assert as_rows(result.frame) == expected_records
    assert result.retry_reasons == {"duplicate page": 1}


def test_page_served_twice_for_good_is_an_error(landing) -> None:
    with start_service(landing[0], faults="duplicate_page:*") as running:
        with pytest.raises(PurchasesApiError, match=r"page 2: asked for page 2, the body says page 1"):
            fetch_purchases(running.url, RANGE_START, RANGE_END, page_size=100, **FAST)
        assert running.purchase_requests == 3


def test_permanent_malformed_body_is_an_error(landing) -> None:
    with start_service(landing[0], faults="malformed:*") as running:
        with pytest.raises(PurchasesApiError) as error:
            fetch_purchases(running.url, RANGE_START, RANGE_END, **FAST | {"retries": 2})
        assert running.purchase_requests == 3
    message = str(error.value)
    assert running.url + "/purchases?" in message
    assert "page 1" in message and "malformed body after 2 retries" in message and "invalid JSON" in message


def test_permanent_500_is_an_error_naming_url_and_status(landing) -> None:
    with start_service(landing[0], faults="500:*") as running:
        with pytest.raises(PurchasesApiError) as error:
            fetch_purchases(running.url, RANGE_START, RANGE_END, **FAST | {"retries": 3})
        assert running.purchase_requests == 4
    assert f"GET {running.url}/purchases?" in str(error.value)
    assert "HTTP 500 after 3 retries" in str(error.value)


def test_permanent_timeout_is_an_error(landing) -> None:
    with (
        start_service(landing[0], faults="timeout:*", fault_sleep_s=1.0) as running,
        pytest.raises(PurchasesApiError, match=r"page 1 failed .*Read timed out"),
    ):
        fetch_purchases(running.url, RANGE_START, RANGE_END, **FAST | {"retries": 1, "timeout_s": 0.2})


def test_connection_refused_is_retried_then_an_error(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with (
        caplog.at_level(logging.WARNING, logger="urllib3"),
        pytest.raises(PurchasesApiError, match=re.escape(f"GET {url}/purchases page 1 failed")),
    ):
        fetch_purchases(url, RANGE_START, RANGE_END, **FAST | {"retries": 2})
    connection_retries = [record for record in caplog.records if "NewConnectionError" in record.getMessage()]
    assert len(connection_retries) == 2


def test_bad_request_is_not_retried(service) -> None:
    before = service.purchase_requests
    with pytest.raises(PurchasesApiError, match=r"HTTP 400: .*page_size"):
        fetch_purchases(service.url, RANGE_START, RANGE_END, page_size=6000, **FAST)
    assert service.purchase_requests == before + 1
