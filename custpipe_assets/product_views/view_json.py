"""How DuckDB reads the product-view JSON exports for `view_files.py`: the cheap scan's query (only timestamps
typed) and the full parse's (one row per event, ids kept as exact text), the UTC week of a millisecond time
computed in SQL, a group of files parsed with the unreadable ones bisected out, and the parsed rows split into
bronze events and quarantine rows.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from custpipe_assets.core.quarantine import as_quarantine
from custpipe_assets.product_views.schemas import (
    VIEW_EVENTS_BRONZE_SCHEMA,
    VIEW_REJECTS_SCHEMA,
    excerpt,
    file_quarantine,
)

if TYPE_CHECKING:
    from custpipe_assets.product_views.view_files import ViewFileScan

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
SCAN_STRUCTURE = json.dumps([{"events": [{"data": {"timestamp_unixtime_ms": "VARCHAR"}}]}])
SCAN_SQL = f"""
WITH parsed AS (SELECT from_json(content, $structure) AS batches FROM read_text($path)),
batches AS (SELECT unnest(batches) AS batch FROM parsed),
records AS (SELECT unnest(CASE WHEN batch.events IS NULL THEN [NULL] ELSE batch.events END) AS event FROM batches)
SELECT {_WEEK_OF_MS.format(ms="TRY_CAST(event.data.timestamp_unixtime_ms AS DOUBLE)")} AS week, count(*) AS records
FROM records GROUP BY ALL
"""


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def with_week(frame: pl.DataFrame, week: date) -> pl.DataFrame:
    return as_quarantine(frame.with_columns(pl.lit(week, dtype=pl.Date).alias("week_start")), weekly=True)


def parse_view_group(
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
            row = file_quarantine(scan.source_file, text, "unreadable_json", first_line(error))
            return None, [with_week(row, scan.home_week)]
    middle = len(paths) // 2  # bisect: a few bad files cost a few extra parses, not one query per file
    results = [parse_view_group(connection, half, scans) for half in (paths[:middle], paths[middle:])]
    parsed = [frame for frame, _ in results if frame is not None]
    return (pl.concat(parsed) if parsed else None), [row for _, rows in results for row in rows]


def split_view_rows(
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
