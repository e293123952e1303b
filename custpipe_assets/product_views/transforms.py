"""Pure transforms for the product-views domain: Amaro landing files -> bronze -> silver -> gold (Polars frames).

Belongs here: parsing the landing formats into typed bronze frames that keep their source file and position, the
silver rules (which orders are purchases, which events are product views, canonical platform names, local time)
and the per-minute gold frame the CTR API serves. No Dagster and no warehouse I/O: frames in, frames out.

Time: `order_date` is local time GMT-03:00 (a fixed offset, no daylight saving) and event timestamps are UTC
milliseconds. Silver keeps both `event_time_utc` (tz-aware UTC) and `event_time_local` (naive GMT-03:00).

Platforms: `iOS`, `Android`, `MobileWeb` (the view folders). Orders from any other device (desktop, empty, ...)
are kept and labelled `Other`; they have no views, so they never get a click-through rate.

Quarantine frames share QUARANTINE_SCHEMA (`source_file, line_number_or_position, raw, reason`). Positions are
`line N` for CSV (1-based, the header is line 1), `batch B, event E` for JSON (0-based array indexes) and `file`
when the whole file is unreadable.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
import polars as pl

LOCAL_UTC_OFFSET = timedelta(hours=-3)
VIEW_PLATFORMS = ("Android", "MobileWeb", "iOS")
OTHER_PLATFORM = "Other"
# Device and folder names, lower-cased with everything but letters and digits removed, to canonical platforms.
PLATFORM_ALIASES = {
    "ios": "iOS",
    "iphone": "iOS",
    "ipad": "iOS",
    "android": "Android",
    "mobileweb": "MobileWeb",
    "mweb": "MobileWeb",
    "msite": "MobileWeb",
}
# An order is a purchase once its payment is approved, whatever happened to the parcel afterwards.
# pending_payment is not (yet) one: it turns into cancelled more often than not, and counting it would rewrite
# history when it does. cancelled and refunded orders are not purchases.
PURCHASE_STATUSES = frozenset({"payment_approved", "invoiced", "shipped", "delivered"})
NON_PURCHASE_STATUSES = frozenset({"pending_payment", "cancelled", "refunded"})
STATUS_ALIASES = {"canceled": "cancelled"}
PRODUCT_CODE_PATTERN = r"^[0-9]+_[0-9]+$"

_LOCAL_DATETIME = pl.Datetime("us")
_UTC_DATETIME = pl.Datetime("us", "UTC")
ORDER_COLUMN_TYPES: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "user_id": pl.Int64(),
    "order_date": _LOCAL_DATETIME,
    "order_subtotal": pl.Float64(),
    "order_discount": pl.Float64(),
    "order_total": pl.Float64(),
    "order_status": pl.String(),
    "payment_type": pl.String(),
    "shipping_cost": pl.Float64(),
    "shipping_service": pl.String(),
    "address_city": pl.String(),
    "address_state": pl.String(),
    "utm_source_medium": pl.String(),
    "device_type": pl.String(),
}
ORDER_ITEM_COLUMN_TYPES: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "order_id": pl.Int64(),
    "sku": pl.String(),
    "quantity": pl.Int64(),
    "code_color": pl.String(),
}
_LINEAGE = {"source_file": pl.String(), "line_number": pl.Int64()}
_VIEW_LINEAGE = ("source_file", "platform_folder", "batch_index", "event_index")
# Product-view files are parsed in groups of at most this many bytes: their text is held in memory while parsed.
GROUP_BYTES = 128 * 1024 * 1024
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
ORDERS_BRONZE_SCHEMA = pl.Schema({**_LINEAGE, **ORDER_COLUMN_TYPES})
ORDER_ITEMS_BRONZE_SCHEMA = pl.Schema({**_LINEAGE, **ORDER_ITEM_COLUMN_TYPES})
VIEW_EVENTS_BRONZE_SCHEMA = pl.Schema(
    {
        "source_file": pl.String(),
        "platform_folder": pl.String(),
        "batch_index": pl.Int64(),
        "event_index": pl.Int64(),
        "mpid": pl.String(),
        "batch_id": pl.String(),
        "message_id": pl.String(),
        "event_type": pl.String(),
        "custom_event_type": pl.String(),
        "event_name": pl.String(),
        "event_id": pl.String(),
        "session_id": pl.String(),
        "timestamp_unixtime_ms": pl.Float64(),
        "code_color": pl.String(),
    }
)
QUARANTINE_SCHEMA = pl.Schema(
    {"source_file": pl.String(), "line_number_or_position": pl.String(), "raw": pl.String(), "reason": pl.String()}
)
PURCHASES_SILVER_SCHEMA = pl.Schema(
    {
        "order_id": pl.Int64(),
        "order_item_id": pl.Int64(),
        "user_id": pl.Int64(),
        "product": pl.String(),
        "sku": pl.String(),
        "quantity": pl.Int64(),
        "order_status": pl.String(),
        "device_type": pl.String(),
        "platform": pl.String(),
        "event_time_local": _LOCAL_DATETIME,
        "event_time_utc": _UTC_DATETIME,
    }
)
PRODUCT_VIEWS_SILVER_SCHEMA = pl.Schema(
    {
        "platform": pl.String(),
        "product": pl.String(),
        "event_time_local": _LOCAL_DATETIME,
        "event_time_utc": _UTC_DATETIME,
        "event_id": pl.String(),
        "session_id": pl.String(),
        "mpid": pl.String(),
        "source_file": pl.String(),
        "batch_index": pl.Int64(),
        "event_index": pl.Int64(),
    }
)
IGNORED_EVENTS_SCHEMA = pl.Schema(
    {"platform": pl.String(), "event_type": pl.String(), "event_name": pl.String(), "events": pl.Int64()}
)
ORDER_STATUS_COUNTS_SCHEMA = pl.Schema(
    {"order_status": pl.String(), "counts_as_purchase": pl.Boolean(), "orders": pl.Int64(), "items": pl.Int64()}
)
GOLD_CTR_MINUTE_SCHEMA = pl.Schema(
    {
        "minute_local": _LOCAL_DATETIME,
        "platform": pl.String(),
        "product": pl.String(),
        "views": pl.Int64(),
        "purchases": pl.Int64(),
    }
)

# Only the fields the pipeline uses are read; ids are VARCHAR so 64-bit (and larger) integers stay exact, and the
# timestamp is VARCHAR so a non-numeric value reaches the quarantine instead of failing the whole file.
_BATCH_JSON_STRUCTURE = json.dumps(
    [
        {
            "events": [
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
            ],
            "mpid": "VARCHAR",
            "batch_id": "VARCHAR",
            "message_id": "VARCHAR",
        }
    ]
)
# One row per event. A batch without events yields one row with a NULL event_index, so a batch whose `events` is
# missing or not an array (events_missing) is quarantined instead of vanishing in the unnest. Positions are
# computed per file (one read_text row per file), never from scan order.
_VIEW_FILES_SQL = """
WITH parsed AS (
    SELECT filename AS source_file, from_json(content, $structure) AS batches FROM read_text($paths)
), batches AS (
    SELECT source_file, unnest(range(len(batches))) AS batch_index, unnest(batches) AS batch FROM parsed
), events AS (
    SELECT
        source_file,
        batch_index,
        batch.events IS NULL AS events_missing,
        batch.mpid, batch.batch_id, batch.message_id,
        unnest(CASE WHEN len(batch.events) > 0 THEN range(len(batch.events)) ELSE [NULL] END) AS event_index,
        unnest(CASE WHEN len(batch.events) > 0 THEN batch.events ELSE [NULL] END) AS event
    FROM batches
)
SELECT
    source_file, batch_index, event_index, events_missing, mpid, batch_id, message_id,
    event.event_type,
    event.data.custom_event_type,
    event.data.event_name,
    event.data.event_id,
    event.data.session_id,
    event.data.timestamp_unixtime_ms AS timestamp_text,
    TRY_CAST(event.data.timestamp_unixtime_ms AS DOUBLE) AS timestamp_unixtime_ms,
    event.data.custom_attributes."codeColor" AS code_color
FROM events
"""


class ParseResult(NamedTuple):
    """Bronze rows plus the rows or files that could not be read."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame


class SilverProductViews(NamedTuple):
    views: pl.DataFrame
    quarantine: pl.DataFrame
    ignored_event_counts: pl.DataFrame


class SilverPurchases(NamedTuple):
    purchases: pl.DataFrame
    quarantine: pl.DataFrame
    order_status_counts: pl.DataFrame


def canonical_platform(device_or_folder: pl.Expr) -> pl.Expr:
    """`ios`, `iPhone`, `mobile web`, `mobile_web`... -> iOS / Android / MobileWeb; anything else -> Other."""
    key = device_or_folder.str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")
    return key.replace_strict(PLATFORM_ALIASES, default=OTHER_PLATFORM, return_dtype=pl.String).fill_null(
        OTHER_PLATFORM
    )


def utc_to_local(utc: pl.Expr) -> pl.Expr:
    """Tz-aware UTC -> naive GMT-03:00 wall-clock time."""
    return utc.dt.replace_time_zone(None) + LOCAL_UTC_OFFSET


# --- bronze: CSV ------------------------------------------------------------------------------------------------


def parse_orders_csv(path: Path) -> ParseResult:
    """Bronze orders: typed columns named as landed; an absent file gives an empty frame (the asset warns)."""
    return _parse_csv(Path(path), ORDER_COLUMN_TYPES, ORDERS_BRONZE_SCHEMA)


def parse_order_items_csv(path: Path) -> ParseResult:
    """Bronze order items: typed columns named as landed; an absent file gives an empty frame."""
    return _parse_csv(Path(path), ORDER_ITEM_COLUMN_TYPES, ORDER_ITEMS_BRONZE_SCHEMA)


def _csv_records(text: str) -> Iterator[tuple[int, list[str], str]]:
    """(first line number, fields, raw text) per CSV record; a quoted field may span several lines."""
    pending: list[str] = []

    def physical_lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            pending.append(line)
            yield line

    reader = csv.reader(physical_lines())
    for fields in reader:
        first_line = reader.line_num - len(pending) + 1
        raw = "".join(pending).rstrip("\r\n")
        pending.clear()
        yield first_line, fields, raw


def _parse_csv(path: Path, column_types: dict[str, pl.DataType], schema: pl.Schema) -> ParseResult:
    source = str(path)
    empty = ParseResult(schema.to_frame(), QUARANTINE_SCHEMA.to_frame())
    if not path.exists():
        return empty
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        return empty._replace(quarantine=_file_quarantine(source, "", f"file is not UTF-8: {error}"))
    records = _csv_records(text)
    first = next(records, None)
    if first is None:
        return empty._replace(quarantine=_file_quarantine(source, "", "empty file: no header line"))
    _, header, header_raw = first
    missing = [column for column in column_types if column not in header]
    if missing:
        return empty._replace(quarantine=_file_quarantine(source, header_raw, f"header lacks columns {missing}"))
    positions = [header.index(column) for column in column_types]
    line_numbers: list[int] = []
    raws: list[str] = []
    values: list[list[str]] = []
    bad_shape: list[tuple[str, str, str, str]] = []
    for line_number, fields, raw in records:
        if not fields:
            continue  # a blank line carries no data
        if len(fields) != len(header):
            reason = f"expected {len(header)} fields, found {len(fields)}"
            bad_shape.append((source, f"line {line_number}", raw, reason))
            continue
        line_numbers.append(line_number)
        raws.append(raw)
        values.append([fields[position] for position in positions])
    text_frame = pl.DataFrame(
        {
            "line_number": line_numbers,
            "raw": raws,
            **{column: [row[index] for row in values] for index, column in enumerate(column_types)},
        },
        schema={"line_number": pl.Int64, "raw": pl.String, **{column: pl.String for column in column_types}},
    ).with_columns(pl.col(column).str.strip_chars().replace("", None) for column in column_types)
    typed = text_frame.with_columns(
        _typed(pl.col(column), dtype).alias(f"__typed_{column}") for column, dtype in column_types.items()
    )
    failures = [
        pl.when(pl.col(column).is_not_null() & pl.col(f"__typed_{column}").is_null()).then(
            pl.format("{} '{}' is not {}", pl.lit(column), pl.col(column), pl.lit(_type_description(dtype)))
        )
        for column, dtype in column_types.items()
    ]
    reason = pl.concat_str(failures, separator="; ", ignore_nulls=True)
    typed = typed.with_columns(pl.when(reason != "").then(reason).alias("__reason"))
    rows = typed.filter(pl.col("__reason").is_null()).select(
        pl.lit(source).alias("source_file"),
        "line_number",
        *(pl.col(f"__typed_{column}").alias(column) for column in column_types),
    )
    type_quarantine = typed.filter(pl.col("__reason").is_not_null()).select(
        pl.lit(source).alias("source_file"),
        pl.format("line {}", pl.col("line_number")).alias("line_number_or_position"),
        "raw",
        pl.col("__reason").alias("reason"),
    )
    shape_quarantine = pl.DataFrame(bad_shape, schema=QUARANTINE_SCHEMA, orient="row")
    quarantine = pl.concat([shape_quarantine, type_quarantine]).sort(
        pl.col("line_number_or_position").str.extract(r"(\d+)").cast(pl.Int64)
    )
    return ParseResult(rows.cast(dict(schema)), quarantine)


def _typed(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == _LOCAL_DATETIME:
        return text.str.strptime(_LOCAL_DATETIME, "%Y-%m-%d %H:%M:%S", strict=False)
    return text.cast(dtype, strict=False)


def _type_description(dtype: pl.DataType) -> str:
    if dtype == _LOCAL_DATETIME:
        return "a YYYY-MM-DD HH:MM:SS timestamp"
    if dtype == pl.Int64():
        return "an integer"
    if dtype == pl.Float64():
        return "a number"
    return str(dtype)


def _file_quarantine(source: str, raw: str, reason: str) -> pl.DataFrame:
    return pl.DataFrame([(source, "file", raw, reason)], schema=QUARANTINE_SCHEMA, orient="row")


# --- bronze: product-view JSON ----------------------------------------------------------------------------------


def list_product_view_files(product_views_dir: Path) -> list[Path]:
    """Every JSON file under `product_views/`, sorted so bronze row order (and first-seen duplicates) is stable."""
    product_views_dir = Path(product_views_dir)
    if not product_views_dir.is_dir():
        return []
    return sorted((path for path in product_views_dir.rglob("*.json") if path.is_file()), key=str)


def parse_product_view_files(files: Sequence[Path], product_views_dir: Path) -> ParseResult:
    """Bronze events (every event type) from product-view files; the platform is the first folder below the root.

    DuckDB's JSON reader (`read_text` + `from_json`) does the parsing: it is several times faster than Python's
    json, reads 64-bit ids as exact text, and parallelizes across files. Files go in groups of at most
    GROUP_BYTES; a group that fails is bisected until the unreadable
    files are isolated and quarantined. Also quarantined: files outside a platform folder or whose
    top-level value is not an array, batches without an events array, events whose timestamp is not a number.
    """
    product_views_dir = Path(product_views_dir)
    rows: list[pl.DataFrame] = [VIEW_EVENTS_BRONZE_SCHEMA.to_frame()]
    quarantine: list[pl.DataFrame] = [QUARANTINE_SCHEMA.to_frame()]
    platform_folders: dict[str, str] = {}
    for path in map(Path, files):
        problem = _view_file_shape_problem(path, product_views_dir)
        if problem is not None:
            quarantine.append(problem)
        else:
            platform_folders[str(path)] = path.relative_to(product_views_dir).parts[0]
    with duckdb.connect() as connection:
        connection.execute("SET enable_progress_bar = false")  # it prints to stdout, noise in run logs
        for group in _groups_by_size(list(platform_folders)):
            parsed, unreadable = _parse_view_group(connection, group)
            quarantine.extend(unreadable)
            if parsed is not None:
                group_rows, group_quarantine = _split_view_rows(connection, parsed, platform_folders)
                rows.append(group_rows)
                quarantine.append(group_quarantine)
    positions = ["source_file", "batch_index", "event_index"]
    return ParseResult(pl.concat(rows).sort(positions), pl.concat(quarantine))




def _view_file_shape_problem(path: Path, product_views_dir: Path) -> pl.DataFrame | None:
    """A file-level quarantine row when the file cannot hold batches for a platform, else None (cheap checks)."""
    source = str(path)
    if len(path.relative_to(product_views_dir).parts) < 2:
        return _file_quarantine(source, "", "file is not inside a platform folder (product_views/<platform>/*.json)")
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    if head.startswith(b"["):
        return None
    reason = "empty file" if not head else "top-level JSON value is not an array of batches"
    return _file_quarantine(source, _excerpt(head.decode("utf-8", "replace")), reason)


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
    connection: duckdb.DuckDBPyConnection, sources: list[str]
) -> tuple[pl.DataFrame | None, list[pl.DataFrame]]:
    """One row per event (or per empty/broken batch) of the group, plus quarantine rows for unreadable files."""
    parameters = {"paths": sources, "structure": _BATCH_JSON_STRUCTURE}
    try:
        return connection.execute(_VIEW_FILES_SQL, parameters).pl(), []
    except duckdb.Error as error:
        if len(sources) == 1:
            text = Path(sources[0]).read_bytes().decode("utf-8", "replace")
            return None, [_file_quarantine(sources[0], _excerpt(text), f"unreadable JSON: {error}")]
    middle = len(sources) // 2  # bisect: a few bad files cost a few extra parses, not one query per file
    results = [_parse_view_group(connection, half) for half in (sources[:middle], sources[middle:])]
    parsed = [frame for frame, _ in results if frame is not None]
    return (pl.concat(parsed) if parsed else None), [row for _, rows in results for row in rows]


def _split_view_rows(
    connection: duckdb.DuckDBPyConnection, parsed: pl.DataFrame, platform_folders: dict[str, str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Bronze event rows vs. quarantine rows (batches without events, non-numeric timestamps)."""
    parsed = parsed.with_columns(
        pl.col("source_file").replace_strict(platform_folders, return_dtype=pl.String).alias("platform_folder")
    )
    bad_times = parsed.filter(
        pl.col("event_index").is_not_null()
        & pl.col("timestamp_text").is_not_null()
        & ~pl.col("timestamp_unixtime_ms").is_finite().fill_null(False)
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
            *(
                _bad_batch_quarantine(connection, source, group["batch_index"].to_list())
                for (source,), group in bad_batches.group_by("source_file", maintain_order=True)
            ),
            bad_times.select(
                "source_file",
                pl.format("batch {}, event {}", "batch_index", "event_index").alias("line_number_or_position"),
                pl.struct(*_RAW_EVENT_FIELDS).struct.json_encode().alias("raw"),
                pl.format("timestamp_unixtime_ms '{}' is not a finite number", "timestamp_text").alias("reason"),
            ),
        ]
    )
    return rows, quarantine


def _bad_batch_quarantine(
    connection: duckdb.DuckDBPyConnection, source: str, batch_indexes: list[int]
) -> pl.DataFrame:
    """Batches that are not objects with an `events` array, with their JSON text as landed (rare, so re-read)."""
    if not batch_indexes:
        return QUARANTINE_SCHEMA.to_frame()
    paths = [f"$[{index}]" for index in batch_indexes]
    (raw_batches,) = connection.execute(
        "SELECT json_extract(content, $paths)::VARCHAR[] FROM read_text($path)", {"paths": paths, "path": source}
    ).fetchone()
    return pl.DataFrame(
        {
            "source_file": [source] * len(batch_indexes),
            "line_number_or_position": [f"batch {index}" for index in batch_indexes],
            "raw": [_excerpt(raw) for raw in raw_batches],
            "reason": ["batch is not an object with an events array"] * len(batch_indexes),
        },
        schema=QUARANTINE_SCHEMA,
    )


def _excerpt(text: str, limit: int = 400) -> str:
    """Whole text when short; otherwise its head and tail (a cut-off upload shows at the end)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]} ... {text[-limit // 2 :]}"


# --- silver -----------------------------------------------------------------------------------------------------


def build_silver_product_views(bronze_events: pl.DataFrame) -> SilverProductViews:
    """Product views (custom_event named `product`), deduplicated on (platform, event_id), in UTC and local time.

    Every other event is ignored and counted per platform, event_type and event_name. A product view from an
    unknown platform folder, without codeColor, with a codeColor that is not a product code, or without a
    timestamp is quarantined; a repeated event_id (a batch delivered twice) is quarantined as a duplicate of the
    first occurrence in file/batch/event order.
    """
    events = bronze_events.with_columns(canonical_platform(pl.col("platform_folder")).alias("platform"))
    is_product_view = (
        (pl.col("event_type") == "custom_event") & (pl.col("event_name") == "product")
    ).fill_null(False)
    ignored_event_counts = (
        events.filter(~is_product_view)
        .group_by("platform", "event_type", "event_name")
        .agg(pl.len().alias("events"))
        .sort("platform", "event_type", "event_name", nulls_last=True)
        .cast(dict(IGNORED_EVENTS_SCHEMA))
    )
    problem = (
        pl.when(pl.col("platform") == OTHER_PLATFORM)
        .then(pl.format("unknown platform folder '{}'", "platform_folder"))
        .when(pl.col("code_color").is_null() | (pl.col("code_color").str.strip_chars() == ""))
        .then(pl.lit("product view without codeColor"))
        .when(~pl.col("code_color").str.contains(PRODUCT_CODE_PATTERN))
        .then(pl.format("codeColor '{}' is not a product code like 20005748_001", "code_color"))
        .when(pl.col("timestamp_unixtime_ms").is_null())
        .then(pl.lit("product view without timestamp_unixtime_ms"))
    )
    same_event = ["__keyed", "platform", "event_id"]
    position_in_file = pl.format("batch {}, event {}", "batch_index", "event_index")
    position = pl.format("{} {}", "source_file", position_in_file)
    views = (
        events.filter(is_product_view)
        .with_columns(problem.alias("__problem"))
        .with_columns((pl.col("__problem").is_null() & pl.col("event_id").is_not_null()).alias("__keyed"))
        .with_columns(
            pl.when(pl.col("__keyed") & (pl.int_range(pl.len()).over(same_event) > 0))
            .then(pl.format("duplicate of event_id {} first seen in {}", "event_id", position.first().over(same_event)))
            .otherwise(pl.col("__problem"))
            .alias("__problem")
        )
    )
    raw_fields = [name for name in VIEW_EVENTS_BRONZE_SCHEMA.names() if name not in _VIEW_LINEAGE]
    quarantine = views.filter(pl.col("__problem").is_not_null()).select(
        "source_file",
        position_in_file.alias("line_number_or_position"),
        pl.struct(raw_fields).struct.json_encode().alias("raw"),
        pl.col("__problem").alias("reason"),
    )
    microseconds = (pl.col("timestamp_unixtime_ms") * 1000).floor().cast(pl.Int64)
    event_time_utc = microseconds.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    clean = (
        views.filter(pl.col("__problem").is_null())
        .with_columns(event_time_utc.alias("event_time_utc"))
        .with_columns(
            pl.col("code_color").str.strip_chars().alias("product"),
            utc_to_local(pl.col("event_time_utc")).alias("event_time_local"),
        )
        .select(PRODUCT_VIEWS_SILVER_SCHEMA.names())
    )
    return SilverProductViews(clean, quarantine, ignored_event_counts)


def build_silver_purchases(bronze_orders: pl.DataFrame, bronze_items: pl.DataFrame) -> SilverPurchases:
    """Order items joined to their orders, keeping only purchases (see PURCHASE_STATUSES), in UTC and local time.

    Statuses are compared lower-cased with `canceled` read as `cancelled`. Quarantined: orders without id, date
    or status, with a status in neither PURCHASE_STATUSES nor NON_PURCHASE_STATUSES, or repeating an id (the first
    line wins); items without order_id, without or with a malformed code_color, repeating an item id, or whose
    order is absent or quarantined. Items of valid non-purchase orders are not errors: `order_status_counts` shows
    how many orders and items each status holds and whether it counts as a purchase.
    """
    known_statuses = sorted(PURCHASE_STATUSES | NON_PURCHASE_STATUSES)
    orders = bronze_orders.with_columns(
        pl.col("order_status").str.strip_chars().str.to_lowercase().replace(STATUS_ALIASES).alias("__status")
    )
    order_problem = (
        pl.when(pl.col("id").is_null())
        .then(pl.lit("order without id"))
        .when(pl.col("order_date").is_null())
        .then(pl.lit("order without order_date"))
        .when(pl.col("__status").is_null())
        .then(pl.lit("order without order_status"))
        .when(~pl.col("__status").is_in(known_statuses))
        .then(pl.format("unknown order_status '{}' (known: {})", "order_status", pl.lit(", ".join(known_statuses))))
    )
    orders, orders_quarantine = _split_problems(
        orders, order_problem, key="id", what="order id", raw_columns=list(ORDER_COLUMN_TYPES)
    )
    items = bronze_items.with_columns(pl.col("code_color").str.strip_chars())
    item_problem = (
        pl.when(pl.col("id").is_null())
        .then(pl.lit("order item without id"))
        .when(pl.col("order_id").is_null())
        .then(pl.lit("order item without order_id"))
        .when(pl.col("code_color").is_null())
        .then(pl.lit("order item without code_color"))
        .when(~pl.col("code_color").str.contains(PRODUCT_CODE_PATTERN))
        .then(pl.format("code_color '{}' is not a product code like 20005748_001", "code_color"))
    )
    items, items_quarantine = _split_problems(
        items, item_problem, key="id", what="order item id", raw_columns=list(ORDER_ITEM_COLUMN_TYPES)
    )
    joined = items.join(
        orders.select(
            pl.col("id").alias("order_id"),
            "user_id",
            "order_date",
            pl.col("__status").alias("order_status"),
            "device_type",
        ),
        on="order_id",
        how="left",
        maintain_order="left",
    )
    orphans = joined.filter(pl.col("order_date").is_null())
    orphans_quarantine = _quarantine_rows(
        orphans,
        pl.format("order_id {} is not a valid order (absent from orders or quarantined)", "order_id"),
        list(ORDER_ITEM_COLUMN_TYPES),
    )
    lines = joined.filter(pl.col("order_date").is_not_null()).with_columns(
        pl.col("order_status").is_in(sorted(PURCHASE_STATUSES)).alias("counts_as_purchase")
    )
    order_status_counts = (
        lines.group_by("order_status", "counts_as_purchase")
        .agg(pl.col("order_id").n_unique().alias("orders"), pl.len().alias("items"))
        .sort("order_status")
        .cast(dict(ORDER_STATUS_COUNTS_SCHEMA))
    )
    purchases = (
        lines.filter(pl.col("counts_as_purchase"))
        .with_columns(
            pl.col("order_date").alias("event_time_local"),
            (pl.col("order_date") - LOCAL_UTC_OFFSET).dt.replace_time_zone("UTC").alias("event_time_utc"),
            pl.col("id").alias("order_item_id"),
            pl.col("code_color").alias("product"),
            canonical_platform(pl.col("device_type")).alias("platform"),
        )
        .select(PURCHASES_SILVER_SCHEMA.names())
        .sort("event_time_utc", "order_id", "order_item_id")
    )
    quarantine = pl.concat([orders_quarantine, items_quarantine, orphans_quarantine])
    return SilverPurchases(purchases, quarantine, order_status_counts)


def _split_problems(
    frame: pl.DataFrame, problem: pl.Expr, *, key: str, what: str, raw_columns: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows without problems and unique on `key` (first line wins) vs. quarantine rows with their reason."""
    frame = frame.sort("source_file", "line_number").with_columns(problem.alias("__problem"))
    valid = frame.filter(pl.col("__problem").is_null()).with_columns(
        pl.format("{} line {}", "source_file", "line_number").first().over(key).alias("__first"),
        (pl.int_range(pl.len()).over(key) > 0).alias("__repeated"),
    )
    duplicate_reason = pl.format("duplicate {} {} (first at {})", pl.lit(what), pl.col(key), "__first")
    quarantine = pl.concat(
        [
            _quarantine_rows(frame.filter(pl.col("__problem").is_not_null()), pl.col("__problem"), raw_columns),
            _quarantine_rows(valid.filter("__repeated"), duplicate_reason, raw_columns),
        ]
    )
    kept = valid.filter(~pl.col("__repeated")).drop("__problem", "__first", "__repeated")
    return kept, quarantine


def _quarantine_rows(frame: pl.DataFrame, reason: pl.Expr, raw_columns: list[str]) -> pl.DataFrame:
    """Rows of a typed frame as quarantine rows; `raw` is the row as JSON (the typed values, dates ISO)."""
    return frame.select(
        "source_file",
        pl.format("line {}", "line_number").alias("line_number_or_position"),
        pl.struct(raw_columns).struct.json_encode().alias("raw"),
        reason.alias("reason"),
    )


# --- gold -------------------------------------------------------------------------------------------------------


def build_gold_ctr_per_minute(views: pl.DataFrame, purchases: pl.DataFrame) -> pl.DataFrame:
    """Views and purchases per local minute, platform and product: the grain every CTR bucket is summed from.

    `views` counts product views; `purchases` counts distinct orders containing the product (quantity and
    repeated lines of one order count once). Rows exist where either is non-zero. Minutes are floored, so an
    event at 10:04:59.999 belongs to 10:04 and one at 10:05:00 to 10:05.
    """
    keys = ["minute_local", "platform", "product"]
    minute = pl.col("event_time_local").dt.truncate("1m").alias("minute_local")
    view_counts = views.group_by(minute, "platform", "product").agg(pl.len().cast(pl.Int64).alias("views"))
    purchase_counts = purchases.group_by(minute, "platform", "product").agg(
        pl.col("order_id").n_unique().cast(pl.Int64).alias("purchases")
    )
    return (
        view_counts.join(purchase_counts, on=keys, how="full", coalesce=True)
        .with_columns(pl.col("views", "purchases").fill_null(0))
        .select(GOLD_CTR_MINUTE_SCHEMA.names())
        .cast(dict(GOLD_CTR_MINUTE_SCHEMA))
        .sort(keys)
    )
