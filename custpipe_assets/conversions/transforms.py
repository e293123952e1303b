"""Bronze reading and silver cleaning of the BrokerChooser sources: pure functions over Polars frames.

What belongs here: landed files -> bronze frames (one row per landed data line, with `source_file`, 1-based
`line_number` (the header is line 1), the line as landed in `raw_line`, its fields as strings and, for a line
that could not be split into fields, its `read_issue`), the week each line belongs to, and bronze -> silver (typed
columns, ISO country codes, UTC times, deduplication, category mapping). Matching lives in `matching.py`, the
report in `report.py`.

Weekly partitions (Monday 00:00 UTC) are by the line's own time: `created_at` for conversions, `timestamp` for
broker rows, read from the field or, when the line cannot be split, from the first time-looking text in it. A line
with no readable time belongs to the week of the nearest dated line above it in its file (below it, when none is
above), and in a file without any dated line to the week the file was last modified (landed). So every landed
line is in exactly one week, and a week's lines are its silver rows plus its quarantine rows.

Every rejected line is a quarantine row in the core contract (`core/quarantine.py`): `week_start` (batch lines
only), `source_file` (`conversions/<file>`, `broker_data/<file>` or the mapping file, so it names the source),
`line_number`, `position` (null: a line is the record), `reason`, `detail` (for a duplicate, the line kept) and
`raw` (the line as landed). Reasons:
- reading: `wrong_header` (every data line of a file whose header is not the expected columns, e.g. written
  with the wrong separator), `invalid_utf8`, `blank_line`, `unparseable` (broken quoting), `too_many_fields`,
  `too_few_fields`;
- cleaning: `invalid_id`, `invalid_created_at`, `invalid_is_mobile`, `invalid_timestamp`, `missing_value`,
  `duplicate` (same content as a row kept earlier), `duplicate_id` (conversion id kept earlier with other
  content), `conflicting_mapping` (measurement category mapped earlier to another page category).
File-level findings (`empty_file`, `header_only`, `wrong_header`) are the `status` of the file in `files`: such a
file has no data line to quarantine, and a check reports it.

Values that are junk in an optional attribute do not cost the row: an `important_score` that is not an integer
(`#REF!`) becomes null with the reason in `important_score_issue`; an unknown measurement category keeps its raw
value with a null `page_category`; an unresolvable country keeps its raw name with a null code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from custpipe_assets.conversions.countries import with_country_code
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
)
from custpipe_assets.core.arrivals import monday_of
from custpipe_assets.core.csv_reader import READ_ISSUES, bronze_csv_schema, read_csv_export
from custpipe_assets.core.quarantine import as_quarantine

FILES_SCHEMA = {
    "source_file": pl.String,
    "data_lines": pl.Int64,
    "status": pl.String,
    "detail": pl.String,
    "landed_week": pl.Date,
}
# unix seconds outside [2000-01-01, 2100-01-01) are not registration times (milliseconds, typos)
TIMESTAMP_RANGE = (946_684_800, 4_102_444_800)
# the quarantine reason codes (checked by the quarantine tables' schema checks): read issues, then cleaning rules
CONVERSION_QUARANTINE_REASONS = (
    *READ_ISSUES,
    "invalid_id",
    "invalid_created_at",
    "invalid_is_mobile",
    "invalid_timestamp",
    "duplicate",
    "duplicate_id",
)
MAPPING_QUARANTINE_REASONS = (*READ_ISSUES, "missing_value", "duplicate", "conflicting_mapping")
BOOLEAN_WORDS = {"1": True, "true": True, "t": True, "yes": True, "0": False, "false": False, "f": False, "no": False}


@dataclass(frozen=True)
class BronzeRead:
    """One row per landed data line (fields as strings, `read_issue` when unreadable), one row per landed file."""

    rows: pl.DataFrame
    files: pl.DataFrame


@dataclass(frozen=True)
class Cleaned:
    """Silver rows and the rows rejected (by reading or cleaning), each with its reason."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame


def bronze_schema(columns: Sequence[str]) -> dict[str, pl.DataType]:
    """Bronze column order: provenance and the line as landed first, then the source's own columns, all strings."""
    return dict(bronze_csv_schema(columns))


def read_delimited_file(path: Path, *, separator: str, columns: Sequence[str], source_file: str) -> BronzeRead:
    """One export through the core CSV reader (never raises on content: every data line becomes exactly one row),
    with the week the file landed (its modification time) for lines that carry no time of their own."""
    read = read_csv_export(path, source_file=source_file, columns=columns, separator=separator)
    landed_week = monday_of(datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date())
    files = read.file.select(
        "source_file", "data_lines", "status", "detail", pl.lit(landed_week).alias("landed_week")
    ).cast(FILES_SCHEMA)
    return BronzeRead(read.rows.cast(bronze_schema(columns)), files)


def read_batch_folder(folder: Path, *, separator: str, columns: Sequence[str]) -> BronzeRead:
    """Read every `*.csv` in a folder, in name order; `source_file` is `<folder name>/<file name>`."""
    reads = [
        read_delimited_file(path, separator=separator, columns=columns, source_file=f"{folder.name}/{path.name}")
        for path in sorted(folder.glob("*.csv"))
    ]
    return _concat_reads(reads, columns)


def read_conversions(landing_dir: Path) -> BronzeRead:
    """Bronze conversions from `brokerchooser/conversions/*.csv`, each line with its week; absent folder: empty."""
    return _read_batches(landing_dir, CONVERSIONS_DIR)


def read_broker_registrations(landing_dir: Path) -> BronzeRead:
    """Bronze broker rows from `brokerchooser/broker_data/*.csv`, each line with its week; absent folder: empty."""
    return _read_batches(landing_dir, BROKER_DIR)


def _read_batches(landing_dir: Path, folder_name: str) -> BronzeRead:
    batch = BATCH_FORMATS[folder_name]
    folder = Path(landing_dir) / SOURCE_DIR / folder_name
    return with_weeks(read_batch_folder(folder, separator=batch.separator, columns=batch.columns), batch.line_time)


def read_batch_file(path: Path) -> BronzeRead:
    """One conversions or broker batch file as bronze with weeks (for the arrival sensor); its folder says which."""
    batch = BATCH_FORMATS[path.parent.name]
    read = read_delimited_file(
        path, separator=batch.separator, columns=batch.columns, source_file=f"{path.parent.name}/{path.name}"
    )
    return with_weeks(read, batch.line_time)


def read_page_category_mapping(landing_dir: Path) -> BronzeRead:
    """Bronze mapping from `brokerchooser/page_category_mapping.csv` (not weekly); an absent file gives empty frames."""
    path = Path(landing_dir) / SOURCE_DIR / MAPPING_FILE
    if not path.is_file():
        return _concat_reads([], MAPPING_COLUMNS)
    return read_delimited_file(path, separator=MAPPING_SEPARATOR, columns=MAPPING_COLUMNS, source_file=MAPPING_FILE)


def _created_at(text: pl.Expr) -> pl.Expr:
    """`YYYY-MM-DD HH:MM:SS` (UTC) as a datetime; null when it is not a real time."""
    return (
        text.str.strip_chars()
        .str.strptime(pl.Datetime("us"), CREATED_AT_FORMAT, strict=False)
        .dt.replace_time_zone("UTC")
    )


def _registered_at(text: pl.Expr) -> pl.Expr:
    """Unix seconds as a UTC datetime; null when not an integer in TIMESTAMP_RANGE."""
    seconds = text.str.strip_chars().cast(pl.Int64, strict=False)
    in_range = pl.when(seconds.is_between(*TIMESTAMP_RANGE, closed="left")).then(seconds)
    return pl.from_epoch(in_range, time_unit="s").dt.cast_time_unit("us").dt.replace_time_zone("UTC")


@dataclass(frozen=True)
class LineTime:
    """How a line's time is read: from its field, or, for a line that could not be split, from its raw text."""

    field: str
    parse: Callable[[pl.Expr], pl.Expr]
    raw_pattern: str  # the first capture group is the time text

    def expr(self) -> pl.Expr:
        from_raw = pl.when(pl.col("read_issue").is_not_null()).then(pl.col("raw_line").str.extract(self.raw_pattern))
        return pl.coalesce(self.parse(pl.col(self.field)), self.parse(from_raw))


CONVERSION_TIME = LineTime("created_at", _created_at, r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")
REGISTRATION_TIME = LineTime("timestamp", _registered_at, r"^\s*(\d{9,10})\s*,")


@dataclass(frozen=True)
class BatchFormat:
    """How the files of one batch folder are read: separator, columns, and the time that gives a line its week."""

    separator: str
    columns: tuple[str, ...]
    line_time: LineTime


BATCH_FORMATS = {
    CONVERSIONS_DIR: BatchFormat(CONVERSIONS_SEPARATOR, CONVERSION_COLUMNS, CONVERSION_TIME),
    BROKER_DIR: BatchFormat(BROKER_SEPARATOR, BROKER_COLUMNS, REGISTRATION_TIME),
}


def with_weeks(read: BronzeRead, line_time: LineTime) -> BronzeRead:
    """Add `week_start` to every bronze row: the week of its own time, else of its nearest dated neighbour in
    the file, else the week the file landed (see the module doc)."""
    rows = (
        read.rows.sort("source_file", "line_number")
        .with_columns(week_start=line_time.expr().dt.truncate("1w").dt.date())
        .with_columns(pl.col("week_start").forward_fill().backward_fill().over("source_file"))
        .join(read.files.select("source_file", "landed_week"), on="source_file", how="left", maintain_order="left")
        .select(pl.coalesce("week_start", "landed_week").alias("week_start"), *read.rows.columns)
    )
    return BronzeRead(rows, read.files)


def file_inventory(read: BronzeRead) -> pl.DataFrame:
    """One row per landed file: data lines, status, and the first and last week its lines belong to."""
    weeks = read.rows.group_by("source_file").agg(
        pl.col("week_start").min().alias("first_week"), pl.col("week_start").max().alias("last_week")
    )
    return read.files.join(weeks, on="source_file", how="left", maintain_order="left").select(
        "source_file", "data_lines", "status", "first_week", "last_week", "landed_week"
    )


def clean_page_category_mapping(bronze: pl.DataFrame) -> Cleaned:
    """One page category per measurement category; blanks, repeats and contradictions are quarantined."""
    stripped = bronze.with_columns(pl.col(column).str.strip_chars() for column in MAPPING_COLUMNS)
    blank = (pl.col("page_category") == "") | (pl.col("measurement_category") == "")
    judged = _judge_duplicates(
        stripped.with_columns(reason=_first_issue(pl.when(blank).then(pl.lit("missing_value")))),
        key="measurement_category",
        content="page_category",
        conflict_reason="conflicting_mapping",
    )
    kept = judged.filter(pl.col("reason").is_null()).select(
        "page_category", "measurement_category", "source_file", "line_number"
    )
    return Cleaned(kept.sort("line_number"), _quarantine_from(bronze, judged))


def clean_conversions(bronze: pl.DataFrame, mapping: pl.DataFrame) -> Cleaned:
    """Typed, deduplicated conversions with ISO country codes and their page category.

    Duplicate ids are collapsed to the row landed first (file name order, then line), which is deterministic
    and independent of row content; the later rows are quarantined as `duplicate` when identical and as
    `duplicate_id` when they disagree (real exports split one conversion into two country rows).
    """
    stripped = bronze.with_columns(
        content=pl.concat_str(list(CONVERSION_COLUMNS[1:]), separator="\x1f"),
    ).with_columns(pl.col(column).str.strip_chars() for column in CONVERSION_COLUMNS)
    typed = stripped.with_columns(
        conversion_id=pl.col("id").cast(pl.Int64, strict=False),
        created_at_utc=_created_at(pl.col("created_at")),
        is_mobile_flag=pl.col("is_mobile").str.to_lowercase().replace_strict(BOOLEAN_WORDS, default=None),
    ).with_columns(pl.col("is_mobile_flag").cast(pl.Boolean))
    invalid = _first_issue(
        pl.when(pl.col("conversion_id").is_null())
        .then(pl.lit("invalid_id"))
        .when(pl.col("created_at_utc").is_null())
        .then(pl.lit("invalid_created_at"))
        .when(pl.col("is_mobile_flag").is_null() & (pl.col("is_mobile") != ""))
        .then(pl.lit("invalid_is_mobile"))
    )
    judged = _judge_duplicates(typed.with_columns(reason=invalid), key="conversion_id", content="content")
    kept = judged.filter(pl.col("reason").is_null())
    page_categories = mapping.select("measurement_category", "page_category").unique("measurement_category")
    silver = (
        kept.with_columns(
            pl.col("session_id", "country_name", "ui_element", "measurement_category").replace("", None),
        )
        .pipe(with_country_code, "country_name", "country_code")
        .join(page_categories, on="measurement_category", how="left", maintain_order="left")
        .select(
            "conversion_id",
            "session_id",
            pl.col("created_at_utc").alias("created_at"),
            pl.col("created_at_utc").dt.truncate("1w").dt.date().alias("week_start"),
            "country_name",
            "country_code",
            pl.col("is_mobile_flag").alias("is_mobile"),
            "ui_element",
            "measurement_category",
            "page_category",
            "source_file",
            "line_number",
        )
        .sort("created_at", "conversion_id")
    )
    return Cleaned(silver, _quarantine_from(bronze, judged))


def clean_broker_registrations(bronze: pl.DataFrame) -> Cleaned:
    """Typed broker registrations keyed by `source_file:line_number`, exact duplicate rows removed.

    `important_score` junk (`#REF!`, `7.5`) is nulled, not quarantined: the registration itself is still
    real and matchable; `important_score_issue` says what was there.
    """
    # exact duplicates compare the row as landed, before stripping
    stripped = bronze.with_columns(
        content=pl.concat_str(list(BROKER_COLUMNS), separator="\x1f"),
    ).with_columns(pl.col(column).str.strip_chars() for column in BROKER_COLUMNS)
    typed = stripped.with_columns(
        registered_at=_registered_at(pl.col("timestamp")),
        score=pl.col("important_score").cast(pl.Int64, strict=False),
    )
    invalid = _first_issue(pl.when(pl.col("registered_at").is_null()).then(pl.lit("invalid_timestamp")))
    judged = _judge_duplicates(typed.with_columns(reason=invalid), key="content", content="content")
    kept = judged.filter(pl.col("reason").is_null())
    registered_at = pl.col("registered_at")
    silver = (
        kept.with_columns(pl.col("country_residency", "ip_country").replace("", None))
        .pipe(with_country_code, "country_residency", "residency_code")
        .pipe(with_country_code, "ip_country", "ip_country_code")
        .select(
            pl.concat_str("source_file", pl.lit(":"), pl.col("line_number").cast(pl.String)).alias("registration_key"),
            registered_at.alias("registered_at"),
            registered_at.dt.truncate("1w").dt.date().alias("week_start"),
            "country_residency",
            "residency_code",
            "ip_country",
            "ip_country_code",
            pl.col("score").alias("important_score"),
            pl.when(pl.col("score").is_null() & (pl.col("important_score") != ""))
            .then(pl.format("not an integer: '{}'", pl.col("important_score")))
            .alias("important_score_issue"),
            "source_file",
            "line_number",
        )
        .sort("registered_at", "registration_key")
    )
    return Cleaned(silver, _quarantine_from(bronze, judged))


def unmapped_measurement_categories(conversions: pl.DataFrame) -> pl.DataFrame:
    """Measurement categories without a page category and how many conversions carry each (null = blank)."""
    return (
        conversions.filter(pl.col("page_category").is_null())
        .group_by("measurement_category")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .sort(["rows", "measurement_category"], descending=[True, False], nulls_last=True)
    )


def _concat_reads(reads: list[BronzeRead], columns: Sequence[str]) -> BronzeRead:
    reads = [BronzeRead(pl.DataFrame(schema=bronze_schema(columns)), pl.DataFrame(schema=FILES_SCHEMA)), *reads]
    return BronzeRead(
        rows=pl.concat([read.rows for read in reads]),
        files=pl.concat([read.files for read in reads]),
    )


def _first_issue(cleaning_issue: pl.Expr) -> pl.Expr:
    """A line's reason: why it could not be read, else why cleaning rejects it (null: kept)."""
    return pl.coalesce(pl.col("read_issue"), cleaning_issue)


def _judge_duplicates(
    frame: pl.DataFrame, *, key: str, content: str, conflict_reason: str = "duplicate_id"
) -> pl.DataFrame:
    """Among rows without a reason yet, keep the first landed per key; later ones are `duplicate` when their
    content equals the kept row's, else conflict_reason, with the kept line in `detail`."""
    valid = frame.filter(pl.col("reason").is_null()).sort("source_file", "line_number")
    valid = valid.with_columns(
        first_content=pl.col(content).first().over(key),
        first_line=pl.format("kept {} line {}", "source_file", "line_number").first().over(key),
        is_first=pl.col(key).is_first_distinct(),
    ).with_columns(
        reason=pl.when(pl.col("is_first"))
        .then(None)
        .when(pl.col(content) == pl.col("first_content"))
        .then(pl.lit("duplicate"))
        .otherwise(pl.lit(conflict_reason)),
        detail=pl.when(pl.col("is_first")).then(None).otherwise(pl.col("first_line")),
    )
    invalid = frame.filter(pl.col("reason").is_not_null()).with_columns(detail=pl.lit(None, pl.String))
    return pl.concat([invalid, valid.drop("first_content", "first_line", "is_first")])


def _quarantine_from(bronze: pl.DataFrame, judged: pl.DataFrame) -> pl.DataFrame:
    """Rejected rows in the core quarantine contract: the line as landed, its reason and detail, and its week
    when bronze has one (the weekly batch tables)."""
    rejected = judged.filter(pl.col("reason").is_not_null()).select("source_file", "line_number", "reason", "detail")
    return as_quarantine(
        bronze.join(rejected, on=["source_file", "line_number"], how="inner")
        .with_columns(pl.col("raw_line").alias("raw"))
        .sort("source_file", "line_number"),
        weekly="week_start" in bronze.columns,
    )
