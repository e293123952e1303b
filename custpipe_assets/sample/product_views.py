"""Synthetic landing data for the product-views domain (Amaro formats), deterministic for a seed.

Belongs here: writing `amaro/orders.csv`, `amaro/order_items.csv` and `amaro/product_views/<platform>/*.json`
with realistic proportions and the dirt the pipeline must survive. Nothing here is read back by the pipeline;
parsing lives in `transforms.py` and the layer modules it gathers.

Shape of the data:
- Sessions happen during `days` local days (GMT-03:00) starting at `start`, more of them at lunch and in the
  evening. View files hold the batches whose first event falls on one UTC day, so a session running past UTC
  midnight puts events of the next day in the file (the real export crosses midnight too). Files have the real
  AMARO shape, one per platform and day, `productEvent_YYYYMMDD.json`, except the second day of Android and
  MobileWeb, in the older shape (`YYYY-MM-DD_part-NNN.json`, several parts), so both names keep working.
- Two planted sessions always cross a boundary: one UTC midnight on the first day, one Sunday -> Monday UTC
  (the first Sunday on or after `start`, even when it lies past the last day), so one file spans two weeks.
- Event ids in the real-shape files went through a float on export (as in the real file): they collide, many
  views share one id while being different events. Ids in the older files are exact and unique.
- A session is one user on one platform: session start/end and screen views, product views
  (custom_event "product", the only events that count), searches and add-to-cart events (which also carry a
  codeColor). Its events are uploaded in one or two batches.
- Orders follow some sessions' product views a few minutes later on the same platform; desktop orders have no
  views at all (the platform is labelled `Other` downstream).

Dirt, each kind present at least once: device names spelled several ways, cancelled/refunded/pending orders,
an unknown order status, `\r\r\n` line ends in orders.csv and `\r\n` in order_items.csv (a guess: real AMARO
line ends are unknown; the Revolve exports end lines with `\r\r\n`), a ragged order line, an unparseable order date, a duplicated order line, an item whose
order does not exist, items with a malformed code_color, items for products nobody viewed, a truncated JSON file,
a batch delivered twice (in two part files, and again at the end of a real-shape file), product views without codeColor or with a non-numeric timestamp, fractional millisecond
timestamps and ids near the int64 limits.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from custpipe_assets.product_views.schemas import ORDER_COLUMN_TYPES, ORDER_ITEM_COLUMN_TYPES

LOCAL_TIMEZONE = timezone(timedelta(hours=-3))
PLATFORM_SHARE = {"iOS": 0.35, "Android": 0.40, "MobileWeb": 0.25}
DEVICE_SPELLINGS = {
    "iOS": ("ios", "iOS", "iPhone", "iphone"),
    "Android": ("android", "Android", "ANDROID"),
    "MobileWeb": ("mobile web", "mobile_web", "MobileWeb", "mobile-web"),
    "Other": ("desktop", "Desktop", ""),
}
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
# Local-hour weights: a shopping app's day, quiet at night, peaks at lunch and after dinner.
HOURLY_WEIGHTS = (2, 1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 10, 10, 8, 7, 7, 8, 9, 11, 13, 13, 10, 5)
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
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Product:
    code_color: str
    sku: str
    price: float
    popularity: float
    conversion_rate: float


@dataclass
class GenerationSummary:
    """What was written, so tests and people can see the proportions and where the dirt is."""

    amaro_dir: Path
    orders: int = 0
    order_items: int = 0
    view_files: int = 0
    batches: int = 0
    events: int = 0
    product_views: int = 0
    malformed_files: list[str] = field(default_factory=list)
    duplicated_batch_ids: list[str] = field(default_factory=list)
    # landing-relative names of the files planted to cross UTC midnight and a week (Sunday -> Monday)
    midnight_crossing_file: str = ""
    week_crossing_file: str = ""


@dataclass
class _Session:
    platform: str
    mpid: int
    session_id: int
    user_id: int
    events: list[dict] = field(default_factory=list)
    viewed: list[tuple[Product, datetime]] = field(default_factory=list)
    one_batch: bool = False  # planted boundary sessions are uploaded whole, so their file crosses the boundary


def generate_product_views_landing(
    landing_dir: Path,
    *,
    seed: int = 7,
    start: date = date(2018, 9, 3),
    days: int = 14,
    views_per_day: int = 3000,
    overwrite: bool = False,
) -> GenerationSummary:
    """Write the Amaro landing files under `landing_dir/amaro`; refuse a non-empty folder unless `overwrite`."""
    if days < 1 or views_per_day < 1:
        raise ValueError("days and views_per_day must be positive")
    amaro_dir = Path(landing_dir) / "amaro"
    if amaro_dir.exists() and any(amaro_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{amaro_dir} is not empty; pass overwrite=True to replace it")
        shutil.rmtree(amaro_dir)
    rng = random.Random(seed)
    ids = _UniqueIds(rng)
    catalog = _make_catalog(rng, size=150)
    sessions = [
        session
        for day_index in range(days)
        for session in _sessions_for_day(rng, ids, catalog, start + timedelta(days=day_index), views_per_day)
    ]
    sessions += _boundary_sessions(rng, ids, catalog, start)
    _inject_view_dirt(rng, sessions)
    summary = GenerationSummary(amaro_dir=amaro_dir)
    _write_view_files(rng, ids, sessions, amaro_dir / "product_views", summary)
    orders, items = _orders_from_sessions(rng, sessions, catalog)
    _write_orders(rng, orders, items, amaro_dir, summary)
    return summary


def _make_catalog(rng: random.Random, size: int) -> list[Product]:
    models = rng.sample(range(20000000, 20010000), size)
    products = []
    for rank, model in enumerate(sorted(models)):
        color = rng.choice((1, 1, 2, 3, 5, 8, 12))
        products.append(
            Product(
                code_color=f"{model}_{color:03d}",
                sku=f"{model}{color:03d}{rng.choice(('PP', 'P', 'M', 'G', 'GG'))}",
                price=round(rng.uniform(59.9, 399.9), 1) - 0.01,
                popularity=1.0 / (1 + rank) ** 0.8,
                conversion_rate=rng.uniform(0.01, 0.05),
            )
        )
    rng.shuffle(products)
    return products


class _UniqueIds:
    """Ids as mParticle sends them: any int64, one in ten hugging the limits (beyond float precision), never reused."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[int] = set()

    def next(self) -> int:
        while True:
            if self._rng.random() < 0.1:
                offset = self._rng.randrange(10**6)
                candidate = self._rng.choice((INT64_MAX - offset, INT64_MIN + offset))
            else:
                candidate = self._rng.randint(INT64_MIN, INT64_MAX)
            if candidate not in self._used:
                self._used.add(candidate)
                return candidate


def _epoch_ms(moment: datetime, rng: random.Random) -> float | int:
    """Milliseconds since the epoch, mostly with a 4-digit fraction, sometimes whole (older SDKs)."""
    whole = int(moment.timestamp()) * 1000 + rng.randrange(1000)
    if rng.random() < 0.15:
        return whole
    return whole + rng.randrange(1, 10000) / 10000


def _sessions_for_day(
    rng: random.Random, ids: _UniqueIds, catalog: list[Product], local_day: date, views_per_day: int
) -> list[_Session]:
    weights = [product.popularity for product in catalog]
    day_start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=LOCAL_TIMEZONE)
    sessions: list[_Session] = []
    views = 0
    while views < views_per_day:
        platform = rng.choices(tuple(PLATFORM_SHARE), weights=list(PLATFORM_SHARE.values()))[0]
        hour = rng.choices(range(24), weights=HOURLY_WEIGHTS)[0]
        moment = day_start + timedelta(hours=hour, seconds=rng.randrange(3600))
        session = _Session(platform, ids.next(), ids.next(), rng.randrange(1, 40000))
        session.events.append(_event(rng, ids, session, moment, "session_start", {}))
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 6))):
            moment += timedelta(seconds=rng.randrange(5, 120))
            roll = rng.random()
            if roll < 0.2:
                screen = rng.choice(("Home", "Category", "Cart", "Profile"))
                session.events.append(_event(rng, ids, session, moment, "screen_view", {"screen_name": screen}))
            elif roll < 0.3:
                query = rng.choice(("vestido", "calça jeans", "blusa", "sandália"))
                session.events.append(_custom(rng, ids, session, moment, "search", "search", {"query": query}))
            product = rng.choices(catalog, weights=weights)[0]
            session.events.append(
                _custom(rng, ids, session, moment, "navigation", "product", {"codeColor": product.code_color})
            )
            session.viewed.append((product, moment))
            views += 1
            if rng.random() < 0.08:
                moment += timedelta(seconds=rng.randrange(5, 60))
                attributes = {"codeColor": product.code_color, "quantity": 1}
                session.events.append(_custom(rng, ids, session, moment, "transaction", "add_to_cart", attributes))
        moment += timedelta(seconds=rng.randrange(5, 300))
        session.events.append(_event(rng, ids, session, moment, "session_end", {}))
        sessions.append(session)
    return sessions


def _boundary_sessions(rng: random.Random, ids: _UniqueIds, catalog: list[Product], start: date) -> list[_Session]:
    """An iOS session across UTC midnight after the first day and an Android one across the first Sunday -> Monday
    UTC: ten minutes each, a product view every two minutes."""
    first_sunday = start + timedelta(days=(6 - start.weekday()) % 7)
    sessions = []
    for platform, day in (("iOS", start), ("Android", first_sunday)):
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        session = _Session(platform, ids.next(), ids.next(), rng.randrange(1, 40000), one_batch=True)
        moment = midnight - timedelta(minutes=5, seconds=rng.randrange(30))
        session.events.append(_event(rng, ids, session, moment, "session_start", {}))
        for _ in range(5):
            moment += timedelta(minutes=2)
            product = rng.choice(catalog)
            attributes = {"codeColor": product.code_color}
            session.events.append(_custom(rng, ids, session, moment, "navigation", "product", attributes))
            session.viewed.append((product, moment))
        sessions.append(session)
    return sessions


def _event(
    rng: random.Random, ids: _UniqueIds, session: _Session, moment: datetime, event_type: str, data: dict
) -> dict:
    data = {
        **data,
        "timestamp_unixtime_ms": _epoch_ms(moment, rng),
        "event_id": ids.next(),
        "session_id": session.session_id,
    }
    return {"data": data, "event_type": event_type}


def _custom(
    rng: random.Random,
    ids: _UniqueIds,
    session: _Session,
    moment: datetime,
    kind: str,
    name: str,
    attributes: dict,
) -> dict:
    data = {"custom_event_type": kind, "event_name": name, "custom_attributes": attributes}
    return _event(rng, ids, session, moment, "custom_event", data)


def _is_product_view(event: dict) -> bool:
    return event["event_type"] == "custom_event" and event["data"].get("event_name") == "product"


def _inject_view_dirt(rng: random.Random, sessions: list[_Session]) -> None:
    """One product view loses its codeColor and another its numeric timestamp (both are quarantined).

    Taken from iOS and Android sessions: the truncated file is a MobileWeb one and would hide them.
    """
    product_views = [
        event
        for session in sessions
        if session.platform != "MobileWeb"
        for event in session.events
        if _is_product_view(event)
    ]
    if len(product_views) < 2:
        return
    without_code, bad_time = rng.sample(product_views, 2)
    del without_code["data"]["custom_attributes"]["codeColor"]
    bad_time["data"]["timestamp_unixtime_ms"] = "2018-09-03T10:00:00Z"


def _batches(rng: random.Random, ids: _UniqueIds, session: _Session) -> list[dict]:
    """The session's events uploaded in one batch, or in two for about a third of the longer sessions."""
    events = session.events
    split = len(events) > 3 and rng.random() < 0.3 and not session.one_batch
    cut = rng.randrange(1, len(events)) if split else len(events)
    session_end = max(map(_timestamp_or_zero, events))
    batches = []
    for chunk in (events[:cut], events[cut:]):
        if not chunk:
            continue
        last_time = max(map(_timestamp_or_zero, chunk)) or session_end
        batches.append(
            {
                "events": chunk,
                "mpid": session.mpid,
                "timestamp_unixtime_ms": last_time + rng.randrange(100, 5000),
                "batch_id": ids.next(),
                "message_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "message_type": "events",
                "schema_version": 1,
            }
        )
    return batches


def _timestamp_or_zero(event: dict) -> float:
    timestamp = event["data"]["timestamp_unixtime_ms"]
    return timestamp if isinstance(timestamp, (int, float)) else 0.0


def _write_view_files(
    rng: random.Random, ids: _UniqueIds, sessions: list[_Session], views_dir: Path, summary: GenerationSummary
) -> None:
    """Batches grouped by platform and UTC day of the batch's first event: one real-shape file per group, or a
    few older-shape part files for the second day of Android and MobileWeb (where the older dirt sits)."""
    grouped: dict[tuple[str, date], list[dict]] = {}
    boundary_batches: dict[int, str] = {}
    for session in sessions:
        for batch in _batches(rng, ids, session):
            event_times = [time for time in map(_timestamp_or_zero, batch["events"]) if time]
            first_time = min(event_times, default=batch["timestamp_unixtime_ms"])  # (a lone bad-time event)
            day = datetime.fromtimestamp(first_time / 1000, tz=UTC).date()
            grouped.setdefault((session.platform, day), []).append(batch)
            if session.one_batch:
                boundary_batches[id(batch)] = "midnight" if session.platform == "iOS" else "week"
    days = sorted({day for _, day in grouped})
    dirty_day = days[min(1, len(days) - 1)]
    repeated_day = days[0]
    for (platform, day), batches in sorted(grouped.items(), key=lambda item: (item[0][1], item[0][0])):
        batches.sort(key=lambda batch: batch["timestamp_unixtime_ms"])
        older_shape = platform in ("Android", "MobileWeb") and day == dirty_day
        if older_shape:
            parts = _split(batches, rng.randint(2, 4))
            names = [f"{day.isoformat()}_part-{number:03d}.json" for number in range(1, len(parts) + 1)]
        else:
            _lose_id_precision(batches)
            parts, names = [batches], [f"productEvent_{day:%Y%m%d}.json"]
            if platform == "iOS" and day == repeated_day:
                batches.append(batches[-1])  # the exporter retried: the last batch is landed twice
                summary.duplicated_batch_ids.append(str(batches[-1]["batch_id"]))
        if older_shape and platform == "Android" and len(parts) > 1 and len(parts[0]) > 1:
            # The upstream exporter retried: the last batch of part 1 is delivered again at the top of part 2.
            parts[1].insert(0, parts[0][-1])
            summary.duplicated_batch_ids.append(str(parts[0][-1]["batch_id"]))
        for part_number, (part, name) in enumerate(zip(parts, names, strict=True), start=1):
            path = views_dir / platform / name
            text = "[\n" + ",\n".join(json.dumps(batch, ensure_ascii=False) for batch in part) + "\n]\n"
            if older_shape and platform == "MobileWeb" and part_number == len(parts):
                text = text[: len(text) * 3 // 5]  # the upload was cut off mid-file
                summary.malformed_files.append(str(path.relative_to(views_dir.parent)))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            landed_name = path.relative_to(views_dir.parent.parent).as_posix()
            for batch in part:
                if boundary_batches.get(id(batch)) == "midnight":
                    summary.midnight_crossing_file = landed_name
                elif boundary_batches.get(id(batch)) == "week":
                    summary.week_crossing_file = landed_name
            summary.view_files += 1
            summary.batches += len(part)
            summary.events += sum(len(batch["events"]) for batch in part)
            summary.product_views += sum(_is_product_view(e) for batch in part for e in batch["events"])


def _lose_id_precision(batches: list[dict]) -> None:
    """Event ids as the real export writes them: through a float64, so neighbouring 64-bit ids become one number
    (here ids near the int64 limit collapse onto a handful of values, printed as JavaScript would print the float:
    `9223372036854776000`; how the real export printed them is a guess, that its ids collide is not)."""
    for batch in batches:
        for event in batch["events"]:
            event_id = event["data"]["event_id"]
            event["data"]["event_id"] = int(Decimal(repr(float(INT64_MAX - abs(event_id) % 4096))))


def _split(batches: list[dict], parts: int) -> list[list[dict]]:
    parts = max(1, min(parts, len(batches)))
    size = -(-len(batches) // parts)
    return [batches[index : index + size] for index in range(0, len(batches), size)]


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([value for value, _ in choices], weights=[weight for _, weight in choices])[0]


def _orders_from_sessions(
    rng: random.Random, sessions: list[_Session], catalog: list[Product]
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


def _write_orders(
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
