"""Bronze reading and silver cleaning of the BrokerChooser sources: pure functions over Polars frames.

What belongs here: landed files -> bronze frames (every row as strings, with `source_file` and 1-based
`line_number`, the header being line 1; lines that cannot be read become quarantine rows), bronze -> silver
(typed columns, ISO country codes, UTC times, deduplication, category mapping), and the reconciliation proving
every landed line is either kept or quarantined. Matching lives in `matching.py`, the report in `report.py`.

Every rejected line is a quarantine row `source_file, line_number, raw, reason`. Reasons:
- file level (line_number 1 = the header, or null when there is none): `empty_file`, `header_only`,
  `wrong_header` (not the expected columns, e.g. a file written with the wrong separator);
- reading: `wrong_header` (each data line of such a file), `invalid_utf8`, `blank_line`, `unparseable`
  (broken quoting), `too_many_fields`, `too_few_fields`;
- cleaning: `invalid_id`, `invalid_created_at`, `invalid_is_mobile`, `invalid_timestamp`, `missing_value`,
  `duplicate` (same content as a row kept earlier), `duplicate_id` (conversion id kept earlier with other
  content), `conflicting_mapping` (measurement category mapped earlier to another page category).

Values that are junk in an optional attribute do not cost the row: an `important_score` that is not an integer
(`#REF!`) becomes null with the reason in `important_score_issue`; an unknown measurement category keeps its raw
value with a null `page_category`; an unresolvable country keeps its raw name with a null code.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
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

QUARANTINE_SCHEMA = {"source_file": pl.String, "line_number": pl.Int64, "raw": pl.String, "reason": pl.String}
FILES_SCHEMA = {"source_file": pl.String, "data_lines": pl.Int64, "status": pl.String}
# unix seconds outside [2000-01-01, 2100-01-01) are not registration times (milliseconds, typos)
TIMESTAMP_RANGE = (946_684_800, 4_102_444_800)
BOOLEAN_WORDS = {"1": True, "true": True, "t": True, "yes": True, "0": False, "false": False, "f": False, "no": False}


@dataclass(frozen=True)
class BronzeRead:
    """Rows as landed (all strings), the lines that could not be read, and one row per landed file."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame
    files: pl.DataFrame


@dataclass(frozen=True)
class Cleaned:
    """Silver rows and the rows cleaning rejected."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame


def bronze_schema(columns: Sequence[str]) -> dict[str, pl.DataType]:
    """Bronze column order: provenance first, then the source's own columns, all strings."""
    return {"source_file": pl.String, "line_number": pl.Int64, **{column: pl.String for column in columns}}


def read_delimited_file(path: Path, *, separator: str, columns: Sequence[str], source_file: str) -> BronzeRead:
    """Read one export line by line; never raises on content, every line ends up as a row or a quarantine row.

    One physical line is one record (the exports have no embedded newlines); quoted fields may contain the
    separator. Header names are matched case-insensitively and in any order.
    """
    rows: list[list[object]] = []
    rejected: list[tuple[str, int | None, str, str]] = []
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [line.removesuffix(b"\r") for line in lines]
    if not lines or not b"".join(lines).strip():
        rejected.append((source_file, None, "", "empty_file"))
        return _bronze(rows, rejected, columns, [(source_file, 0, "empty_file")])

    header_text = lines[0].decode("utf-8-sig", errors="replace")
    header = [name.strip().lower() for name in next(csv.reader([header_text], delimiter=separator))]
    data_lines = lines[1:]
    if sorted(header) != sorted(columns):
        rejected.append((source_file, 1, header_text, "wrong_header"))
        for line_number, line in enumerate(data_lines, start=2):
            rejected.append((source_file, line_number, line.decode("utf-8", errors="replace"), "wrong_header"))
        return _bronze(rows, rejected, columns, [(source_file, len(data_lines), "wrong_header")])
    if not data_lines:
        rejected.append((source_file, 1, header_text, "header_only"))
        return _bronze(rows, rejected, columns, [(source_file, 0, "header_only")])

    positions = [header.index(column) for column in columns]
    for line_number, line in enumerate(data_lines, start=2):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            rejected.append((source_file, line_number, line.decode("utf-8", errors="replace"), "invalid_utf8"))
            continue
        if not text.strip():
            rejected.append((source_file, line_number, text, "blank_line"))
            continue
        try:
            fields = next(csv.reader([text], delimiter=separator, strict=True))
        except csv.Error:
            rejected.append((source_file, line_number, text, "unparseable"))
            continue
        if len(fields) != len(columns):
            reason = "too_many_fields" if len(fields) > len(columns) else "too_few_fields"
            rejected.append((source_file, line_number, text, reason))
            continue
        rows.append([source_file, line_number, *(fields[position] for position in positions)])
    return _bronze(rows, rejected, columns, [(source_file, len(data_lines), "ok")])


def read_batch_folder(folder: Path, *, separator: str, columns: Sequence[str]) -> BronzeRead:
    """Read every `*.csv` in a folder, in name order; `source_file` is `<folder name>/<file name>`."""
    reads = [
        read_delimited_file(path, separator=separator, columns=columns, source_file=f"{folder.name}/{path.name}")
        for path in sorted(folder.glob("*.csv"))
    ]
    return _concat_reads(reads, columns)


def read_conversions(landing_dir: Path) -> BronzeRead:
    """Bronze conversions from `brokerchooser/conversions/*.csv`; an absent folder gives empty frames."""
    folder = Path(landing_dir) / SOURCE_DIR / CONVERSIONS_DIR
    return read_batch_folder(folder, separator=CONVERSIONS_SEPARATOR, columns=CONVERSION_COLUMNS)


def read_broker_registrations(landing_dir: Path) -> BronzeRead:
    """Bronze broker rows from `brokerchooser/broker_data/*.csv`; an absent folder gives empty frames."""
    folder = Path(landing_dir) / SOURCE_DIR / BROKER_DIR
    return read_batch_folder(folder, separator=BROKER_SEPARATOR, columns=BROKER_COLUMNS)


def read_page_category_mapping(landing_dir: Path) -> BronzeRead:
    """Bronze mapping from `brokerchooser/page_category_mapping.csv`; an absent file gives empty frames."""
    path = Path(landing_dir) / SOURCE_DIR / MAPPING_FILE
    if not path.is_file():
        return _concat_reads([], MAPPING_COLUMNS)
    return read_delimited_file(path, separator=MAPPING_SEPARATOR, columns=MAPPING_COLUMNS, source_file=MAPPING_FILE)


def clean_page_category_mapping(bronze: pl.DataFrame) -> Cleaned:
    """One page category per measurement category; blanks, repeats and contradictions are quarantined."""
    stripped = bronze.with_columns(pl.col(column).str.strip_chars() for column in MAPPING_COLUMNS)
    blank = (pl.col("page_category") == "") | (pl.col("measurement_category") == "")
    judged = _judge_duplicates(
        stripped.with_columns(reason=pl.when(blank).then(pl.lit("missing_value"))),
        key="measurement_category",
        content="page_category",
        conflict_reason="conflicting_mapping",
    )
    kept = judged.filter(pl.col("reason").is_null()).select(
        "page_category", "measurement_category", "source_file", "line_number"
    )
    return Cleaned(kept.sort("line_number"), _quarantine_from(bronze, judged, MAPPING_COLUMNS, MAPPING_SEPARATOR))


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
        created_at_utc=pl.col("created_at")
        .str.strptime(pl.Datetime("us"), CREATED_AT_FORMAT, strict=False)
        .dt.replace_time_zone("UTC"),
        is_mobile_flag=pl.col("is_mobile").str.to_lowercase().replace_strict(BOOLEAN_WORDS, default=None),
    ).with_columns(pl.col("is_mobile_flag").cast(pl.Boolean))
    invalid = (
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
    return Cleaned(silver, _quarantine_from(bronze, judged, CONVERSION_COLUMNS, CONVERSIONS_SEPARATOR))


def clean_broker_registrations(bronze: pl.DataFrame) -> Cleaned:
    """Typed broker registrations keyed by `source_file:line_number`, exact duplicate rows removed.

    `important_score` junk (`#REF!`, `7.5`) is nulled, not quarantined: the registration itself is still
    real and matchable; `important_score_issue` says what was there.
    """
    # exact duplicates compare the row as landed, before stripping
    stripped = bronze.with_columns(
        content=pl.concat_str(list(BROKER_COLUMNS), separator="\x1f"),
    ).with_columns(pl.col(column).str.strip_chars() for column in BROKER_COLUMNS)
    seconds = pl.col("timestamp").cast(pl.Int64, strict=False)
    typed = stripped.with_columns(
        seconds=pl.when(seconds.is_between(*TIMESTAMP_RANGE, closed="left")).then(seconds),
        score=pl.col("important_score").cast(pl.Int64, strict=False),
    )
    invalid = pl.when(pl.col("seconds").is_null()).then(pl.lit("invalid_timestamp"))
    judged = _judge_duplicates(typed.with_columns(reason=invalid), key="content", content="content")
    kept = judged.filter(pl.col("reason").is_null())
    registered_at = pl.from_epoch(pl.col("seconds"), time_unit="s").dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    silver = (
        kept.with_columns(pl.col("country_residency", "ip_country").replace("", None))
        .pipe(with_country_code, "country_residency", "residency_code")
        .pipe(with_country_code, "ip_country", "ip_country_code")
        .select(
            pl.concat_str("source_file", pl.lit(":"), pl.col("line_number").cast(pl.String)).alias(
                "registration_key"
            ),
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
    return Cleaned(silver, _quarantine_from(bronze, judged, BROKER_COLUMNS, BROKER_SEPARATOR))


def unmapped_measurement_categories(conversions: pl.DataFrame) -> pl.DataFrame:
    """Measurement categories without a page category and how many conversions carry each (null = blank)."""
    return (
        conversions.filter(pl.col("page_category").is_null())
        .group_by("measurement_category")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .sort(["rows", "measurement_category"], descending=[True, False], nulls_last=True)
    )


def reconcile(files: pl.DataFrame, kept: pl.DataFrame, *quarantines: pl.DataFrame) -> pl.DataFrame:
    """Per landed file: data lines in, rows kept, rows quarantined, and whether every line is in exactly one.

    `files` is `BronzeRead.files`; `kept` the silver rows; `quarantines` every quarantine frame of the same
    source (reading and cleaning). File-level quarantine rows (header, empty file) are not data lines.
    """
    rejected = pl.concat(
        [q.select("source_file", "line_number") for q in quarantines] or [pl.DataFrame(schema=QUARANTINE_SCHEMA)],
        how="vertical",
    ).filter(pl.col("line_number") >= 2)
    kept_lines = kept.select("source_file", "line_number")
    accounted = pl.concat([kept_lines, rejected.select("source_file", "line_number")])
    per_file = (
        files.select("source_file", pl.col("data_lines").alias("rows_in"))
        .join(_count_per_file(kept_lines, "rows_out"), on="source_file", how="full", coalesce=True)
        .join(_count_per_file(rejected, "rows_quarantined"), on="source_file", how="full", coalesce=True)
        .join(_count_per_file(accounted.unique(), "distinct_lines"), on="source_file", how="full", coalesce=True)
        .with_columns(pl.col("rows_in", "rows_out", "rows_quarantined", "distinct_lines").fill_null(0))
    )
    return per_file.select(
        "source_file",
        "rows_in",
        "rows_out",
        "rows_quarantined",
        (
            (pl.col("rows_in") == pl.col("rows_out") + pl.col("rows_quarantined"))
            & (pl.col("distinct_lines") == pl.col("rows_out") + pl.col("rows_quarantined"))
        ).alias("balanced"),
    ).sort("source_file")


def _count_per_file(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    return frame.group_by("source_file").agg(pl.len().cast(pl.Int64).alias(name))


def _bronze(
    rows: list[list[object]],
    rejected: list[tuple[str, int | None, str, str]],
    columns: Sequence[str],
    files: list[tuple[str, int, str]],
) -> BronzeRead:
    return BronzeRead(
        rows=pl.DataFrame(rows, schema=bronze_schema(columns), orient="row"),
        quarantine=pl.DataFrame(rejected, schema=QUARANTINE_SCHEMA, orient="row"),
        files=pl.DataFrame(files, schema=FILES_SCHEMA, orient="row"),
    )


def _concat_reads(reads: list[BronzeRead], columns: Sequence[str]) -> BronzeRead:
    empty = _bronze([], [], columns, [])
    reads = [empty, *reads]
    return BronzeRead(
        rows=pl.concat([read.rows for read in reads]),
        quarantine=pl.concat([read.quarantine for read in reads]),
        files=pl.concat([read.files for read in reads]),
    )


def _judge_duplicates(
    frame: pl.DataFrame, *, key: str, content: str, conflict_reason: str = "duplicate_id"
) -> pl.DataFrame:
    """Among rows without a reason yet, keep the first landed per key; later ones are `duplicate` when their
    content equals the kept row's, else conflict_reason."""
    valid = frame.filter(pl.col("reason").is_null()).sort("source_file", "line_number")
    valid = valid.with_columns(
        first_content=pl.col(content).first().over(key),
        is_first=pl.col(key).is_first_distinct(),
    ).with_columns(
        reason=pl.when(pl.col("is_first"))
        .then(None)
        .when(pl.col(content) == pl.col("first_content"))
        .then(pl.lit("duplicate"))
        .otherwise(pl.lit(conflict_reason))
    )
    return pl.concat([frame.filter(pl.col("reason").is_not_null()), valid.drop("first_content", "is_first")])


def _quarantine_from(
    bronze: pl.DataFrame, judged: pl.DataFrame, columns: Sequence[str], separator: str
) -> pl.DataFrame:
    """Rejected rows as quarantine rows, `raw` rebuilt from the landed fields as a CSV line."""
    rejected = judged.filter(pl.col("reason").is_not_null()).select("source_file", "line_number", "reason")
    return (
        bronze.join(rejected, on=["source_file", "line_number"], how="inner")
        .select("source_file", "line_number", _raw_line(columns, separator).alias("raw"), "reason")
        .sort("source_file", "line_number")
    )


def _raw_line(columns: Sequence[str], separator: str) -> pl.Expr:
    quoted = [
        pl.when(pl.col(column).str.contains_any([separator, '"']))
        .then(pl.concat_str(pl.lit('"'), pl.col(column).str.replace_all('"', '""', literal=True), pl.lit('"')))
        .otherwise(pl.col(column))
        for column in columns
    ]
    return pl.concat_str(quoted, separator=separator)
