"""Tests for the customers-domain sample-data generator: formats, determinism, planted dirt and personas.

Every check reads the written files back on its own terms (csv module, json.loads, phonenumbers, hand-written
classification of each transaction line) instead of trusting the generator's bookkeeping, so a wrong manifest
or a wrong format fails here.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import phonenumbers
import pytest

from custpipe_assets.sample.customers import SCALES, Scale, generate_customers_landing

FIRST_WEEK = date(2018, 9, 3)
TINY = Scale(customers=60, products=12, weeks=3, transactions=1_200)
LINE_KINDS = {
    "malformed_json",
    "missing_field",
    "wrong_type",
    "duplicate",
    "unknown_product",
    "unknown_customer",
    "zero_price",
    "negative_price",
    "blank_line",
    "empty_basket",
}
FILE_KINDS = {"empty_day_folder", "missing_day_folder", "crlf_file", "bom_file"}
PERSONA_ORDER_BY_PURCHASES = ["frequent", "high_value", "occasional", "dormant"]
GENDER_SPELLINGS = {"M", "male", "Male", "F", "female", "f", "Woman", "man", ""}
JOINED_AT_PATTERNS = {
    "iso date": r"\d{4}-\d{2}-\d{2}",
    "day first": r"\d{2}/\d{2}/\d{4}",
    "day month name": r"\d{1,2} [A-Z][a-z]{2} \d{4}",
    "compact": r"\d{8}",
    "iso datetime": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}",
}
MOBILE_PATTERNS = {
    "+44 7700 900123": r"\+44 7\d{3} \d{6}",
    "07700900123": r"07\d{9}",
    "0044 7700 900123": r"0044 7\d{3} \d{6}",
    "(07700) 900-123": r"\(07\d{3}\) \d{3}-\d{3}",
}


@dataclass(frozen=True)
class Generated:
    landing: Path
    scale: Scale
    first_week: date
    seconds: float


def _generate(landing: Path, scale: Scale | str, first_week: date = FIRST_WEEK, seed: int = 7) -> Generated:
    started = time.perf_counter()
    generate_customers_landing(landing, seed=seed, scale=scale, first_week=first_week)
    resolved = SCALES[scale] if isinstance(scale, str) else scale
    return Generated(landing, resolved, first_week, time.perf_counter() - started)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    landing = tmp_path_factory.mktemp("small") / "landing"
    started = time.perf_counter()
    generate_customers_landing(landing)  # the defaults: seed 7, "small", week of 2018-09-03
    return Generated(landing, SCALES["small"], FIRST_WEEK, time.perf_counter() - started)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return _generate(tmp_path_factory.mktemp("tiny") / "landing", TINY, first_week=date(2021, 1, 4), seed=11)


@pytest.fixture(params=["small", "tiny"])
def generated(request: pytest.FixtureRequest) -> Generated:
    return request.getfixturevalue(request.param)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _header(path: Path) -> str:
    return path.read_text(encoding="utf-8").split("\n", 1)[0].rstrip("\r")


def _all_bytes(landing: Path) -> dict[str, bytes]:
    return {str(p.relative_to(landing)): p.read_bytes() for p in sorted(landing.rglob("*")) if p.is_file()}


def _days(run: Generated) -> list[date]:
    return [run.first_week + timedelta(days=i) for i in range(run.scale.days)]


def _day_file(run: Generated, day: date) -> Path:
    return run.landing / "transactions" / f"d={day.isoformat()}" / "transactions.json"


def _manifest(run: Generated) -> list[dict[str, str]]:
    return _rows(run.landing / "_truth" / "transaction_dirt.csv")


def _classify(line: str, seen_this_week: set[str], customers: set[str], products: set[str]) -> str | None:
    """What is wrong with a transaction line, judged from the text alone (None: a clean purchase)."""
    if line == "":
        return "blank_line"
    if line in seen_this_week:
        return "duplicate"
    try:
        purchase = json.loads(line)
    except json.JSONDecodeError:
        return "malformed_json"
    basket = purchase["basket"]
    if "customer_id" not in purchase or any("price" not in item for item in basket):
        return "missing_field"
    if not basket:
        return "empty_basket"
    prices = [item["price"] for item in basket]
    if any(not isinstance(price, (int, float)) for price in prices):
        return "wrong_type"
    if purchase["customer_id"] not in customers:
        return "unknown_customer"
    if any(item["product_id"] not in products for item in basket):
        return "unknown_product"
    if any(price == 0 for price in prices):
        return "zero_price"
    if any(price < 0 for price in prices):
        return "negative_price"
    return None


@dataclass(frozen=True)
class ReadBack:
    clean: list[tuple[date, str, dict]]  # (folder day, line, purchase) of every clean line
    dirt: set[tuple[str, int, str]]  # (source_file, 1-based line, kind) found by _classify


def _read_transactions(run: Generated) -> ReadBack:
    customers = {row["customer_id"] for row in _rows(run.landing / "customers.csv")}
    products = {row["product_id"] for row in _rows(run.landing / "products.csv")}
    clean: list[tuple[date, str, dict]] = []
    dirt: set[tuple[str, int, str]] = set()
    seen_this_week: set[str] = set()
    for day in _days(run):
        if day.weekday() == 0:
            seen_this_week = set()
        path = _day_file(run, day)
        if not path.exists():
            continue
        source_file = str(path.relative_to(run.landing))
        for number, line in enumerate(path.read_bytes().decode("utf-8-sig").splitlines(), start=1):
            kind = _classify(line, seen_this_week, customers, products)
            if kind is None:
                clean.append((day, line, json.loads(line)))
            else:
                dirt.add((source_file, number, kind))
            seen_this_week.add(line)
    return ReadBack(clean, dirt)


def test_small_scale_generates_in_under_two_seconds(small: Generated) -> None:
    assert small.seconds < 2.0


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    first = _all_bytes(_generate(tmp_path / "a", TINY).landing)
    again = _all_bytes(_generate(tmp_path / "b", TINY).landing)
    other = _all_bytes(_generate(tmp_path / "c", TINY, seed=8).landing)
    assert first == again
    assert len(first) > 20
    for name in ("customers.csv", "customer_profiles.csv", "transactions/d=2018-09-03/transactions.json"):
        assert first[name] != other[name]


def test_customers_csv_is_in_the_revolve_shape_with_a_few_old_and_bad_scores(generated: Generated) -> None:
    """\\r\\r\\n after every line and whole-number scores 1..10, as the real export; plus planted dirt: one `n/a`,
    one score in the old 0..1 shape, one out of range and one exact duplicate row."""
    path = generated.landing / "customers.csv"
    content = path.read_bytes()
    assert content.endswith(b"\r\r\n") and content.count(b"\n") == content.count(b"\r\r\n")
    lines = content.decode("utf-8").split("\r\r\n")[:-1]
    assert lines[0] == "customer_id,loyalty_score"
    rows = [line.split(",") for line in lines[1:]]
    ids = [customer_id for customer_id, _ in rows]
    assert len(set(ids)) == generated.scale.customers == len(ids) - 1
    assert len(lines) - len(set(lines)) == 1  # the one duplicated row is an exact copy
    assert all(re.fullmatch(r"C\d{6}", customer_id) for customer_id in ids)
    scores = [score for _, score in rows]
    odd = sorted(score for score in scores if not (score.isdigit() and 1 <= int(score) <= 10))
    assert odd == ["0.734", "11", "n/a"]
    assert len({score for score in scores if score not in odd}) >= 7  # most of the scale is used, not a fraction


def test_products_csv_has_unique_ids_and_eight_categories(generated: Generated) -> None:
    path = generated.landing / "products.csv"
    assert _header(path) == "product_id,product_description,product_category"
    rows = _rows(path)
    assert len({row["product_id"] for row in rows}) == len(rows) == generated.scale.products
    assert all(re.fullmatch(r"P\d{4}", row["product_id"]) and row["product_description"] for row in rows)
    assert len({row["product_category"] for row in rows}) == 8


def test_profiles_carry_the_planted_dirt(small: Generated) -> None:
    path = small.landing / "customer_profiles.csv"
    assert _header(path) == "customer_id,name,age,income,mobile,gender,joined_at"
    rows = _rows(path)
    customers = {row["customer_id"] for row in _rows(small.landing / "customers.csv")}
    records_per_customer: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        records_per_customer[row["customer_id"]].append(row)
    assert set(records_per_customer) == customers
    repeated = [records for records in records_per_customer.values() if len(records) > 1]
    assert len(repeated) >= 4
    assert all(records[0] != records[1] for records in repeated)  # same customer, written differently
    assert any("" in records[1].values() or "" in records[0].values() for records in repeated)

    ages = [row["age"] for row in rows]
    assert 0.03 <= ages.count("") / len(rows) <= 0.08
    assert {"-3", "250"} <= set(ages)
    assert all(18 <= int(age) <= 90 for age in ages if age not in {"", "-3", "250"})
    incomes = [row["income"] for row in rows]
    assert 0.03 <= incomes.count("") / len(rows) <= 0.08
    assert {"n/a", "12k"} <= set(incomes)
    assert all(income.isdigit() for income in incomes if income not in {"", "n/a", "12k"})

    genders = {row["gender"] for row in rows}
    assert genders <= GENDER_SPELLINGS
    assert len(genders) >= 7
    joined = [row["joined_at"] for row in rows if row["joined_at"]]
    styles_seen = {name for value in joined for name, rx in JOINED_AT_PATTERNS.items() if re.fullmatch(rx, value)}
    assert styles_seen == set(JOINED_AT_PATTERNS)
    assert all(any(re.fullmatch(rx, value) for rx in JOINED_AT_PATTERNS.values()) for value in joined)
    assert all(datetime.strptime(value[:10], "%Y-%m-%d").date() < FIRST_WEEK for value in joined if value[4] == "-")


def test_every_mobile_is_a_valid_unique_gb_mobile_matching_the_truth(small: Generated) -> None:
    rows = _rows(small.landing / "customer_profiles.csv")
    truth = {row["customer_id"]: row["mobile_e164"] for row in _rows(small.landing / "_truth" / "store_customers.csv")}
    deliberately_bad = {"12", "call me"}
    assert deliberately_bad <= {row["mobile"] for row in rows}
    numbers_per_customer: dict[str, set[str]] = defaultdict(set)
    styles_seen = set()
    for row in rows:
        text = row["mobile"]
        if text in deliberately_bad:
            unparseable = text == "call me"
            with pytest.raises(phonenumbers.NumberParseException) if unparseable else contextlib.nullcontext():
                assert not phonenumbers.is_valid_number(phonenumbers.parse(text, "GB"))
            continue
        if not text:
            continue
        number = phonenumbers.parse(text, "GB")
        assert phonenumbers.is_valid_number(number), text
        assert phonenumbers.region_code_for_number(number) == "GB"
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        styles_seen |= {name for name, rx in MOBILE_PATTERNS.items() if re.fullmatch(rx, text)}
        numbers_per_customer[row["customer_id"]].add(
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        )
    assert styles_seen == set(MOBILE_PATTERNS)
    assert all(len(numbers) == 1 for numbers in numbers_per_customer.values())
    assert all(numbers == {truth[customer]} for customer, numbers in numbers_per_customer.items())
    assert len(set(truth.values())) == len(truth) == small.scale.customers
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(e164)) for e164 in truth.values())


def test_day_folders_cover_the_weeks_with_whole_file_dirt(generated: Generated) -> None:
    run = generated
    file_dirt = {row["kind"]: row for row in _manifest(run) if row["line_number"] == "0"}
    assert set(file_dirt) == FILE_KINDS
    expected_folders = {f"d={day.isoformat()}" for day in _days(run)}
    missing = file_dirt["missing_day_folder"]["day"]
    folders = {p.name for p in (run.landing / "transactions").iterdir()}
    assert folders == expected_folders - {f"d={missing}"}
    for row in file_dirt.values():
        assert row["source_file"] == f"transactions/d={row['day']}/transactions.json"
        assert date.fromisoformat(row["day"]) < run.first_week + timedelta(days=14)

    by_day = {path.parent.name[2:]: path.read_bytes() for path in (run.landing / "transactions").glob("d=*/*")}
    assert len(by_day) == len(folders)
    assert by_day[file_dirt["empty_day_folder"]["day"]] == b""
    crlf = by_day[file_dirt["crlf_file"]["day"]]
    assert crlf.count(b"\r\n") == crlf.count(b"\n") > 20
    bom = by_day[file_dirt["bom_file"]["day"]]
    assert bom.startswith(b"\xef\xbb\xbf")
    for day, content in by_day.items():
        if day != file_dirt["crlf_file"]["day"]:
            assert b"\r" not in content
        if day != file_dirt["bom_file"]["day"]:
            assert not content.startswith(b"\xef\xbb\xbf")
        if day != file_dirt["empty_day_folder"]["day"]:
            assert content.endswith(b"\n")


def test_dirt_manifest_lists_exactly_the_dirty_lines(generated: Generated) -> None:
    manifest = _manifest(generated)
    listed = {
        (row["source_file"], int(row["line_number"]), row["kind"]) for row in manifest if row["line_number"] != "0"
    }
    assert {kind for _, _, kind in listed} == LINE_KINDS
    assert all(date.fromisoformat(row["day"]) < generated.first_week + timedelta(days=14) for row in manifest)
    assert all(row["source_file"].endswith(f"d={row['day']}/transactions.json") for row in manifest)
    assert _read_transactions(generated).dirt == listed


def test_clean_lines_have_the_exact_landing_shape(generated: Generated) -> None:
    clean = _read_transactions(generated).clean
    assert len(clean) == generated.scale.transactions
    shape_text = re.compile(r'\{"customer_id": "C\d{6}", "basket": \[.+\], "date_of_purchase": "[^"]+"\}')
    for day, line, purchase in clean:
        assert shape_text.fullmatch(line)
        assert json.dumps(purchase) == line  # json.dumps writes exactly the landing format
        assert list(purchase) == ["customer_id", "basket", "date_of_purchase"]
        assert 1 <= len(purchase["basket"]) <= 6
        for item in purchase["basket"]:
            assert list(item) == ["product_id", "price"]
            price = item["price"]
            assert type(price) in (int, float) and price > 0 and round(price, 2) == price
        bought_at = datetime.strptime(purchase["date_of_purchase"], "%Y-%m-%d %H:%M:%S")
        assert bought_at.date() == day


def test_personas_are_separable_by_frequency_spend_and_recency(small: Generated) -> None:
    personas = {row["customer_id"]: row["persona"] for row in _rows(small.landing / "_truth" / "personas.csv")}
    shares = {p: list(personas.values()).count(p) / len(personas) for p in PERSONA_ORDER_BY_PURCHASES}
    planned = {"high_value": 0.15, "frequent": 0.35, "occasional": 0.30, "dormant": 0.20}
    assert shares == pytest.approx(planned, abs=0.02)
    store = {row["customer_id"]: row["persona"] for row in _rows(small.landing / "_truth" / "store_customers.csv")}
    assert store == personas

    purchases: dict[str, int] = defaultdict(int)
    spend: dict[str, float] = defaultdict(float)
    last_day: dict[str, date] = {}
    for day, _, purchase in _read_transactions(small).clean:
        customer = purchase["customer_id"]
        purchases[customer] += 1
        spend[customer] += sum(item["price"] for item in purchase["basket"])
        last_day[customer] = max(day, last_day.get(customer, day))
    assert set(purchases) == set(personas)  # everyone bought at least once

    def mean(values: dict[str, float], persona: str) -> float:
        return float(np.mean([values[c] for c, p in personas.items() if p == persona]))

    frequency = [mean(purchases, p) for p in PERSONA_ORDER_BY_PURCHASES]
    assert frequency == sorted(frequency, reverse=True)
    per_purchase = {c: spend[c] / purchases[c] for c in personas}
    others = ("frequent", "occasional", "dormant")
    assert mean(per_purchase, "high_value") > 3 * max(mean(per_purchase, p) for p in others)
    final_week = small.first_week + timedelta(days=small.scale.days - 7)
    assert all(last_day[c] >= final_week for c, p in personas.items() if p == "high_value")
    assert all(last_day[c] < small.first_week + timedelta(days=14) for c, p in personas.items() if p == "dormant")

    # nearest persona centroid on log frequency, log spend per purchase and days since last purchase
    features = {
        c: np.array([np.log(purchases[c]), np.log(per_purchase[c]), (small.first_week - last_day[c]).days / 7])
        for c in personas
    }
    centroids = {p: np.mean([features[c] for c in personas if personas[c] == p], axis=0) for p in shares}
    spread = np.std(list(features.values()), axis=0)

    def nearest(f: np.ndarray) -> str:
        return min(centroids, key=lambda p: float(np.sum(((f - centroids[p]) / spread) ** 2)))

    assert np.mean([nearest(features[c]) == personas[c] for c in personas]) > 0.9


def test_age_income_and_loyalty_lean_with_persona(small: Generated) -> None:
    personas = {row["customer_id"]: row["persona"] for row in _rows(small.landing / "_truth" / "personas.csv")}
    profiles = {row["customer_id"]: row for row in _rows(small.landing / "_truth" / "profiles.csv")}
    loyalty = {
        row["customer_id"]: float(row["loyalty_score"])
        for row in _rows(small.landing / "customers.csv")
        if row["loyalty_score"].isdigit()
    }

    def mean(persona: str, value: Callable[[str], float]) -> float:
        return float(np.mean([value(c) for c, p in personas.items() if p == persona and c in loyalty]))

    def income(customer: str) -> float:
        return int(profiles[customer]["income"])

    def age(customer: str) -> float:
        return int(profiles[customer]["age"])

    assert mean("high_value", income) > 1.5 * mean("dormant", income)
    assert mean("dormant", age) > mean("frequent", age) + 10
    assert mean("high_value", loyalty.__getitem__) > mean("dormant", loyalty.__getitem__) + 0.3


def test_first_week_moves_the_day_folders(tiny: Generated) -> None:
    folders = sorted(p.name for p in (tiny.landing / "transactions").iterdir())
    assert folders[0] == "d=2021-01-04"
    assert folders[-1] == "d=2021-01-24"


def test_refuses_a_landing_dir_that_holds_any_file(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    foreign = landing / "brokerchooser" / "conversions" / "batch1.csv"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("id;session_id\n1;a\n")
    with pytest.raises(FileExistsError, match=re.escape(str(landing))):
        generate_customers_landing(landing, scale=TINY)
    assert sorted(p.name for p in landing.rglob("*")) == ["batch1.csv", "brokerchooser", "conversions"]


def test_an_empty_existing_dir_is_fine(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    summary = generate_customers_landing(tmp_path / "landing", scale=TINY)
    assert summary.purchases == TINY.transactions


def test_overwrite_replaces_only_the_customers_files(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    longer = Scale(customers=60, products=12, weeks=4, transactions=1_200)
    generate_customers_landing(landing, scale=longer)
    foreign = landing / "amaro" / "orders.csv"
    foreign.parent.mkdir()
    foreign.write_text("order_id\n1\n")
    generate_customers_landing(landing, scale=TINY, overwrite=True)
    fresh = _all_bytes(_generate(tmp_path / "fresh", TINY).landing)
    assert _all_bytes(landing) == fresh | {"amaro/orders.csv": b"order_id\n1\n"}


@pytest.mark.parametrize("first_week", [date(2018, 9, 4), date(2018, 9, 9), datetime(2018, 9, 3, 0, 0)])
def test_first_week_must_be_a_monday_date(tmp_path: Path, first_week: date) -> None:
    with pytest.raises(ValueError, match="Monday"):
        generate_customers_landing(tmp_path / "landing", scale=TINY, first_week=first_week)
    assert not (tmp_path / "landing").exists()


def test_unknown_scale_names_and_too_small_scales_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="huge"):
        generate_customers_landing(tmp_path / "landing", scale="huge")
    with pytest.raises(ValueError, match="customers must be >= 20"):
        Scale(customers=5, products=12, weeks=3, transactions=1_200)
    with pytest.raises(ValueError, match="transactions must be >= 420"):
        Scale(customers=60, products=12, weeks=3, transactions=100)
