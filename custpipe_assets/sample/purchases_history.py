"""What the bundled purchase-history service serves: the stand-in store system's customer list, and purchase
history generated deterministically from (seed, mobile, day) with the dirt real APIs serve. The HTTP side is
`purchases_service.py`.

Generated history
- Nobody buys before `history_start`. Each customer buys according to their persona (`PERSONA_BEHAVIOURS`);
  dormant customers only during the first `DORMANT_ACTIVE_DAYS` days of the history.
- Records are ordered by day, then customer (in the order of the customer list), then time of day, so paging
  through a range gives every record exactly once.
- Dirt, each about 1-2 % of records: the same record served twice in a row, a null amount, the date as
  `2018-09-03` or `03/09/2018` instead of `2018-09-03T14:05:00Z`, the mobile as `07700 900123` or
  `0044 7700 900123` instead of E.164, and an extra purchase by a valid-looking mobile that is not a customer.
"""

from __future__ import annotations

import csv
import functools
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import phonenumbers

logger = logging.getLogger(__name__)

# The stand-in store system's own customer table (its state, written by the generator): not the answer key in
# `_truth/`, which only tests read.
STORE_CUSTOMERS_PATH = Path("_stand_in") / "store_customers.csv"
STORE_CUSTOMERS_COLUMNS = ("customer_id", "mobile_e164", "persona")
DEFAULT_HISTORY_START = date(2018, 9, 3)
DORMANT_ACTIVE_DAYS = 14
STORES = (
    "London-Oxford St",
    "Leeds-Briggate",
    "Manchester-Arndale",
    "Birmingham-Bullring",
    "Glasgow-Buchanan St",
    "Bristol-Cabot Circus",
)
HOME_STORE_SHARE = 0.8
DUPLICATE_RATE = 0.015
NULL_AMOUNT_RATE = 0.015
ODD_DATE_FORMAT_RATE = 0.02
ODD_MOBILE_FORMAT_RATE = 0.02
UNKNOWN_MOBILE_RATE = 0.015


@dataclass(frozen=True)
class PersonaBehaviour:
    """How often and how much a persona buys: `draws_per_day` chances of `purchase_probability` each."""

    draws_per_day: int
    purchase_probability: float
    min_amount: float
    max_amount: float
    active_days: int | None = None


PERSONA_BEHAVIOURS: dict[str, PersonaBehaviour] = {
    "high_value": PersonaBehaviour(2, 0.12, 80.0, 450.0),
    "frequent": PersonaBehaviour(3, 0.25, 2.0, 20.0),
    "occasional": PersonaBehaviour(1, 0.03, 10.0, 80.0),
    "dormant": PersonaBehaviour(1, 0.15, 5.0, 40.0, active_days=DORMANT_ACTIVE_DAYS),
}


@dataclass(frozen=True)
class StoreCustomer:
    """One row of `_stand_in/store_customers.csv`."""

    customer_id: str
    mobile_e164: str
    persona: str


def read_store_customers(landing_dir: str | Path) -> list[StoreCustomer]:
    """Read the store customer list; a missing file means no customers (with a warning), a bad row is an error."""
    path = Path(landing_dir) / STORE_CUSTOMERS_PATH
    if not path.exists():
        logger.warning("%s is missing: the purchase-history service serves an empty history", path)
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in STORE_CUSTOMERS_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        customers = []
        for line_number, row in enumerate(reader, start=2):
            if row["persona"] not in PERSONA_BEHAVIOURS:
                raise ValueError(
                    f"{path} line {line_number}: unknown persona {row['persona']!r}, "
                    f"expected one of {', '.join(PERSONA_BEHAVIOURS)}"
                )
            if not row["mobile_e164"]:
                raise ValueError(f"{path} line {line_number}: empty mobile_e164")
            customers.append(StoreCustomer(row["customer_id"], row["mobile_e164"], row["persona"]))
    return customers


class PurchaseHistory:
    """Deterministic purchase history: the records of a day depend only on (seed, mobile, day)."""

    def __init__(
        self, customers: Sequence[StoreCustomer], *, seed: int, history_start: date = DEFAULT_HISTORY_START
    ) -> None:
        self.customers = tuple(customers)
        self.seed = seed
        self.history_start = history_start
        self._known_mobiles = frozenset(customer.mobile_e164 for customer in self.customers)
        # Days are cached because paging asks for the same range once per page.
        self._records_on = functools.lru_cache(maxsize=8192)(self._generate_day)

    def records_between(self, start: date, end: date) -> list[dict[str, Any]]:
        """Every record from `start` (inclusive) to `end` (exclusive), in serving order."""
        records: list[dict[str, Any]] = []
        for offset in range((end - start).days):
            records.extend(self._records_on(start + timedelta(days=offset)))
        return records

    def _generate_day(self, day: date) -> tuple[dict[str, Any], ...]:
        if day < self.history_start:
            return ()
        records: list[dict[str, Any]] = []
        for customer in self.customers:
            records.extend(self._customer_day(customer, day))
        return tuple(records)

    def _customer_day(self, customer: StoreCustomer, day: date) -> list[dict[str, Any]]:
        behaviour = PERSONA_BEHAVIOURS[customer.persona]
        if behaviour.active_days is not None and (day - self.history_start).days >= behaviour.active_days:
            return []
        rng = random.Random(f"{self.seed}|{customer.mobile_e164}|{day.isoformat()}")
        purchase_count = sum(rng.random() < behaviour.purchase_probability for _ in range(behaviour.draws_per_day))
        times = sorted(time(rng.randint(8, 20), rng.randint(0, 59)) for _ in range(purchase_count))
        records: list[dict[str, Any]] = []
        for time_of_day in times:
            record = {
                "mobile": self._served_mobile(customer.mobile_e164, rng),
                "date": _served_date(datetime.combine(day, time_of_day), rng),
                "amount": None
                if rng.random() < NULL_AMOUNT_RATE
                else round(rng.uniform(behaviour.min_amount, behaviour.max_amount), 2),
                "store": self._store(customer.mobile_e164, rng),
            }
            records.append(record)
            if rng.random() < DUPLICATE_RATE:
                records.append(dict(record))
            if rng.random() < UNKNOWN_MOBILE_RATE:
                records.append(self._unknown_purchase(day, rng))
        return records

    def _store(self, mobile: str, rng: random.Random) -> str:
        if rng.random() < HOME_STORE_SHARE:
            return random.Random(f"{self.seed}|{mobile}|home-store").choice(STORES)
        return rng.choice(STORES)

    def _served_mobile(self, mobile_e164: str, rng: random.Random) -> str:
        if rng.random() >= ODD_MOBILE_FORMAT_RATE:
            return mobile_e164
        try:
            number = phonenumbers.parse(mobile_e164)
        except phonenumbers.NumberParseException:
            return mobile_e164
        if rng.random() < 0.5:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return "00" + international.removeprefix("+")

    def _unknown_purchase(self, day: date, rng: random.Random) -> dict[str, Any]:
        """A purchase by someone who is not a customer, with a valid UK mobile so format checks can't catch it."""
        while True:
            mobile = f"+447{rng.randint(100_000_000, 999_999_999)}"
            if mobile not in self._known_mobiles and phonenumbers.is_valid_number(phonenumbers.parse(mobile)):
                break
        moment = datetime.combine(day, time(rng.randint(8, 20), rng.randint(0, 59)))
        return {
            "mobile": mobile,
            "date": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "amount": round(rng.uniform(5.0, 120.0), 2),
            "store": rng.choice(STORES),
        }


def _served_date(moment: datetime, rng: random.Random) -> str:
    if rng.random() >= ODD_DATE_FORMAT_RATE:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%d" if rng.random() < 0.5 else "%d/%m/%Y")
