"""The orders (`amaro/orders.csv`, `amaro/order_items.csv`): baskets that follow some sessions' product views,
desktop orders without views, and the CSV exports with the order-side dirt (statuses, ragged and duplicated
lines, bad dates, orphan items, malformed product codes).
"""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from custpipe_assets.product_views.schemas import ORDER_COLUMN_TYPES, ORDER_ITEM_COLUMN_TYPES
from custpipe_assets.sample.product_views_sessions import DEVICE_SPELLINGS, LOCAL_TIMEZONE, Product, Session

if TYPE_CHECKING:
    from custpipe_assets.sample.product_views import GenerationSummary

# (status, weight): spelled as the order system writes them, "canceled" in two spellings on purpose.
ORDER_STATUS_WEIGHTS = (
    ("delivered", 52),
    ("shipped", 10),
    ("invoiced", 8),
    ("payment_approved", 7),
    ("pending_payment", 6),
    ("canceled", 5),
    ("CANCELLED", 3),
    ("refunded", 6),
)

PAYMENT_TYPES = (("credit_card", 70), ("boleto", 20), ("debit_card", 7), ("paypal", 3))
SHIPPING_SERVICES = (("PAC", 55), ("SEDEX", 35), ("Expressa", 10))
UTM_SOURCES = (
    ("google / cpc", 30),
    ("(direct) / (none)", 25),
    ("facebook / social", 20),
    ("email / newsletter", 15),
    ("instagram / social", 10),
)
CITIES = (
    ("São Paulo", "SP"),
    ("Rio de Janeiro", "RJ"),
    ("Belo Horizonte", "MG"),
    ("Curitiba", "PR"),
    ("Porto Alegre", "RS"),
    ("Brasília, Asa Sul", "DF"),
    ("Salvador", "BA"),
    ("Recife", "PE"),
)
# the columns the order export has, in order: the reader's own list, so writer and reader cannot drift apart
ORDER_COLUMNS = tuple(ORDER_COLUMN_TYPES)
ITEM_COLUMNS = tuple(ORDER_ITEM_COLUMN_TYPES)


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([value for value, _ in choices], weights=[weight for _, weight in choices])[0]


def orders_from_sessions(
    rng: random.Random, sessions: list[Session], catalog: list[Product]
) -> tuple[list[dict], list[dict]]:
    """Orders follow converting sessions; desktop orders (no views) and unknown products are added on top."""
    baskets: list[tuple[datetime, str, int, list[tuple[Product, int]]]] = []
    for session in sessions:
        basket = [
            (product, rng.choice((1, 1, 1, 2)))
            for product, _ in session.viewed
            if rng.random() < product.conversion_rate
        ]
        if basket:
            last_view = max(moment for _, moment in session.viewed)
            placed = last_view + timedelta(seconds=rng.randrange(60, 2400))
            baskets.append((placed, session.platform, session.user_id, basket))
    if sessions:
        first = min(moment for session in sessions for _, moment in session.viewed)
        last = max(moment for session in sessions for _, moment in session.viewed)
        for _ in range(max(2, len(baskets) // 5)):
            placed = first + (last - first) * rng.random()
            product = rng.choice(catalog)
            baskets.append((placed, "Other", rng.randrange(1, 40000), [(product, 1)]))
    baskets.sort(key=lambda basket: basket[0])
    orders: list[dict] = []
    items: list[dict] = []
    always_unknown = rng.randrange(len(baskets)) if baskets else -1
    for index, (placed, platform, user_id, basket) in enumerate(baskets):
        order_id = 100001 + index
        lines = list(basket)
        if index == always_unknown or rng.random() < 0.03:
            unknown = Product(f"{rng.randrange(30000000, 30009999)}_{rng.randrange(1, 20):03d}", "", 99.9, 0, 0)
            lines.append((unknown, 1))
        subtotal = round(sum(product.price * quantity for product, quantity in lines), 2)
        discount = round(subtotal * 0.1, 2) if rng.random() < 0.2 else 0.0
        shipping = rng.choice((0.0, 9.9, 14.9, 24.9))
        city, state = rng.choice(CITIES)
        orders.append(
            {
                "id": order_id,
                "user_id": user_id,
                "order_date": placed.astimezone(LOCAL_TIMEZONE).strftime("%Y-%m-%d %H:%M:%S"),
                "order_subtotal": f"{subtotal:.2f}",
                "order_discount": f"{discount:.2f}",
                "order_total": f"{subtotal - discount + shipping:.2f}",
                "order_status": _order_status(rng, index),
                "payment_type": _weighted(rng, PAYMENT_TYPES),
                "shipping_cost": f"{shipping:.2f}",
                "shipping_service": _weighted(rng, SHIPPING_SERVICES),
                "address_city": city,
                "address_state": state,
                "utm_source_medium": _weighted(rng, UTM_SOURCES),
                "device_type": rng.choice(DEVICE_SPELLINGS[platform]),
            }
        )
        for product, quantity in lines:
            items.append(
                {
                    "id": len(items) + 1,
                    "order_id": order_id,
                    "sku": product.sku,
                    "quantity": quantity,
                    "code_color": product.code_color,
                }
            )
    return orders, items


def _order_status(rng: random.Random, index: int) -> str:
    """Every status (both spellings of canceled included) three times among the first orders, so that the dirt
    placed later cannot erase one on a small sample; weighted at random after that."""
    statuses = [status for status, _ in ORDER_STATUS_WEIGHTS]
    if index < 3 * len(statuses):
        return statuses[index % len(statuses)]
    return _weighted(rng, ORDER_STATUS_WEIGHTS)


def write_orders(
    rng: random.Random, orders: list[dict], items: list[dict], amaro_dir: Path, summary: GenerationSummary
) -> None:
    """CSV files with the order-side dirt placed at seeded positions."""
    order_rows = [[str(order[column]) for column in ORDER_COLUMNS] for order in orders]
    item_rows = [[str(item[column]) for column in ITEM_COLUMNS] for item in items]
    if len(order_rows) >= 6:
        ragged, bad_date, unknown_status, duplicated = rng.sample(range(len(order_rows)), 4)
        order_rows[ragged] = order_rows[ragged][:9]
        order_rows[bad_date][2] = order_rows[bad_date][2].replace("-", "/", 2)[:10]
        order_rows[unknown_status][6] = "em_analise"
        order_rows.insert(duplicated + 1, list(order_rows[duplicated]))
    if len(item_rows) >= 4:
        for row in rng.sample(item_rows, 2):
            row[4] = rng.choice(("", "N/A", "20005748-001"))
        orphan = list(rng.choice(item_rows))
        orphan[0], orphan[1] = str(len(items) + 1), "999999999"
        item_rows.append(orphan)
    amaro_dir.mkdir(parents=True, exist_ok=True)
    orders_text = _csv_text(ORDER_COLUMNS, order_rows, line_end="\r\r\n")  # Revolve's line ends (a guess for AMARO)
    (amaro_dir / "orders.csv").write_text(orders_text, encoding="utf-8", newline="")
    items_text = _csv_text(ITEM_COLUMNS, item_rows, line_end="\r\n")
    (amaro_dir / "order_items.csv").write_text(items_text, encoding="utf-8", newline="")
    summary.orders = len(order_rows)
    summary.order_items = len(item_rows)


def _csv_text(header: tuple[str, ...], rows: list[list[str]], *, line_end: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
