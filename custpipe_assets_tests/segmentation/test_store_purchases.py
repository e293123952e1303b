"""Store purchase cleaning: hand-made records with known answers, and the real bundled service on 127.0.0.1.

For the service, the expectation is rebuilt in the test with plain Python (phonenumbers, datetime.strptime, a
set of seen records) from the records fetched with plain `requests`, not from the code under test.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import phonenumbers
import polars as pl
import pytest
import requests

from custpipe_assets.sample.purchases_service import start_service
from custpipe_assets.segmentation.purchases_client import PURCHASES_SCHEMA, fetch_purchases
from custpipe_assets.segmentation.store_purchases import (
    MATCHED_SCHEMA,
    STORE_QUARANTINE_REASONS,
    STORE_QUARANTINE_SCHEMA,
    clean_store_purchases,
    match_rate,
)

WEEK = date(2018, 9, 3)
MOBILE_A, MOBILE_B, MOBILE_SHARED, MOBILE_STRANGER = "+447852722458", "+447363230310", "+447905754782", "+447837907609"
CUSTOMERS = pl.DataFrame(
    {
        "customer_id": ["C1", "C2", "C3", "C4", "C5"],
        "mobile_e164": [MOBILE_A, MOBILE_B, MOBILE_SHARED, MOBILE_SHARED, None],
    }
)


def raw(*records: tuple[str | None, str | None, float | None, str]) -> pl.DataFrame:
    rows = [{"mobile": m, "date": d, "amount": a, "store": s, "page": 1} for m, d, a, s in records]
    return pl.DataFrame(rows, schema=PURCHASES_SCHEMA)


def test_each_record_is_matched_or_quarantined_under_its_first_broken_rule() -> None:
    records = raw(
        (MOBILE_A, "2018-09-03T14:05:00Z", 12.5, "Leeds"),  # 1 matched
        ("07363 230310", "2018-09-04", 20.0, "Leeds"),  # 2 matched: national format, date only
        ("0044 7852 722458", "05/09/2018", 7.25, "Leeds"),  # 3 matched: 00 prefix, day-first date
        (MOBILE_A, "2018-09-03T14:05:00Z", 12.5, "Leeds"),  # 4 exact repeat of 1
        (MOBILE_A, "2018-09-03T14:05:00Z", 12.5, "Bristol"),  # 5 another store: not a duplicate
        (MOBILE_A, "yesterday", 3.0, "Leeds"),  # 6
        (MOBILE_A, "2018-09-10T00:00:00Z", 3.0, "Leeds"),  # 7 next week
        (MOBILE_A, "2018-09-02T23:59:00Z", 3.0, "Leeds"),  # 8 previous week
        (MOBILE_A, "2018-09-06T10:00:00Z", None, "Leeds"),  # 9
        (MOBILE_A, "2018-09-06T10:00:00Z", float("nan"), "Leeds"),  # 10
        (MOBILE_A, "2018-09-06T10:00:00Z", 0.0, "Leeds"),  # 11
        (MOBILE_A, "2018-09-06T10:00:00Z", -4.0, "Leeds"),  # 12
        ("12", "2018-09-06T10:00:00Z", 4.0, "Leeds"),  # 13
        (MOBILE_STRANGER, "2018-09-06T10:00:00Z", 4.0, "Leeds"),  # 14 nobody's mobile
        (MOBILE_SHARED, "2018-09-06T10:00:00Z", 4.0, "Leeds"),  # 15 two customers' mobile
        (MOBILE_A, "2018-09-09T23:59:59Z", 1.0, "Leeds"),  # 16 matched: last second of the week
    )
    matched, quarantine = clean_store_purchases(records, WEEK, CUSTOMERS)
    assert matched.schema == MATCHED_SCHEMA and quarantine.schema == STORE_QUARANTINE_SCHEMA
    assert matched.select("record_number", "customer_id", "purchased_at", "amount").rows() == [
        (1, "C1", datetime(2018, 9, 3, 14, 5), 12.5),
        (2, "C2", datetime(2018, 9, 4), 20.0),
        (3, "C1", datetime(2018, 9, 5), 7.25),
        (5, "C1", datetime(2018, 9, 3, 14, 5), 12.5),
        (16, "C1", datetime(2018, 9, 9, 23, 59, 59), 1.0),
    ]
    assert quarantine.select(pl.col("position").str.extract(r"record (\d+)$").cast(pl.Int64), "reason").rows() == [
        (4, "duplicate"),
        (6, "invalid_date"),
        (7, "purchase_outside_week"),
        (8, "purchase_outside_week"),
        (9, "missing_amount"),
        (10, "invalid_amount"),
        (11, "non_positive_amount"),
        (12, "non_positive_amount"),
        (13, "invalid_mobile"),
        (14, "unknown_mobile"),
        (15, "ambiguous_mobile"),
    ]
    assert set(quarantine["reason"]) <= set(STORE_QUARANTINE_REASONS)
    # the served text travels with the rejected record
    assert quarantine.filter(pl.col("position") == "page 1 record 6").select("source_file", "raw").row(0) == (
        "api:/purchases",
        json.dumps({"mobile": MOBILE_A, "date": "yesterday", "amount": 3.0, "store": "Leeds"}, separators=(",", ":")),
    )
    assert match_rate(matched, quarantine) == 5 / 6


def test_a_repeat_of_a_rejected_record_keeps_the_rejection_reason() -> None:
    matched, quarantine = clean_store_purchases(
        raw((MOBILE_A, "2018-09-04", None, "Leeds"), (MOBILE_A, "2018-09-04", None, "Leeds")), WEEK, CUSTOMERS
    )
    assert matched.is_empty()
    assert quarantine["reason"].to_list() == ["missing_amount", "missing_amount"]


def test_empty_week_and_bad_arguments() -> None:
    matched, quarantine = clean_store_purchases(pl.DataFrame(schema=PURCHASES_SCHEMA), WEEK, CUSTOMERS)
    assert matched.is_empty() and quarantine.is_empty()
    assert math.isnan(match_rate(matched, quarantine))
    with pytest.raises(ValueError, match="Monday"):
        clean_store_purchases(raw(), date(2018, 9, 4), CUSTOMERS)
    with pytest.raises(ValueError, match="amount"):
        clean_store_purchases(raw().drop("amount"), WEEK, CUSTOMERS)


# --- the real service ----------------------------------------------------------------------------------------


def valid_mobiles(count: int) -> list[str]:
    """Distinct GB mobiles that libphonenumber calls valid."""
    found: list[str] = []
    candidate = 7_400_000_000
    while len(found) < count:
        candidate += 7_919
        mobile = f"+44{candidate}"
        if phonenumbers.is_valid_number(phonenumbers.parse(mobile)):
            found.append(mobile)
    return found


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A store customer list of 100 customers; returns the landing dir and customer_id by E.164 mobile."""
    landing_dir = tmp_path_factory.mktemp("landing")
    personas = ("high_value", "frequent", "occasional", "dormant")
    mobiles = valid_mobiles(100)
    (landing_dir / "_stand_in").mkdir()
    lines = ["customer_id,mobile_e164,persona"] + [
        f"C{index:03d},{mobile},{personas[index % 4]}" for index, mobile in enumerate(mobiles)
    ]
    (landing_dir / "_stand_in" / "store_customers.csv").write_text("\n".join(lines) + "\n")
    return landing_dir, {mobile: f"C{index:03d}" for index, mobile in enumerate(mobiles)}


def served(base_url: str, start: date, end: date) -> list[dict]:
    body = requests.get(
        f"{base_url}/purchases",
        params={"start_date": start.isoformat(), "end_date": end.isoformat(), "page_size": 5000},
        timeout=10,
    ).json()
    assert body["next_page"] is None
    return body["data"]


def expected_outcome(records: list[dict], week: date, customer_by_mobile: dict[str, str]) -> list[str | None]:
    """Plain-Python verdict per served record: a customer id when it should match, else the reason."""
    seen: set[tuple] = set()
    verdicts: list[str | None] = []
    for record in records:
        moment = None
        for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d", "%d/%m/%Y"):
            try:
                moment = datetime.strptime(record["date"], pattern)
                break
            except ValueError:
                continue
        assert moment is not None and week <= moment.date() < week + timedelta(days=7)
        number = phonenumbers.parse(record["mobile"], "GB")
        mobile = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        key = (record["mobile"], record["date"], record["amount"], record["store"])
        if record["amount"] is None:
            verdicts.append("missing_amount")
        elif key in seen:
            verdicts.append("duplicate")
        elif mobile not in customer_by_mobile:
            verdicts.append("unknown_mobile")
        else:
            verdicts.append(customer_by_mobile[mobile])
        seen.add(key)
    return verdicts


def test_weeks_fetched_from_the_bundled_service_are_fully_accounted_for(landing) -> None:
    landing_dir, customer_by_mobile = landing
    customers = pl.DataFrame(
        {"customer_id": list(customer_by_mobile.values()), "mobile_e164": list(customer_by_mobile)}
    )
    reasons_seen: set[str] = set()
    odd_mobiles_matched = 0
    with start_service(landing_dir, seed=7) as service:
        for week in (WEEK, WEEK + timedelta(days=7)):
            fetched = fetch_purchases(service.url, week, week + timedelta(days=7), page_size=100).frame
            matched, quarantine = clean_store_purchases(fetched, week, customers)
            assert matched.height + quarantine.height == fetched.height

            verdicts = expected_outcome(served(service.url, week, week + timedelta(days=7)), week, customer_by_mobile)
            outcome = dict(matched.select("record_number", "customer_id").rows())
            outcome |= dict(
                quarantine.select(pl.col("position").str.extract(r"record (\d+)$").cast(pl.Int64), "reason").rows()
            )
            assert [outcome[number] for number in range(1, fetched.height + 1)] == verdicts
            reasons_seen |= set(quarantine["reason"])
            served_mobiles = fetched.get_column("mobile").gather(matched.get_column("record_number") - 1)
            odd_mobiles_matched += served_mobiles.filter(~served_mobiles.str.starts_with("+")).len()
            unknown = verdicts.count("unknown_mobile")
            assert match_rate(matched, quarantine) == matched.height / (matched.height + unknown)
    # the service's dirt showed up in two weeks of 100 customers
    assert {"duplicate", "unknown_mobile", "missing_amount"} <= reasons_seen
    assert odd_mobiles_matched > 0
