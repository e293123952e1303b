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
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from custpipe_assets.core.quarantine import as_quarantine
from custpipe_assets.product_views.schemas import (
    READABLE_VIEW_FILE_STATUSES,
    VIEW_EVENTS_BRONZE_SCHEMA,
    VIEW_FILES_SCHEMA,
    VIEW_REJECTS_SCHEMA,
    ParseResult,
    excerpt,
    file_quarantine,
)

# Product-view files are parsed in groups of at most this many bytes: their text is held in memory while parsed.
GROUP_BYTES = 128 * 1024 * 1024
# A day in a file name: `productEvent_20180903.json` or `2018-09-03_part-001.json`.
_NAME_DAY = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
# Milliseconds -> the DATE of its UTC week's Monday, in integer microseconds (as silver computes the time, so the
# week and the time can never disagree at a boundary); NULL unless 1970 <= time < year 10000 (NaN and inf too).
_WEEK_OF_MS = """CASE WHEN {ms} >= 0 AND {ms} < 253402300800000 THEN DATE '1969-12-29'
    + 7 * CAST((CAST(floor({ms} * 1000) AS BIGINT) + 259200000000) // 604800000000 AS INTEGER) END"""
_RAW_EVENT_FIELDS = (
    "mpid",
    "batch_id",
    "message_id",
    "event_type",
    "custom_event_type",
    "event_name",
    "event_id",
    "session_id",
    "timestamp_text",
    "code_color",
)
# Events are read as JSON text (hashed: the event's whole content) and then typed; only the fields the pipeline
# uses are typed. Ids are VARCHAR so 64-bit (and larger) integers stay exact, and the timestamp is VARCHAR so a
# non-numeric value reaches the quarantine instead of failing the whole file.
_BATCH_STRUCTURE = json.dumps([{"events": ["JSON"], "mpid": "VARCHAR", "batch_id": "VARCHAR", "message_id": "VARCHAR"}])
_EVENT_STRUCTURE = json.dumps(
    {
        "event_type": "VARCHAR",
        "data": {
            "custom_event_type": "VARCHAR",
            "event_name": "VARCHAR",
            "timestamp_unixtime_ms": "VARCHAR",
            "event_id": "VARCHAR",
            "session_id": "VARCHAR",
            "custom_attributes": {"codeColor": "VARCHAR"},
        },
    }
)
# One row per event. A batch without events yields one row with a NULL event_index, so a batch whose `events` is
# missing or not an array (events_missing) is quarantined instead of vanishing in the unnest. Positions are
# computed per file (one read_text row per file), never from scan order.
_VIEW_FILES_SQL = f"""
WITH parsed AS (
    SELECT filename AS path, from_json(content, $structure) AS batches FROM read_text($paths)
), batches AS (
    SELECT path, unnest(range(len(batches))) AS batch_index, unnest(batches) AS batch FROM parsed
), events AS (
    SELECT
        path,
        batch_index,
        batch.events IS NULL AS events_missing,
        batch.mpid, batch.batch_id, batch.message_id,
        unnest(CASE WHEN len(batch.events) > 0 THEN range(len(batch.events)) ELSE [NULL] END) AS event_index,
        unnest(CASE WHEN len(batch.events) > 0 THEN batch.events ELSE [NULL] END) AS event_json
    FROM batches
), typed AS (
    SELECT *, from_json(event_json, $event_structure) AS event FROM events
), timed AS (
    SELECT *, TRY_CAST(event.data.timestamp_unixtime_ms AS DOUBLE) AS ms FROM typed
)
SELECT
    path, batch_index, event_index, events_missing, mpid, batch_id, message_id,
    event.event_type,
    event.data.custom_event_type,
    event.data.event_name,
    event.data.event_id,
    event.data.session_id,
    event.data.timestamp_unixtime_ms AS timestamp_text,
    ms AS timestamp_unixtime_ms,
    event.data.custom_attributes."codeColor" AS code_color,
    md5(event_json::VARCHAR) AS event_hash,
    {_WEEK_OF_MS.format(ms="ms")} AS event_week
FROM timed
"""
# The cheap read behind a file's weeks: only timestamps are typed. Records are counted as bronze makes them: one
# per event, one per batch without an events array (quarantined), none for an empty events array.
_SCAN_STRUCTURE = json.dumps([{"events": [{"data": {"timestamp_unixtime_ms": "VARCHAR"}}]}])
_SCAN_SQL = f"""
WITH parsed AS (SELECT from_json(content, $structure) AS batches FROM read_text($path)),
batches AS (SELECT unnest(batches) AS batch FROM parsed),
records AS (SELECT unnest(CASE WHEN batch.events IS NULL THEN [NULL] ELSE batch.events END) AS event FROM batches)
SELECT {_WEEK_OF_MS.format(ms="TRY_CAST(event.data.timestamp_unixtime_ms AS DOUBLE)")} AS week, count(*) AS records
FROM records GROUP BY ALL
"""


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
                parameters = {"path": str(path), "structure": _SCAN_STRUCTURE}
                weeks_and_records = connection.execute(_SCAN_SQL, parameters).fetchall()
        except duckdb.Error as error:
            status, detail = "unreadable_json", _first_line(error)
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


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


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
                _with_week(file_quarantine(scan.source_file, raw, scan.status, scan.detail), scan.home_week)
            )
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")  # it prints to stdout, noise in run logs
        for group in _groups_by_size(readable):
            parsed, unreadable = _parse_view_group(connection, group, scans)
            quarantine.extend(unreadable)
            if parsed is not None:
                group_rows, group_quarantine = _split_view_rows(connection, parsed, scans)
                rows.append(group_rows)
                quarantine.append(group_quarantine)
    positions = ["source_file", "batch_index", "event_index"]
    result = ParseResult(pl.concat(rows).sort(positions), pl.concat(quarantine))
    if week is None:
        return result
    return ParseResult(*(frame.filter(pl.col("week_start") == week) for frame in result))


def _with_week(frame: pl.DataFrame, week: date) -> pl.DataFrame:
    return as_quarantine(frame.with_columns(pl.lit(week, dtype=pl.Date).alias("week_start")), weekly=True)


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


def _parse_view_group(
    connection: duckdb.DuckDBPyConnection, paths: list[str], scans: dict[str, ViewFileScan]
) -> tuple[pl.DataFrame | None, list[pl.DataFrame]]:
    """One row per event (or per empty/broken batch) of the group, plus quarantine rows for unreadable files."""
    parameters = {"paths": paths, "structure": _BATCH_STRUCTURE, "event_structure": _EVENT_STRUCTURE}
    try:
        return connection.execute(_VIEW_FILES_SQL, parameters).pl(), []
    except duckdb.Error as error:
        if len(paths) == 1:  # the scan read it, the full parse cannot: still one quarantined file
            scan = scans[paths[0]]
            text = excerpt(Path(paths[0]).read_bytes().decode("utf-8", "replace"))
            row = file_quarantine(scan.source_file, text, "unreadable_json", _first_line(error))
            return None, [_with_week(row, scan.home_week)]
    middle = len(paths) // 2  # bisect: a few bad files cost a few extra parses, not one query per file
    results = [_parse_view_group(connection, half, scans) for half in (paths[:middle], paths[middle:])]
    parsed = [frame for frame, _ in results if frame is not None]
    return (pl.concat(parsed) if parsed else None), [row for _, rows in results for row in rows]


def _split_view_rows(
    connection: duckdb.DuckDBPyConnection, parsed: pl.DataFrame, scans: dict[str, ViewFileScan]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bronze event rows vs. quarantine rows (batches without events, timestamps that are not a time)."""
    sources = {path: scan.source_file for path, scan in scans.items()}
    folders = {path: scan.platform_folder for path, scan in scans.items()}
    homes = {path: scan.home_week for path, scan in scans.items()}
    parsed = parsed.with_columns(
        pl.col("event_week").fill_null(pl.col("path").replace_strict(homes, return_dtype=pl.Date)).alias("week_start"),
        pl.col("path").replace_strict(sources, return_dtype=pl.String).alias("source_file"),
        pl.col("path").replace_strict(folders, return_dtype=pl.String).alias("platform_folder"),
    )
    bad_times = parsed.filter(
        pl.col("event_index").is_not_null() & pl.col("timestamp_text").is_not_null() & pl.col("event_week").is_null()
    )
    positions = ["source_file", "batch_index", "event_index"]
    rows = (
        parsed.filter(pl.col("event_index").is_not_null())
        .join(bad_times.select(positions), on=positions, how="anti")
        .select(VIEW_EVENTS_BRONZE_SCHEMA.names())
        .cast(dict(VIEW_EVENTS_BRONZE_SCHEMA))
    )
    bad_batches = parsed.filter(pl.col("events_missing"))
    quarantine = pl.concat(
        [
            VIEW_REJECTS_SCHEMA.to_frame(),
            *(
                _bad_batch_quarantine(connection, path, group)
                for (path,), group in bad_batches.group_by("path", maintain_order=True)
            ),
            as_quarantine(
                bad_times.with_columns(
                    pl.format("batch {} event {}", "batch_index", "event_index").alias("position"),
                    pl.lit("invalid_timestamp").alias("reason"),
                    pl.format(
                        "timestamp_unixtime_ms '{}' is not a time (milliseconds since 1970, before year 10000)",
                        "timestamp_text",
                    ).alias("detail"),
                    pl.struct(*_RAW_EVENT_FIELDS).struct.json_encode().alias("raw"),
                ),
                weekly=True,
            ),
        ]
    )
    return rows, quarantine


def _bad_batch_quarantine(connection: duckdb.DuckDBPyConnection, path: str, batches: pl.DataFrame) -> pl.DataFrame:
    """Batches that are not objects with an `events` array, with their JSON text as landed (rare, so re-read)."""
    indexes = batches["batch_index"].to_list()
    json_paths = [f"$[{index}]" for index in indexes]
    (raw_batches,) = connection.execute(
        "SELECT json_extract(content, $paths)::VARCHAR[] FROM read_text($path)", {"paths": json_paths, "path": path}
    ).fetchone()
    return as_quarantine(
        pl.DataFrame(
            {
                "week_start": batches["week_start"],
                "source_file": batches["source_file"],
                "position": [f"batch {index}" for index in indexes],
                "reason": ["batch_without_events"] * len(indexes),
                "detail": ["batch is not an object with an events array"] * len(indexes),
                "raw": [excerpt(raw) for raw in raw_batches],
            }
        ),
        weekly=True,
    )
