"""The planted story written in the BrokerChooser export formats of `conversions/formats.py`: overlapping batch
files of conversions and broker registrations with the dirt real exports carry (duplicated ids and rows, broken
rows, a header-only, a comma-separated and an empty file), the page-category mapping, and `_truth/matches.csv`.
"""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import UTC, datetime, timedelta

from custpipe_assets.conversions import formats
from custpipe_assets.sample.conversions_plan import COUNTRIES, PAGE_CATEGORIES, Conversion, Registration

BATCH_DAYS = 14
BATCH_OVERLAP = timedelta(days=1)

DUPLICATE_ID_SHARE = 0.02
DUPLICATE_BROKER_ROW_SHARE = 0.02


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


def _conversion_row(conversion: Conversion, site_country: str | None = None) -> tuple[str, ...]:
    return (
        str(conversion.conversion_id),
        conversion.session_id,
        site_country or conversion.site_country,
        "1" if conversion.is_mobile else "0",
        conversion.ui_element,
        conversion.created_at.strftime(formats.CREATED_AT_FORMAT),
        conversion.measurement_category,
    )


def conversion_files(
    rng: random.Random, start: datetime, weeks: int, conversions: list[Conversion]
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
        rows: list[tuple[str, ...]] = [formats.CONVERSION_COLUMNS]
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
        files[f"{formats.CONVERSIONS_DIR}/conversions_{label}.csv"] = _csv_bytes(rows, formats.CONVERSIONS_SEPARATOR)
    files[f"{formats.CONVERSIONS_DIR}/conversions_header_only.csv"] = _csv_bytes(
        [formats.CONVERSION_COLUMNS], formats.CONVERSIONS_SEPARATOR
    )
    # a re-send of a few rows exported with the wrong separator
    files[f"{formats.CONVERSIONS_DIR}/conversions_resend_comma.csv"] = _csv_bytes(first_batch[:11], ",")
    return files


def broker_files(
    rng: random.Random, start: datetime, weeks: int, registrations: list[Registration]
) -> dict[str, bytes]:
    """Overlapping batch files with exact duplicate rows and broken rows, plus an empty file.

    Records in each registration where it landed (file, 1-based line counting the header), so the truth can
    point at the first occurrence, which is the row deduplication keeps.
    """
    repeated = {id(r) for r in rng.sample(registrations, round(DUPLICATE_BROKER_ROW_SHARE * len(registrations)))}
    files: dict[str, bytes] = {}
    for index, (label, since, until) in enumerate(_batch_windows(start, weeks)):
        source_file = f"{formats.BROKER_DIR}/broker_export_{label}.csv"
        entries: list[tuple[tuple[str, ...], Registration | None]] = []
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
        files[source_file] = _csv_bytes(
            [formats.BROKER_COLUMNS] + [row for row, _ in entries], formats.BROKER_SEPARATOR
        )
    files[f"{formats.BROKER_DIR}/broker_export_empty.csv"] = b""
    return files


def mapping_file() -> bytes:
    rows: list[tuple[str, ...]] = [formats.MAPPING_COLUMNS]
    for page_category, (measurement_categories, *_) in PAGE_CATEGORIES.items():
        rows.extend((page_category, measurement) for measurement in measurement_categories)
    rows.append(rows[1])  # an exact duplicate line, as hand-kept mapping files have
    return _csv_bytes(rows, formats.MAPPING_SEPARATOR)


def truth_file(registrations: list[Registration]) -> bytes:
    pairs = sorted(
        (r.conversion.conversion_id, "{}:{}".format(*min(r.occurrences)))
        for r in registrations
        if r.conversion is not None
    )
    return _csv_bytes([formats.TRUTH_COLUMNS] + [(str(cid), key) for cid, key in pairs], ",")
