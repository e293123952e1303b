"""The dirt planted in the daily transaction files: whole-file dirt on fixed days (CRLF line ends, a BOM, a
missing and an empty day folder) and line dirt by recipe (broken JSON, missing fields, duplicates, unknown ids,
bad prices, blank lines), each listed in `_truth/transaction_dirt.csv` so tests can check it is found.
"""

from __future__ import annotations

import json

import numpy as np

# Whole-file dirt sits on fixed day offsets from first_week (all inside the first two weeks).
CRLF_DAY, BOM_DAY, MISSING_DAY, EMPTY_DAY = 1, 2, 4, 9
LINE_DIRT_DAYS = 14  # line dirt lands in the first two weeks, so even the small sample holds every kind
COPIES_PER_RECIPE = 3

# Each recipe plants one line; several recipes share a manifest `kind`.
RECIPE_KIND: dict[str, str] = {
    "malformed_json": "malformed_json",
    "missing_customer_id": "missing_field",
    "missing_price": "missing_field",
    "wrong_type": "wrong_type",
    "duplicate_same_day": "duplicate",
    "duplicate_previous_day": "duplicate",
    "unknown_product": "unknown_product",
    "unknown_customer": "unknown_customer",
    "zero_price": "zero_price",
    "negative_price": "negative_price",
    "blank_line": "blank_line",
    "empty_basket": "empty_basket",
}
# Recipes that spoil a freshly generated purchase (a "carrier") rather than copying or inserting a blank line.
SPOILING_RECIPES = frozenset(RECIPE_KIND) - {"duplicate_same_day", "duplicate_previous_day", "blank_line"}


def _spoil(recipe: str, carrier: str, unknown_customer: str, unknown_product: str) -> str:
    """Turn a realistic purchase line into the dirt the recipe names."""
    if recipe == "malformed_json":
        return carrier[: len(carrier) * 2 // 3]
    purchase = json.loads(carrier)
    first_item = purchase["basket"][0]
    match recipe:
        case "missing_customer_id":
            del purchase["customer_id"]
        case "missing_price":
            del first_item["price"]
        case "wrong_type":
            first_item["price"] = "abc"
        case "unknown_product":
            first_item["product_id"] = unknown_product
        case "unknown_customer":
            purchase["customer_id"] = unknown_customer
        case "zero_price":
            first_item["price"] = 0
        case "negative_price":
            first_item["price"] = -first_item["price"]
        case "empty_basket":
            purchase["basket"] = []
    return json.dumps(purchase)


def plan_line_dirt(rng: np.random.Generator, days: int) -> dict[int, list[str]]:
    """Which recipes land on which day: COPIES_PER_RECIPE of each, spread over the first two weeks."""
    dirt_days = [d for d in range(min(LINE_DIRT_DAYS, days)) if d not in (MISSING_DAY, EMPTY_DAY)]
    # a copy from "the previous day" must stay in the same week and find purchases there
    follows_a_dirt_day = [d for d in dirt_days if d % 7 != 0 and d - 1 in dirt_days]
    plan: dict[int, list[str]] = {}
    for recipe in RECIPE_KIND:
        candidates = follows_a_dirt_day if recipe == "duplicate_previous_day" else dirt_days
        for day in rng.choice(candidates, size=COPIES_PER_RECIPE):
            plan.setdefault(int(day), []).append(recipe)
    return plan


def plant_line_dirt(
    rng: np.random.Generator,
    clean: list[str],
    carriers: list[str],
    recipes: list[str],
    previous_day_clean: list[str],
    unknown_ids: list[tuple[str, str]],
) -> tuple[list[str], list[tuple[int, str]]]:
    """Insert the day's dirt lines among its clean lines; returns all lines and (1-based line, kind) per dirt line.

    Each dirt line goes before clean line `slot`; a same-day duplicate always lands after the line it copies
    and a blank line never first or last.
    """
    placed: list[tuple[int, int, str, str]] = []
    for order, recipe in enumerate(recipes):
        if recipe == "blank_line":
            slot, text = int(rng.integers(1, len(clean))), ""
        elif recipe == "duplicate_same_day":
            source = int(rng.integers(0, len(clean)))
            slot, text = int(rng.integers(source + 1, len(clean) + 1)), clean[source]
        elif recipe == "duplicate_previous_day":
            slot = int(rng.integers(0, len(clean) + 1))
            text = previous_day_clean[int(rng.integers(0, len(previous_day_clean)))]
        else:
            unknown_customer, unknown_product = unknown_ids.pop(0)
            slot = int(rng.integers(0, len(clean) + 1))
            text = _spoil(recipe, carriers.pop(0), unknown_customer, unknown_product)
        placed.append((slot, order, text, RECIPE_KIND[recipe]))
    lines: list[str] = []
    planted: list[tuple[int, str]] = []
    taken = 0
    for slot, _, text, kind in sorted(placed):
        lines.extend(clean[taken:slot])
        taken = slot
        lines.append(text)
        planted.append((len(lines), kind))
    lines.extend(clean[taken:])
    return lines, planted
