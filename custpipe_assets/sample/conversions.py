"""Synthetic BrokerChooser landing files with planted ground truth.

What belongs here: writing `brokerchooser/` under a landing folder in the real export formats (conversions,
broker registrations, page-category mapping) with the dirt real exports carry, and `_truth/matches.csv`, the
planted conversion -> registration pairs that the matcher is scored against. Reading the files back belongs in
`transforms.py`.

The story the data tells: a conversion on the affiliate site is followed by a registration at the broker in the
same country (residency when the broker knows it, else the IP country). About 70% of conversions register; the
broker also has registrations that no conversion explains (noise); and some conversions are planted next to a
conversion from another country so that only the country tells them apart. How long after its conversion a
registration comes is the delay regime (`DELAY_REGIMES`): `minutes` (the default: median 5 minutes, 1 to 50),
`seconds` (redirect-and-register, 0 to 5 seconds) or `mixed` (half of each), so that the matcher, which must
learn the delay from the data, is tried on more than one shape. Density is `conversions_per_week`.
"""

from __future__ import annotations

import csv
import io
import math
import random
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from custpipe_assets.conversions.formats import (
    BROKER_COLUMNS,
    BROKER_DIR,
    BROKER_SEPARATOR,
    CONVERSION_COLUMNS,
    CONVERSIONS_DIR,
    CONVERSIONS_SEPARATOR,
    CREATED_AT_FORMAT,
    MAPPING_COLUMNS,
    MAPPING_FILE,
    MAPPING_SEPARATOR,
    SOURCE_DIR,
    TRUTH_COLUMNS,
    TRUTH_FILE,
)

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

BATCH_DAYS = 14
BATCH_OVERLAP = timedelta(days=1)
RESIDENCY_SHARE = 0.25
TRAVELLER_SHARE = 0.3  # of registrations with a residency: the IP country differs
TRAP_SHARE = 0.05  # of conversions: planted next to another country's conversion and registration
NOISE_SHARE = 0.10  # broker registrations without a conversion, relative to planted registrations
DUPLICATE_ID_SHARE = 0.02
DUPLICATE_BROKER_ROW_SHARE = 0.02
SAMPLE_CONVERSIONS_PER_WEEK = 400  # the default sample's density (1x)
DELAY_REGIMES = ("minutes", "seconds", "mixed")
MIXED_SECONDS_SHARE = 0.5  # of registering conversions in the mixed regime: redirect-and-register


@dataclass(frozen=True)
class LandingSummary:
    """What `generate_conversions_landing` wrote, for logs and tests."""

    root: Path
    files: tuple[str, ...]
    conversions: int
    registrations: int
    planted_matches: int
    noise_registrations: int


@dataclass
class _Conversion:
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
class _Registration:
    timestamp: int
    residency: str
    ip_country: str
    important_score: str
    conversion: _Conversion | None = None
    occurrences: list[tuple[str, int]] = field(default_factory=list)

    def row(self) -> tuple[str, ...]:
        return (str(self.timestamp), self.residency, self.ip_country, self.important_score)


def generate_conversions_landing(
    landing_dir: Path,
    *,
    seed: int = 7,
    first_week: date = date(2018, 9, 3),
    weeks: int = 8,
    conversions_per_week: int = SAMPLE_CONVERSIONS_PER_WEEK,
    delay_regime: str = "minutes",
    overwrite: bool = False,
) -> LandingSummary:
    """Write `brokerchooser/` (conversions, broker_data, mapping, _truth) under landing_dir; byte-identical per seed."""
    if first_week.weekday() != 0:
        raise ValueError(f"first_week must be a Monday, got {first_week} ({first_week:%A})")
    if weeks < 1 or conversions_per_week < 20:
        raise ValueError("need at least 1 week and 20 conversions per week")
    if delay_regime not in DELAY_REGIMES:
        raise ValueError(f"delay_regime must be one of {', '.join(DELAY_REGIMES)}, got {delay_regime!r}")
    root = Path(landing_dir) / SOURCE_DIR
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; pass overwrite=True to replace it")
        shutil.rmtree(root)
    rng = random.Random(seed)
    start = datetime(first_week.year, first_week.month, first_week.day, tzinfo=UTC)

    conversions = _plan_conversions(rng, start, weeks, conversions_per_week, delay_regime)
    registrations = _plan_registrations(rng, conversions)
    noise = _plan_noise(rng, start, weeks, sum(r.conversion is not None for r in registrations))
    registrations = sorted(registrations + noise, key=lambda r: (r.timestamp, r.row()))
    _make_broker_rows_unique(registrations)

    files: dict[str, bytes] = {}
    files.update(_conversion_files(rng, start, weeks, conversions))
    files.update(_broker_files(rng, start, weeks, registrations))
    files[MAPPING_FILE] = _mapping_file()
    files[TRUTH_FILE] = _truth_file(registrations)

    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return LandingSummary(
        root=root,
        files=tuple(sorted(files)),
        conversions=len(conversions),
        registrations=len(registrations),
        planted_matches=sum(r.conversion is not None for r in registrations),
        noise_registrations=len(noise),
    )


def read_planted_truth(landing_dir: Path) -> pl.DataFrame:
    """The planted pairs as a frame (conversion_id Int64, registration_key String) for `match_quality`."""
    path = Path(landing_dir) / SOURCE_DIR / TRUTH_FILE
    return pl.read_csv(path, schema={"conversion_id": pl.Int64, "registration_key": pl.String})


def _draw_conversion(rng: random.Random, created_at: datetime) -> _Conversion:
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
    return _Conversion(
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


def _boundary_conversion(rng: random.Random, week_end: datetime, regime: str) -> _Conversion:
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


def _plan_conversions(
    rng: random.Random, start: datetime, weeks: int, per_week: int, regime: str = "minutes"
) -> list[_Conversion]:
    """Per week: ordinary conversions, one just before the week ends, and cross-country traps."""
    conversions: list[_Conversion] = []
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


def _plan_registrations(rng: random.Random, conversions: list[_Conversion]) -> list[_Registration]:
    registrations = []
    for conversion in conversions:
        if not conversion.registers:
            continue
        residency, ip_country = _draw_broker_countries(rng, conversion.country)
        mean_score = PAGE_CATEGORIES[conversion.page_category][3] if conversion.page_category else 5.0
        registered_at = conversion.created_at + conversion.planned_delay
        registrations.append(
            _Registration(
                timestamp=int(registered_at.timestamp()),
                residency=residency,
                ip_country=ip_country,
                important_score=_draw_score(rng, mean_score),
                conversion=conversion,
            )
        )
    return registrations


def _plan_noise(rng: random.Random, start: datetime, weeks: int, planted: int) -> list[_Registration]:
    """Broker registrations no conversion explains: uniform in time over the whole span."""
    span_seconds = int(timedelta(weeks=weeks).total_seconds())
    noise = []
    for _ in range(round(NOISE_SHARE * planted)):
        country = rng.choices(COUNTRIES, weights=[c[2] for c in COUNTRIES])[0]
        residency, ip_country = _draw_broker_countries(rng, country)
        noise.append(
            _Registration(
                timestamp=int(start.timestamp()) + rng.randrange(span_seconds),
                residency=residency,
                ip_country=ip_country,
                important_score=_draw_score(rng, 5.0),
            )
        )
    return noise


def _make_broker_rows_unique(registrations: list[_Registration]) -> None:
    """Distinct registrations must not be exact duplicates of each other, or deduplication would merge them."""
    seen: set[tuple[str, ...]] = set()
    for registration in registrations:
        while registration.row() in seen:
            registration.timestamp += 1
        seen.add(registration.row())


def _batch_windows(start: datetime, weeks: int) -> list[tuple[str, datetime, datetime]]:
    """(file date, from, to) per batch: two weeks each, overlapping neighbours by a day; the last is open-ended."""
    count = math.ceil(weeks * 7 / BATCH_DAYS)
    windows = []
    for index in range(count):
        nominal = start + timedelta(days=BATCH_DAYS * index)
        until = nominal + timedelta(days=BATCH_DAYS) + BATCH_OVERLAP
        if index == count - 1:
            until = datetime.max.replace(tzinfo=UTC)
        windows.append((f"{nominal:%Y-%m-%d}", nominal - BATCH_OVERLAP, until))
    return windows


def _csv_bytes(rows: list[tuple[str, ...]], separator: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _conversion_row(conversion: _Conversion, site_country: str | None = None) -> tuple[str, ...]:
    return (
        str(conversion.conversion_id),
        conversion.session_id,
        site_country or conversion.site_country,
        "1" if conversion.is_mobile else "0",
        conversion.ui_element,
        conversion.created_at.strftime(CREATED_AT_FORMAT),
        conversion.measurement_category,
    )


def _conversion_files(
    rng: random.Random, start: datetime, weeks: int, conversions: list[_Conversion]
) -> dict[str, bytes]:
    """Overlapping batch files plus the bad ones: header-only, comma-separated, and broken rows."""
    split_ids = {c.conversion_id for c in rng.sample(conversions, round(DUPLICATE_ID_SHARE * len(conversions)))}
    other_countries = {
        c.conversion_id: rng.choice([country[0] for country in COUNTRIES if country[0] != c.site_country])
        for c in conversions
        if c.conversion_id in split_ids
    }
    files: dict[str, bytes] = {}
    first_batch: list[tuple[str, ...]] = []
    for label, since, until in _batch_windows(start, weeks):
        rows: list[tuple[str, ...]] = [CONVERSION_COLUMNS]
        for conversion in conversions:
            if since <= conversion.created_at < until:
                rows.append(_conversion_row(conversion))
                if conversion.conversion_id in split_ids:
                    rows.append(_conversion_row(conversion, other_countries[conversion.conversion_id]))
        if not first_batch:
            first_batch = list(rows)
            unused_id = conversions[-1].conversion_id + 1
            broken = [
                # ui_element with an unquoted separator: one field too many
                (str(unused_id), "badbad", "Germany", "1", "sidebar", "banner", "2018-09-04 10:00:00", "review_page"),
                (str(unused_id + 1), "badbad", "Hungary", "0", "top_cta", "2018-09-31 25:61:00", "review_page"),
            ]
            for row in broken:
                rows.insert(rng.randint(1, len(rows)), row)
        files[f"{CONVERSIONS_DIR}/conversions_{label}.csv"] = _csv_bytes(rows, CONVERSIONS_SEPARATOR)
    files[f"{CONVERSIONS_DIR}/conversions_header_only.csv"] = _csv_bytes([CONVERSION_COLUMNS], CONVERSIONS_SEPARATOR)
    # a re-send of a few rows exported with the wrong separator
    files[f"{CONVERSIONS_DIR}/conversions_resend_comma.csv"] = _csv_bytes(first_batch[:11], ",")
    return files


def _broker_files(
    rng: random.Random, start: datetime, weeks: int, registrations: list[_Registration]
) -> dict[str, bytes]:
    """Overlapping batch files with exact duplicate rows and broken rows, plus an empty file.

    Records in each registration where it landed (file, 1-based line counting the header), so the truth can
    point at the first occurrence, which is the row deduplication keeps.
    """
    repeated = {id(r) for r in rng.sample(registrations, round(DUPLICATE_BROKER_ROW_SHARE * len(registrations)))}
    files: dict[str, bytes] = {}
    for index, (label, since, until) in enumerate(_batch_windows(start, weeks)):
        source_file = f"{BROKER_DIR}/broker_export_{label}.csv"
        entries: list[tuple[tuple[str, ...], _Registration | None]] = []
        for registration in registrations:
            if since.timestamp() <= registration.timestamp < until.timestamp():
                entries.append((registration.row(), registration))
                if id(registration) in repeated:
                    entries.append((registration.row(), registration))
        if index == 0:
            broken = [
                (str(int(since.timestamp()) + 90_000), "", "Germany", "5", "#REF!"),  # one field too many
                ("#VALUE!", "", "Hungary", "4"),
            ]
            for row in broken:
                entries.insert(rng.randint(0, len(entries)), (row, None))
        for line_number, (_, registration) in enumerate(entries, start=2):
            if registration is not None:
                registration.occurrences.append((source_file, line_number))
        files[source_file] = _csv_bytes([BROKER_COLUMNS] + [row for row, _ in entries], BROKER_SEPARATOR)
    files[f"{BROKER_DIR}/broker_export_empty.csv"] = b""
    return files


def _mapping_file() -> bytes:
    rows: list[tuple[str, ...]] = [MAPPING_COLUMNS]
    for page_category, (measurement_categories, *_) in PAGE_CATEGORIES.items():
        rows.extend((page_category, measurement) for measurement in measurement_categories)
    rows.append(rows[1])  # an exact duplicate line, as hand-kept mapping files have
    return _csv_bytes(rows, MAPPING_SEPARATOR)


def _truth_file(registrations: list[_Registration]) -> bytes:
    pairs = sorted(
        (r.conversion.conversion_id, "{}:{}".format(*min(r.occurrences)))
        for r in registrations
        if r.conversion is not None
    )
    return _csv_bytes([TRUTH_COLUMNS] + [(str(cid), key) for cid, key in pairs], ",")
