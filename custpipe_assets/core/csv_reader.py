"""The one CSV reader every domain uses: a landed export -> one bronze row per data record, never a crash on content.

Real exports are messier than any generator: `\\r\\r\\n` line ends (the Revolve files), `\\r\\n`, lone `\\r`, a
UTF-8 byte-order mark, blank trailing lines, spaces around header names and fields, quoted fields holding the
separator or a newline, header columns in another order or case, extra columns. All of those are read. What cannot
be read is not dropped: the record becomes a row with its `read_issue` (and null fields), so the domain quarantines
it with its file and line, and the file's problems (`empty_file`, `header_only`, `wrong_header`) are reported once
per file in `CsvRead.file` for a check to name.

Rows keep lineage: `source_file` (as the caller names it: relative to the landing root), `line_number` (the first
physical line of the record; the header is line 1) and `raw_line` (the record's text as landed, line ends removed).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

# Reasons a record could not be read (the `read_issue` column); domains quarantine them under the same codes.
READ_ISSUES = ("wrong_header", "invalid_utf8", "blank_line", "unparseable", "too_many_fields", "too_few_fields")
# What a file as a whole looked like; anything but `ok` is worth a warning that names the file.
FILE_STATUSES = ("ok", "empty_file", "header_only", "wrong_header")
FILE_REPORT_SCHEMA = pl.Schema(
    {"source_file": pl.String, "data_lines": pl.Int64, "status": pl.String, "header": pl.String, "detail": pl.String}
)
# A quoted field may hold newlines; a record still open after this many physical lines is a broken quote instead.
MAX_LINES_PER_RECORD = 50
# \r\r\n, \r\n, \n and a lone \r each end one physical line.
_LINE_END = re.compile(rb"\r*\n|\r")
_BOM = b"\xef\xbb\xbf"
# What str.strip() removes (all of it below U+3001); Polars' own whitespace misses \x1c-\x1f.
_WHITESPACE = "".join(char for char in map(chr, range(0x3001)) if char.isspace())


def bronze_csv_schema(columns: Sequence[str]) -> pl.Schema:
    """Bronze column order: provenance and the record as landed first, then the source's own columns, all text."""
    return pl.Schema(
        {
            "source_file": pl.String,
            "line_number": pl.Int64,
            "raw_line": pl.String,
            "read_issue": pl.String,
            **dict.fromkeys(columns, pl.String),
        }
    )


@dataclass(frozen=True)
class CsvRead:
    """One row per data record (bronze_csv_schema) and a one-row report on the file (FILE_REPORT_SCHEMA)."""

    rows: pl.DataFrame
    file: pl.DataFrame


def read_csv_export(path: Path, *, source_file: str, columns: Sequence[str], separator: str = ",") -> CsvRead:
    """Read one landed CSV export; an absent file reads as empty (the caller's source check warns about it).

    Header names match `columns` case-insensitively, in any order and ignoring surrounding spaces; extra columns
    are ignored and named in the file report's `detail`. A header missing one of `columns` makes the file
    `wrong_header` and each of its records a `wrong_header` row (kept for quarantine, never dropped).
    """
    # a space or tab separator interacts with skipinitialspace, a repeated column name with the schema: both rare
    # enough to always take the exact path
    plain_separator = len(separator) == 1 and separator not in _WHITESPACE and separator != '"'
    if not path.is_file() or not plain_separator or len(set(columns)) != len(columns):
        return _read_csv_export_exact(path, source_file=source_file, columns=columns, separator=separator)
    return _read_fast(path.read_bytes(), source_file, columns, separator)


def _read_fast(content: bytes, source_file: str, columns: Sequence[str], separator: str) -> CsvRead:
    """`_read_csv_export_exact`'s result, with the plain lines split by Polars all at once.

    A plain line (valid UTF-8, no quote, not blank, no field over the csv module's size limit) is a record of
    its own whose fields are its text split on the separator and stripped: exactly what the csv module makes of
    it. Every other line (the header too) starts a record read by `_record_at` as before, which may take the
    plain lines after it into a quoted field; those are then no records of their own.
    """
    body = content.removeprefix(_BOM)
    lines, utf8 = _physical_lines(body)
    if lines.is_empty():
        _, status, detail = _judge_header(None, False, columns, absent=False)
        return CsvRead(bronze_csv_schema(columns).to_frame(), _file_report(source_file, 0, status, "", detail))
    line = pl.col("raw_line")
    plain = (
        ~line.str.contains('"', literal=True)
        & (line.str.strip_chars(_WHITESPACE) != "")
        & (line.str.len_chars() <= csv.field_size_limit())
    )
    if not utf8:
        plain &= ~line.str.contains("\ufffd", literal=True)  # where an invalid byte was replaced
    frame = pl.DataFrame({"raw_line": lines}).with_row_index("index").with_columns(plain.alias("plain"))
    others = frame.filter(~pl.col("plain") | (pl.col("index") == 0))["index"].to_list()
    if utf8:
        # a record reads at most MAX_LINES_PER_RECORD lines: those up to the last one any record may read suffice
        physical = [text.encode() for text in lines.head(others[-1] + MAX_LINES_PER_RECORD).to_list()]
    else:
        physical = _LINE_END.split(body)[: len(lines)]
    records, taken = _records_starting_at(others, physical, separator)
    header_record, data = records[0], records[1:]
    own = frame.filter(
        pl.col("plain") & (pl.col("index") > 0) & ~pl.col("index").is_in(pl.Series(taken, dtype=pl.UInt32))
    )
    last_plain = own["index"].max() + 1 if own.height else 0
    while data and data[-1].issue == "blank_line" and data[-1].line_number > last_plain:
        data.pop()  # blank trailing lines end many exports: not records
    header, status, detail = _judge_header(header_record, bool(data) or own.height > 0, columns, absent=False)
    report = _file_report(source_file, len(data) + own.height, status, header_record.text, detail)
    positions = [header.index(column) for column in columns] if status != "wrong_header" else []
    rows = _plain_rows_frame(own, header, positions, source_file, columns, separator)
    if data:
        rows = pl.concat([rows, _rows_frame(data, header, positions, source_file, columns)]).sort("line_number")
    return CsvRead(rows, report)


def _physical_lines(body: bytes) -> tuple[pl.Series, bool]:
    """The file's physical lines as text (split by `_LINE_END`'s rule) and whether all of it is valid UTF-8.

    An invalid byte is decoded as U+FFFD: it never spans a line end (ASCII), so the lines are the same ones.
    """
    try:
        text, utf8 = body.decode("utf-8"), True
    except UnicodeDecodeError:
        text, utf8 = body.decode("utf-8", errors="replace"), False
    joined = pl.Series([text])
    if "\r" in text:
        # the same rule (Rust's regex matches leftmost-first, as `re` does)
        joined = joined.str.replace_all(_LINE_END.pattern.decode(), "\n")
    lines = joined.str.split("\n").explode()
    return (lines.head(-1) if lines[-1] == "" else lines), utf8  # not the text after the last line end


def _records_starting_at(
    starts: Sequence[int], lines: Sequence[bytes], separator: str
) -> tuple[list[_Record], list[int]]:
    """The records `_record_at` reads from each of `starts` (ascending) not inside an earlier one's record, and
    the indices of the lines after their first that they took in."""
    records: list[_Record] = []
    taken: list[int] = []
    next_start = 0
    for index in starts:
        if index < next_start:
            continue  # inside the previous record
        record, end = _record_at(lines, index, separator)
        records.append(record)
        taken.extend(range(index + 1, end + 1))
        next_start = end + 1
    return records, taken


def _plain_rows_frame(
    lines: pl.DataFrame,
    header: list[str],
    positions: list[int],
    source_file: str,
    columns: Sequence[str],
    separator: str,
) -> pl.DataFrame:
    """`_rows_frame` of plain lines (index, raw_line), vectorized: split on the separator, fields stripped."""
    fields = pl.col("fields")
    if positions:
        lines = lines.with_columns(pl.col("raw_line").str.split(separator).alias("fields"))  # split once
        count = fields.list.len()
        issue = (
            pl.when(count > len(header))
            .then(pl.lit("too_many_fields"))
            .when(count < len(header))
            .then(pl.lit("too_few_fields"))
        )
        values = [
            pl.when(count == len(header)).then(fields.list.get(position, null_on_oob=True).str.strip_chars(_WHITESPACE))
            for position in positions
        ]
    else:
        issue, values = pl.lit("wrong_header"), [pl.lit(None)] * len(columns)
    return lines.select(
        pl.lit(source_file).alias("source_file"),
        (pl.col("index").cast(pl.Int64) + 1).alias("line_number"),
        "raw_line",
        issue.alias("read_issue"),
        *(value.alias(column) for value, column in zip(values, columns, strict=True)),
    ).cast(dict(bronze_csv_schema(columns)))


def _read_csv_export_exact(path: Path, *, source_file: str, columns: Sequence[str], separator: str) -> CsvRead:
    """`read_csv_export` one record at a time through the csv module: the reference every faster path must equal."""
    schema = bronze_csv_schema(columns)
    records = _records(path.read_bytes(), separator) if path.is_file() else iter(())
    header_record = next(records, None)
    data = list(records)
    while data and data[-1].issue == "blank_line":  # blank trailing lines end many exports: not records
        data.pop()
    header, status, detail = _judge_header(header_record, bool(data), columns, absent=not path.is_file())
    report = _file_report(source_file, len(data), status, header_record.text if header_record else "", detail)
    if status == "empty_file":
        return CsvRead(schema.to_frame(), report)
    positions = [header.index(column) for column in columns] if status != "wrong_header" else []
    return CsvRead(_rows_frame(data, header, positions, source_file, columns), report)


def _rows_frame(
    data: Sequence[_Record], header: list[str], positions: list[int], source_file: str, columns: Sequence[str]
) -> pl.DataFrame:
    """Bronze rows of data records: the fields at `positions` (none: every record `wrong_header`), or the issue."""
    unread = [None] * len(columns)
    rows: list[list[object]] = []
    for record in data:
        issue, fields = record.issue, record.fields
        if not positions:
            issue, fields = "wrong_header", None
        elif issue is None and fields is not None and len(fields) != len(header):
            issue = "too_many_fields" if len(fields) > len(header) else "too_few_fields"
        values = unread if issue is not None or fields is None else [fields[position] for position in positions]
        rows.append([source_file, record.line_number, record.text, issue, *values])
    return pl.DataFrame(rows, schema=bronze_csv_schema(columns), orient="row")


def csv_file_status(path: Path, *, source_file: str, columns: Sequence[str], separator: str = ",") -> pl.DataFrame:
    """The file report of `read_csv_export` from the header and first data record only (cheap, for checks);
    `data_lines` is null since the file is not read to the end."""
    records = (record for record in _records(path.read_bytes(), separator)) if path.is_file() else iter(())
    header_record = next(records, None)
    has_data = any(record.issue != "blank_line" for record in records)
    _, status, detail = _judge_header(header_record, has_data, columns, absent=not path.is_file())
    return _file_report(source_file, None, status, header_record.text if header_record else "", detail)


def _judge_header(
    header_record: _Record | None, has_data: bool, columns: Sequence[str], *, absent: bool
) -> tuple[list[str], str, str]:
    """(normalized header names, file status, detail) of a file's first record."""
    if header_record is None or header_record.fields is None:
        detail = "file is absent" if absent else "no header line"
        if header_record is not None:
            detail = f"header line unreadable ({header_record.issue})"
        return [], "empty_file" if header_record is None else "wrong_header", detail
    header = [name.lstrip("\ufeff").strip().lower() for name in header_record.fields]
    missing = [column for column in columns if column not in header]
    extra = [name for name in header if name not in columns]
    parts = [
        f"missing column(s) {', '.join(missing)}" if missing else "",
        f"extra column(s) ignored: {', '.join(extra)}" if extra else "",
    ]
    status = "wrong_header" if missing else ("header_only" if not has_data else "ok")
    return header, status, "; ".join(part for part in parts if part)


def read_csv_exports(paths: Sequence[tuple[Path, str]], *, columns: Sequence[str], separator: str = ",") -> CsvRead:
    """Several files of one export (path, source_file name), their rows and file reports concatenated."""
    reads = [read_csv_export(path, source_file=name, columns=columns, separator=separator) for path, name in paths]
    if not reads:
        return CsvRead(bronze_csv_schema(columns).to_frame(), FILE_REPORT_SCHEMA.to_frame())
    return CsvRead(pl.concat([read.rows for read in reads]), pl.concat([read.file for read in reads]))


@dataclass(frozen=True)
class _Record:
    line_number: int
    text: str
    fields: list[str] | None
    issue: str | None


def _records(content: bytes, separator: str) -> Iterator[_Record]:
    """Physical lines grouped into records: a quoted field may span lines, but a broken quote swallows nothing."""
    lines = _LINE_END.split(content.removeprefix(b"\xef\xbb\xbf"))
    if lines and lines[-1] == b"":
        lines.pop()  # the text after the last line end
    index = 0
    while index < len(lines):
        record, end = _record_at(lines, index, separator)
        yield record
        index = end + 1


def _record_at(lines: Sequence[bytes], index: int, separator: str) -> tuple[_Record, int]:
    """The record starting at physical line `index` and the index of its last line (it reads at most
    MAX_LINES_PER_RECORD lines from `index` on)."""
    line_number = index + 1
    try:
        text = lines[index].decode("utf-8")
    except UnicodeDecodeError:
        return _Record(line_number, lines[index].decode("utf-8", errors="replace"), None, "invalid_utf8"), index
    if not text.strip():
        return _Record(line_number, text, None, "blank_line"), index
    end, utf8 = index, True
    while text.count('"') % 2 and end + 1 < len(lines) and end - index + 1 < MAX_LINES_PER_RECORD:
        end += 1
        try:
            text += "\n" + lines[end].decode("utf-8")
        except UnicodeDecodeError:
            text, utf8 = text + "\n" + lines[end].decode("utf-8", errors="replace"), False
    still_open = text.count('"') % 2 == 1
    fields = None if still_open else _split(text, separator)
    if still_open or (fields is None and end > index):
        # the quote never closed, or it was a stray one (`5" screen`) pairing with a later line's: this line
        # alone is unreadable, the next ones are read
        return _Record(line_number, lines[index].decode("utf-8"), None, "unparseable"), index
    issue = "unparseable" if fields is None else None if utf8 else "invalid_utf8"
    return _Record(line_number, text, fields if issue is None else None, issue), end


def _split(text: str, separator: str) -> list[str] | None:
    """The record's fields, stripped of surrounding spaces; None when its quoting is broken (`a,"b"c`)."""
    try:
        fields = next(csv.reader([text], delimiter=separator, skipinitialspace=True, strict=True))
    except csv.Error:
        # tolerate spaces between a closing quote and the separator (`"a" ,b`), nothing else
        relaxed = re.sub(r'"[ \t]+(?=' + re.escape(separator) + r"|$)", '"', text)
        try:
            fields = next(csv.reader([relaxed], delimiter=separator, skipinitialspace=True, strict=True))
        except csv.Error:
            return None
    return [field.strip() for field in fields]


def _file_report(source_file: str, data_lines: int | None, status: str, header: str, detail: str) -> pl.DataFrame:
    return pl.DataFrame([(source_file, data_lines, status, header, detail)], schema=FILE_REPORT_SCHEMA, orient="row")
