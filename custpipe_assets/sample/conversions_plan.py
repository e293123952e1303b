"""The story the BrokerChooser sample tells, planned before anything is written: conversions on the site (country,
page category, UI element, device, time of day), which of them register at the broker and after what delay (the
delay regime), the cross-country traps, and registrations that no conversion explains.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# (site spelling, broker spelling, weight): the site uses common names, the broker ISO 3166 short names.
COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("United States", "United States of America", 11),
    ("United Kingdom", "United Kingdom of Great Britain and Northern Ireland", 6),
    ("Germany", "Germany", 8),
    ("India", "India", 6),
    ("Australia", "Australia", 5),
    ("Canada", "Canada", 5),
    ("France", "France", 4),
    ("Russia", "Russian Federation", 3),
    ("Czech Republic", "Czechia", 3),
    ("South Korea", "Korea, Republic of", 3),
    ("Vietnam", "Viet Nam", 3),
    ("Taiwan", "Taiwan (Province of China)", 3),
    ("Hungary", "Hungary", 3),
    ("Netherlands", "Netherlands", 3),
    ("Spain", "Spain", 3),
    ("Italy", "Italy", 3),
    ("Singapore", "Singapore", 3),
    ("South Africa", "South Africa", 3),
    ("Turkey", "Türkiye", 2),
    ("Poland", "Poland", 2),
    ("Nigeria", "Nigeria", 2),
    ("Philippines", "Philippines", 2),
    ("United Arab Emirates", "United Arab Emirates", 2),
    ("Malaysia", "Malaysia", 2),
    ("Brazil", "Brazil", 2),
    ("Iran", "Iran, Islamic Republic of", 1),
    # Not an ISO 3166 country: the normalizer must leave it unresolved, not guess Serbia.
    ("Kosovo", "Kosovo", 0.5),
)
UNSET_SITE_COUNTRY = "(not set)"  # the site's analytics placeholder when geo-IP failed
UNKNOWN_IP_COUNTRY = "Anonymous Proxy"  # the broker's geo-IP placeholder for proxies

# page_category -> (measurement categories, share of conversions, registration probability, mean important_score)
PAGE_CATEGORIES: dict[str, tuple[tuple[str, ...], float, float, float]] = {
    "broker_review": (("review_page", "review_sticky_header", "review_fee_table"), 30, 0.80, 6.0),
    "broker_comparison": (("compare_page", "compare_table"), 15, 0.80, 7.0),
    "best_brokers": (("best_brokers_list", "best_forex_brokers", "best_stock_brokers"), 25, 0.72, 6.0),
    "education": (("learn_article", "glossary"), 12, 0.50, 3.0),
    "calculator": (("fee_calculator",), 8, 0.62, 5.0),
    "homepage": (("home_hero",), 10, 0.58, 4.0),
}
UNMAPPED_MEASUREMENT_CATEGORIES = (
    "review_page_v2",
    "asdf",
    "null",
    "'; DROP TABLE x;--",
    "<script>alert(1)</script>",
)
# ui element -> registration probability multiplier; "" is the empty ui_element real exports carry
UI_ELEMENTS: dict[str, float] = {
    "open_account_button": 1.05,
    "top_cta": 1.0,
    "table_row_button": 1.0,
    "sticky_footer": 0.95,
    "sidebar_banner": 0.8,
    "": 1.0,
}
UI_ELEMENT_WEIGHTS = (30, 20, 20, 12, 10, 8)
MOBILE_SHARE = 0.55
MOBILE_MULTIPLIER, DESKTOP_MULTIPLIER = 0.9, 1.1
SCORE_JUNK = ("#REF!", "#N/A", "n/a", "7.5")
# UTC hours: the audience is worldwide, so traffic never stops, with a European and American day on top
HOUR_WEIGHTS = (4, 4, 3, 3, 3, 4, 4, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 4)

RESIDENCY_SHARE = 0.25
TRAVELLER_SHARE = 0.3  # of registrations with a residency: the IP country differs
TRAP_SHARE = 0.05  # of conversions: planted next to another country's conversion and registration
NOISE_SHARE = 0.10  # broker registrations without a conversion, relative to planted registrations

MIXED_SECONDS_SHARE = 0.5  # of registering conversions in the mixed regime: redirect-and-register


@dataclass
class Conversion:
    created_at: datetime
    country: tuple[str, str, float]
    site_country: str
    is_mobile: bool
    ui_element: str
    page_category: str | None
    measurement_category: str
    registers: bool
    planned_delay: timedelta = timedelta(0)
    conversion_id: int = 0
    session_id: str = ""


@dataclass
class Registration:
    timestamp: int
    residency: str
    ip_country: str
    important_score: str
    conversion: Conversion | None = None
    occurrences: list[tuple[str, int]] = field(default_factory=list)

    def row(self) -> tuple[str, ...]:
        return (str(self.timestamp), self.residency, self.ip_country, self.important_score)


def _draw_conversion(rng: random.Random, created_at: datetime) -> Conversion:
    country = rng.choices(COUNTRIES, weights=[c[2] for c in COUNTRIES])[0]
    site_country = UNSET_SITE_COUNTRY if rng.random() < 0.01 else country[0]
    categories = list(PAGE_CATEGORIES)
    page_category: str | None = rng.choices(categories, weights=[PAGE_CATEGORIES[c][1] for c in categories])[0]
    probability = PAGE_CATEGORIES[page_category][2]
    measurement_category = rng.choice(PAGE_CATEGORIES[page_category][0])
    if rng.random() < 0.04:
        page_category, measurement_category = None, rng.choice(UNMAPPED_MEASUREMENT_CATEGORIES)
        probability = 0.6
    is_mobile = rng.random() < MOBILE_SHARE
    ui_element = rng.choices(list(UI_ELEMENTS), weights=UI_ELEMENT_WEIGHTS)[0]
    probability *= (MOBILE_MULTIPLIER if is_mobile else DESKTOP_MULTIPLIER) * UI_ELEMENTS[ui_element]
    return Conversion(
        created_at=created_at,
        country=country,
        site_country=site_country,
        is_mobile=is_mobile,
        ui_element=ui_element,
        page_category=page_category,
        measurement_category=measurement_category,
        registers=rng.random() < min(probability, 0.97),
    )


def _draw_time_in_week(rng: random.Random, week_start: datetime) -> datetime:
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return week_start + timedelta(days=rng.randrange(7), hours=hour, seconds=rng.randrange(3600))


def _draw_delay(rng: random.Random, regime: str = "minutes") -> timedelta:
    """Registration delay. minutes: median 5 minutes, 95% within 16, never under 1 or over 50; seconds: 0 to 5
    seconds (the visitor is redirected and registers at once); mixed: either, half and half."""
    if regime == "seconds" or (regime == "mixed" and rng.random() < MIXED_SECONDS_SHARE):
        return timedelta(seconds=rng.randint(0, 5))
    seconds = rng.lognormvariate(math.log(300), 0.7)
    return timedelta(seconds=int(min(max(seconds, 60), 3000)))


def _boundary_conversion(rng: random.Random, week_end: datetime, regime: str) -> Conversion:
    """A conversion just before the week ends whose registration lands in the next week, its delay in the regime."""
    if regime == "minutes":  # the draws of the default sample, kept so that it stays byte-identical
        boundary = _draw_conversion(rng, week_end - timedelta(seconds=rng.randint(120, 600)))
        boundary.planned_delay = week_end - boundary.created_at + timedelta(seconds=rng.randint(60, 900))
    else:
        delay = max(_draw_delay(rng, regime), timedelta(seconds=1))
        boundary = _draw_conversion(rng, week_end - timedelta(seconds=rng.randint(1, int(delay.total_seconds()))))
        boundary.planned_delay = delay
    boundary.registers = True
    return boundary


def plan_conversions(
    rng: random.Random, start: datetime, weeks: int, per_week: int, regime: str = "minutes"
) -> list[Conversion]:
    """Per week: ordinary conversions, one just before the week ends, and cross-country traps."""
    conversions: list[Conversion] = []
    for week in range(weeks):
        week_start = start + timedelta(weeks=week)
        week_end = week_start + timedelta(weeks=1)
        traps = round(TRAP_SHARE * per_week)
        ordinary = [_draw_conversion(rng, _draw_time_in_week(rng, week_start)) for _ in range(per_week - traps - 1)]
        boundary = _boundary_conversion(rng, week_end, regime)
        for conversion in ordinary:
            if conversion.registers:
                conversion.planned_delay = _draw_delay(rng, regime)
        # a trap lands just before its host's registration, which must stay inside the week; hosts registering
        # within seconds leave no room for one, so the seconds regime has none and the mixed regime fewer
        hosts = [
            c
            for c in ordinary
            if c.registers and c.planned_delay >= timedelta(seconds=150) and c.created_at + c.planned_delay < week_end
        ]
        week_traps = []
        for host in sorted(rng.sample(hosts, min(traps, len(hosts))), key=lambda c: c.created_at):
            host_registration = host.created_at + host.planned_delay
            lead = rng.randint(20, min(90, int(host.planned_delay.total_seconds()) - 30))
            trap = _draw_conversion(rng, host_registration - timedelta(seconds=lead))
            while trap.country[0] in (host.country[0], "Kosovo"):
                trap.country = rng.choices(COUNTRIES, weights=[c[2] for c in COUNTRIES])[0]
            trap.site_country = trap.country[0]
            trap.registers = True
            trap.planned_delay = timedelta(seconds=lead + rng.randint(5, 90))
            week_traps.append(trap)
        for _ in range(traps - len(week_traps)):  # traps without a host: ordinary conversions, so density holds
            extra = _draw_conversion(rng, _draw_time_in_week(rng, week_start))
            if extra.registers:
                extra.planned_delay = _draw_delay(rng, regime)
            ordinary.append(extra)
        conversions.extend([*ordinary, boundary, *week_traps])
    conversions.sort(key=lambda c: c.created_at)
    next_id = 100_000
    for conversion in conversions:
        next_id += rng.randint(1, 3)
        conversion.conversion_id = next_id
        conversion.session_id = f"{rng.getrandbits(64):016x}"
    return conversions


def _draw_score(rng: random.Random, mean: float) -> str:
    roll = rng.random()
    if roll < 0.025:
        return rng.choice(SCORE_JUNK)
    if roll < 0.045:
        return ""
    return str(min(10, max(1, round(rng.gauss(mean, 1.5)))))


def _draw_broker_countries(rng: random.Random, country: tuple[str, str, float]) -> tuple[str, str]:
    """(country_residency, ip_country): residency for a quarter; travellers' IP is elsewhere."""
    if rng.random() < RESIDENCY_SHARE:
        ip_country = country[1]
        if rng.random() < TRAVELLER_SHARE:
            ip_country = rng.choice([c[1] for c in COUNTRIES if c[1] != country[1]])
        return country[1], ip_country
    return "", UNKNOWN_IP_COUNTRY if rng.random() < 0.01 else country[1]


def plan_registrations(rng: random.Random, conversions: list[Conversion]) -> list[Registration]:
    registrations = []
    for conversion in conversions:
        if not conversion.registers:
            continue
        residency, ip_country = _draw_broker_countries(rng, conversion.country)
        mean_score = PAGE_CATEGORIES[conversion.page_category][3] if conversion.page_category else 5.0
        registered_at = conversion.created_at + conversion.planned_delay
        registrations.append(
            Registration(
                timestamp=int(registered_at.timestamp()),
                residency=residency,
                ip_country=ip_country,
                important_score=_draw_score(rng, mean_score),
                conversion=conversion,
            )
        )
    return registrations


def plan_noise(rng: random.Random, start: datetime, weeks: int, planted: int) -> list[Registration]:
    """Broker registrations no conversion explains: uniform in time over the whole span."""
    span_seconds = int(timedelta(weeks=weeks).total_seconds())
    noise = []
    for _ in range(round(NOISE_SHARE * planted)):
        country = rng.choices(COUNTRIES, weights=[c[2] for c in COUNTRIES])[0]
        residency, ip_country = _draw_broker_countries(rng, country)
        noise.append(
            Registration(
                timestamp=int(start.timestamp()) + rng.randrange(span_seconds),
                residency=residency,
                ip_country=ip_country,
                important_score=_draw_score(rng, 5.0),
            )
        )
    return noise


def make_broker_rows_unique(registrations: list[Registration]) -> None:
    """Distinct registrations must not be exact duplicates of each other, or deduplication would merge them."""
    seen: set[tuple[str, ...]] = set()
    for registration in registrations:
        while registration.row() in seen:
            registration.timestamp += 1
        seen.add(registration.row())
