"""Fixtures of the customers tests: the weekly purchase counts computed independently from the raw files."""

import csv
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest


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


@pytest.fixture(scope="session")
def expected_counts_of():
    return expected_counts
