"""Who views what, when: the product catalogue, shopping sessions on each platform (more at lunch and in the
evening, local time), the planted sessions that cross UTC midnight and a week, their events as mParticle sends
them (ids anywhere in int64, fractional millisecond times), and the dirt planted in single events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

LOCAL_TIMEZONE = timezone(timedelta(hours=-3))
PLATFORM_SHARE = {"iOS": 0.35, "Android": 0.40, "MobileWeb": 0.25}
DEVICE_SPELLINGS = {
    "iOS": ("ios", "iOS", "iPhone", "iphone"),
    "Android": ("android", "Android", "ANDROID"),
    "MobileWeb": ("mobile web", "mobile_web", "MobileWeb", "mobile-web"),
    "Other": ("desktop", "Desktop", ""),
}

# Local-hour weights: a shopping app's day, quiet at night, peaks at lunch and after dinner.
HOURLY_WEIGHTS = (2, 1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 8, 10, 10, 8, 7, 7, 8, 9, 11, 13, 13, 10, 5)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Product:
    code_color: str
    sku: str
    price: float
    popularity: float
    conversion_rate: float


@dataclass
class Session:
    platform: str
    mpid: int
    session_id: int
    user_id: int
    events: list[dict] = field(default_factory=list)
    viewed: list[tuple[Product, datetime]] = field(default_factory=list)
    one_batch: bool = False  # planted boundary sessions are uploaded whole, so their file crosses the boundary


def make_catalog(rng: random.Random, size: int) -> list[Product]:
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


class UniqueIds:
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


def sessions_for_day(
    rng: random.Random, ids: UniqueIds, catalog: list[Product], local_day: date, views_per_day: int
) -> list[Session]:
    weights = [product.popularity for product in catalog]
    day_start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=LOCAL_TIMEZONE)
    sessions: list[Session] = []
    views = 0
    while views < views_per_day:
        platform = rng.choices(tuple(PLATFORM_SHARE), weights=list(PLATFORM_SHARE.values()))[0]
        hour = rng.choices(range(24), weights=HOURLY_WEIGHTS)[0]
        moment = day_start + timedelta(hours=hour, seconds=rng.randrange(3600))
        session = Session(platform, ids.next(), ids.next(), rng.randrange(1, 40000))
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


def boundary_sessions(rng: random.Random, ids: UniqueIds, catalog: list[Product], start: date) -> list[Session]:
    """An iOS session across UTC midnight after the first day and an Android one across the first Sunday -> Monday
    UTC: ten minutes each, a product view every two minutes."""
    first_sunday = start + timedelta(days=(6 - start.weekday()) % 7)
    sessions = []
    for platform, day in (("iOS", start), ("Android", first_sunday)):
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        session = Session(platform, ids.next(), ids.next(), rng.randrange(1, 40000), one_batch=True)
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


def _event(rng: random.Random, ids: UniqueIds, session: Session, moment: datetime, event_type: str, data: dict) -> dict:
    data = {
        **data,
        "timestamp_unixtime_ms": _epoch_ms(moment, rng),
        "event_id": ids.next(),
        "session_id": session.session_id,
    }
    return {"data": data, "event_type": event_type}


def _custom(
    rng: random.Random,
    ids: UniqueIds,
    session: Session,
    moment: datetime,
    kind: str,
    name: str,
    attributes: dict,
) -> dict:
    data = {"custom_event_type": kind, "event_name": name, "custom_attributes": attributes}
    return _event(rng, ids, session, moment, "custom_event", data)


def is_product_view(event: dict) -> bool:
    return event["event_type"] == "custom_event" and event["data"].get("event_name") == "product"


def inject_view_dirt(rng: random.Random, sessions: list[Session]) -> None:
    """One product view loses its codeColor and another its numeric timestamp (both are quarantined).

    Taken from iOS and Android sessions: the truncated file is a MobileWeb one and would hide them.
    """
    product_views = [
        event
        for session in sessions
        if session.platform != "MobileWeb"
        for event in session.events
        if is_product_view(event)
    ]
    if len(product_views) < 2:
        return
    without_code, bad_time = rng.sample(product_views, 2)
    del without_code["data"]["custom_attributes"]["codeColor"]
    bad_time["data"]["timestamp_unixtime_ms"] = "2018-09-03T10:00:00Z"
