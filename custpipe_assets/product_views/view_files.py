"""Bronze for the product-view exports (`amaro/product_views/<platform>/*.json`): which weeks each landed file
holds, and its events parsed into bronze rows. No Dagster, no warehouse: paths in, frames out.

A file's weeks come from its events' own timestamps (UTC weeks, Monday 00:00), never from its name: the real
export (`productEvent_YYYYMMDD.json`) and the older one (`YYYY-MM-DD_part-NNN.json`) both cross midnight and can
cross a week. An event without a usable time, a batch without events and a whole unreadable file belong to the
file's *home week*: its earliest event week, else the day in its name (`YYYYMMDD` or `YYYY-MM-DD`, a hint only),
else the week it was last modified. So every record of every landed file is in exactly one week, and a file that
cannot be read still has a week in which it is quarantined.

Rejects follow the core quarantine contract with a code from VIEW_REJECT_REASONS: a whole file under its status
(no line, no position), a batch as `batch B`, an event as `batch B event E`; JSON has no line numbers.

DuckDB's queries over the JSON, and splitting what they read into bronze rows and quarantine rows, are in
`view_json.py`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from custpipe_assets.product_views.schemas import (
    READABLE_VIEW_FILE_STATUSES,
    VIEW_EVENTS_BRONZE_SCHEMA,
    VIEW_FILES_SCHEMA,
    VIEW_REJECTS_SCHEMA,
    ParseResult,
    excerpt,
    file_quarantine,
)
from custpipe_assets.product_views.view_json import (
    SCAN_SQL,
    SCAN_STRUCTURE,
    first_line,
    parse_view_group,
    split_view_rows,
    with_week,
)

# Product-view files are parsed in groups of at most this many bytes: their text is held in memory while parsed.
GROUP_BYTES = 128 * 1024 * 1024
# A day in a file name: `productEvent_20180903.json` or `2018-09-03_part-001.json`.
_NAME_DAY = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


@dataclass(frozen=True)
class ViewFileScan:
    """What one landed file holds: a status (VIEW_FILE_STATUSES), its bronze records and the weeks they are in."""

    source_file: str
    platform_folder: str | None
    bytes: int
    status: str
    detail: str
    records: int
    event_weeks: tuple[date, ...]  # weeks of the events' own times
    home_week: date  # where records without a usable time (or the whole unreadable file) go

    @property
    def weeks(self) -> tuple[date, ...]:
        """Every week a record of this file belongs to."""
        return tuple(sorted({*self.event_weeks, self.home_week}))


def list_product_view_files(product_views_dir: Path) -> list[Path]:
    """Every file under `product_views/` (not only `*.json`: nothing landed is skipped unseen), sorted so bronze
    row order (and first-seen duplicates) is stable."""
    product_views_dir = Path(product_views_dir)
    if not product_views_dir.is_dir():
        return []
    return sorted((path for path in product_views_dir.rglob("*") if path.is_file()), key=str)


def source_name(path: Path, landing_root: Path) -> str:
    """The file as bronze names it: relative to the landing root (`amaro/product_views/iOS/x.json`)."""
    try:
        return Path(path).relative_to(landing_root).as_posix()
    except ValueError:
        return str(path)


def default_landing_root(product_views_dir: Path) -> Path:
    """Views land in `<root>/amaro/product_views`."""
    return Path(product_views_dir).parent.parent


def scan_view_file(path: Path, product_views_dir: Path, landing_root: Path | None = None) -> ViewFileScan:
    """The file's status, record count and weeks; read once per version of the file (path, size, mtime).

    Cheap enough for a sensor that asks about every file every minute: DuckDB types only the timestamps
    (measured: ~8 ms for a 1 MB file, ~0.1 s for 33 MB; the full bronze parse is ~7x that), and the answer is
    cached per file version.
    """
    stat = Path(path).stat()
    root = default_landing_root(product_views_dir) if landing_root is None else Path(landing_root)
    return _scan(Path(path), Path(product_views_dir), root, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=20_000)
def _scan(path: Path, product_views_dir: Path, landing_root: Path, size: int, mtime_ns: int) -> ViewFileScan:
    source = source_name(path, landing_root)
    parts = path.relative_to(product_views_dir).parts
    folder = parts[0] if len(parts) >= 2 else None
    status, detail, weeks_and_records = _file_shape(path, folder)
    if status is None:
        try:
            with duckdb.connect() as connection:
                connection.execute("SET enable_progress_bar = false")
                parameters = {"path": str(path), "structure": SCAN_STRUCTURE}
                weeks_and_records = connection.execute(SCAN_SQL, parameters).fetchall()
        except duckdb.Error as error:
            status, detail = "unreadable_json", first_line(error)
    records = sum(count for _, count in weeks_and_records)
    event_weeks = tuple(sorted(week for week, _ in weeks_and_records if week is not None))
    if status is None:
        status, detail = "ok", ""
        if not records:
            status, detail = "no_events", "no batch holds an event"
        elif not event_weeks:
            status, detail = "no_event_times", "no event has a usable timestamp_unixtime_ms"
    home = event_weeks[0] if event_weeks else _name_week(path.name) or _monday(_modified_day(mtime_ns))
    return ViewFileScan(
        source, folder, size, status, detail, records if status != "unreadable_json" else 1, event_weeks, home
    )


def _file_shape(path: Path, folder: str | None) -> tuple[str | None, str, list[tuple[date | None, int]]]:
    """A status for a file that cannot hold batches (one quarantined record), else None (cheap checks first)."""
    one_record = [(None, 1)]
    if folder is None:
        return "outside_platform_folder", "not inside a platform folder (product_views/<platform>/*.json)", one_record
    if path.suffix.lower() != ".json":
        return "not_json", f"name does not end in .json: {path.name}", one_record
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    if not head:
        return "empty_file", "empty file", one_record
    if not head.startswith(b"["):
        return "not_an_array", "top-level JSON value is not an array of batches", one_record
    return None, "", []


def _name_week(name: str) -> date | None:
    match = _NAME_DAY.search(name)
    if match is None:
        return None
    try:
        return _monday(date(*map(int, match.groups())))
    except ValueError:
        return None


def _modified_day(mtime_ns: int) -> date:
    return datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC).date()


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def view_file_inventory(product_views_dir: Path, landing_root: Path | None = None) -> pl.DataFrame:
    """One row per landed file (VIEW_FILES_SCHEMA): status, records and weeks, for the file checks."""
    scans = [
        scan_view_file(path, product_views_dir, landing_root) for path in list_product_view_files(product_views_dir)
    ]
    return pl.DataFrame(
        [
            (
                scan.source_file,
                scan.platform_folder,
                scan.bytes,
                scan.status,
                scan.detail,
                scan.records,
                scan.home_week,
                scan.weeks[0],
                scan.weeks[-1],
                ", ".join(week.isoformat() for week in scan.weeks),
            )
            for scan in scans
        ],
        schema=VIEW_FILES_SCHEMA,
        orient="row",
    )


def view_files_by_week(
    product_views_dir: Path, weeks: Sequence[date], landing_root: Path | None = None
) -> dict[date, list[Path]]:
    """The files holding records of each week (a file crossing a week is in both); the folder is listed once."""
    by_week: dict[date, list[Path]] = {week: [] for week in weeks}
    for path in list_product_view_files(product_views_dir):
        for week in scan_view_file(path, product_views_dir, landing_root).weeks:
            if week in by_week:
                by_week[week].append(path)
    return by_week


def parse_product_view_files(
    files: Sequence[Path],
    product_views_dir: Path,
    *,
    landing_root: Path | None = None,
    week: date | None = None,
) -> ParseResult:
    """Bronze events (every event type) from product-view files; the platform is the first folder below the root.

    With `week`, only that week's records (events by their own time; the rest by their file's home week). DuckDB's
    JSON reader (`read_text` + `from_json`) does the parsing: several times faster than Python's json, 64-bit ids
    read as exact text, parallel across files. Files go in groups of at most GROUP_BYTES; a group that fails is
    bisected until the unreadable files are isolated and quarantined. Also quarantined: files that cannot hold
    batches (see `_file_shape`), batches without an events array, events whose timestamp is not a time.
    """
    product_views_dir = Path(product_views_dir)
    root = default_landing_root(product_views_dir) if landing_root is None else Path(landing_root)
    rows: list[pl.DataFrame] = [VIEW_EVENTS_BRONZE_SCHEMA.to_frame()]
    quarantine: list[pl.DataFrame] = [VIEW_REJECTS_SCHEMA.to_frame()]
    scans = {str(path): scan_view_file(path, product_views_dir, root) for path in map(Path, files)}
    readable: list[str] = []
    for path, scan in scans.items():
        if scan.status in READABLE_VIEW_FILE_STATUSES:
            readable.append(path)
        else:
            raw = excerpt(Path(path).read_bytes()[:4096].decode("utf-8", "replace")) if scan.bytes else ""
            quarantine.append(
                with_week(file_quarantine(scan.source_file, raw, scan.status, scan.detail), scan.home_week)
            )
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")  # it prints to stdout, noise in run logs
        for group in _groups_by_size(readable):
            parsed, unreadable = parse_view_group(connection, group, scans)
            quarantine.extend(unreadable)
            if parsed is not None:
                group_rows, group_quarantine = split_view_rows(connection, parsed, scans)
                rows.append(group_rows)
                quarantine.append(group_quarantine)
    positions = ["source_file", "batch_index", "event_index"]
    result = ParseResult(pl.concat(rows).sort(positions), pl.concat(quarantine))
    if week is None:
        return result
    return ParseResult(*(frame.filter(pl.col("week_start") == week) for frame in result))


def _groups_by_size(sources: list[str]) -> Iterator[list[str]]:
    group: list[str] = []
    group_bytes = 0
    for source in sources:
        size = os.path.getsize(source)
        if group and group_bytes + size > GROUP_BYTES:
            yield group
            group, group_bytes = [], 0
        group.append(source)
        group_bytes += size
    if group:
        yield group
