"""Online transactions as landed -> bronze rows, in DuckDB SQL: the day files of a week, every line numbered as an
editor shows it, parsed once by DuckDB's JSON reader.

No Dagster here (`assets.py` runs these in the warehouse). What a line that is not a usable record becomes is said
here (`parse_error`); what silver makes of the records is `transactions.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from custpipe_assets.core.sql_text import sql_literal

TRANSACTIONS_DIR = "transactions"
TRANSACTIONS_FILE = "transactions.json"
# Why a line is not a record (bronze's `parse_error`; the first reasons of the quarantine's enumeration).
PARSE_ERRORS = ("blank_line", "not_utf8", "malformed_json", "not_a_json_object", "unexpected_field_types")

BASKET_ITEM = pl.Struct({"product_id": pl.String, "price": pl.String})
BRONZE_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date,
        "day": pl.Date,
        "source_file": pl.String,
        "line_number": pl.Int32,
        "raw_line": pl.String,
        "parse_error": pl.String,
        "customer_id": pl.String,
        "date_of_purchase": pl.String,
        "basket": pl.List(BASKET_ITEM),
    }
)
# Prices stay JSON text in bronze ("506", "\"abc\"", null) so silver can tell a missing price from a wrong type.
_LINE_JSON_TYPE = (
    '{"customer_id":"VARCHAR","basket":[{"product_id":"VARCHAR","price":"JSON"}],"date_of_purchase":"VARCHAR"}'
)


@dataclass(frozen=True)
class DayFile:
    """One landed day file: where it is, how the quarantine names it, the day it holds."""

    path: Path
    source_file: str  # relative to the landing folder
    day: date

    @property
    def week_start(self) -> date:
        return self.day - timedelta(days=self.day.weekday())


def day_folder(landing_dir: Path, day: date) -> Path:
    return landing_dir / TRANSACTIONS_DIR / f"d={day.isoformat()}"


def week_days(week: date) -> list[date]:
    return [week + timedelta(days=offset) for offset in range(7)]


def landed_day_files(landing_dir: Path, weeks: list[date]) -> list[DayFile]:
    """The day files of these weeks that landed (non-empty files only: an empty file has no line to read)."""
    found = []
    for week in weeks:
        for day in week_days(week):
            path = day_folder(landing_dir, day) / TRANSACTIONS_FILE
            if path.is_file() and path.stat().st_size > 0:
                found.append(DayFile(path, str(path.relative_to(landing_dir)), day))
    return found


def missing_transaction_days(landing_dir: Path, weeks: list[date]) -> list[str]:
    """Day files of these weeks that are absent (no folder, or a folder without its file)."""
    return [
        str((day_folder(landing_dir, day) / TRANSACTIONS_FILE).relative_to(landing_dir))
        for week in weeks
        for day in week_days(week)
        if not (day_folder(landing_dir, day) / TRANSACTIONS_FILE).is_file()
    ]


def _list_literal(values: list[object]) -> str:
    return "[" + ", ".join(sql_literal(value) for value in values) + "]"


def lines_of_files_select(files: list[DayFile]) -> str:
    """Every line of the files, numbered from 1 as an editor shows them, text as split (see below).

    Lines end at `\\n`; a UTF-8 byte-order mark at the start of a file is not part of the line; a final newline does
    not start an empty last line. A `\\r` before the `\\n` (Windows endings) is left on the line here: the JSON parse
    reads it as white space, and `bronze_select` trims it from the few lines it keeps the text of (trimming every
    line cost 1.8 s at 3M lines, a third of the bronze step). A file that is not UTF-8 gives one row with a null
    line number and `not_utf8` (`utf8_fallback_lines` then reads it line by line).
    Each file's day, week and name are looked up by its position in literal lists (no join: joining the files'
    contents to a table of them copied the 500 MB of text, measured 0.2 s at 3M lines).
    """
    paths = _list_literal([str(file.path) for file in files])
    sources = _list_literal([file.source_file for file in files])
    days = _list_literal([file.day for file in files])
    weeks = _list_literal([file.week_start for file in files])
    return f"""
        with landed as (
            select list_position({paths}, filename) as file_index, try(decode(content)) as text
            from read_blob({paths})
        ), split as (
            select {weeks}[file_index] as week_start, {days}[file_index] as day, {sources}[file_index] as source_file,
                   text is null as not_utf8,
                   case when text is null then [null::varchar] else string_split(text, chr(10)) end as lines
            from landed
        ), numbered as (
            select week_start, day, source_file, not_utf8, unnest(lines) as raw_line,
                   unnest(range(1, len(lines) + 1)) as line_number, len(lines) as line_count
            from split
        )
        select week_start, day, source_file,
               case when not not_utf8 then line_number::integer end as line_number,
               case when line_number = 1 then ltrim(raw_line, chr(65279)) else raw_line end as raw_line,
               case when not_utf8 then 'not_utf8' end as parse_error
        from numbered
        where case when line_number < line_count then true  -- a final newline ends the last line:
                   else rtrim(raw_line, chr(13)) is distinct from '' end  -- it does not start an empty one
    """


def utf8_fallback_lines(file: DayFile) -> pl.DataFrame:
    """A file that is not valid UTF-8, line by line: lines that decode are read as usual, the others keep their
    bytes escaped (`\\xff`) with `not_utf8`. Rare, so plain Python."""
    rows = []
    content = file.path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        line = line.rstrip(b"\r")
        try:
            rows.append((number, line.decode("utf-8"), None))
        except UnicodeDecodeError:
            rows.append((number, line.decode("utf-8", errors="backslashreplace"), "not_utf8"))
    return pl.DataFrame(
        rows, schema={"line_number": pl.Int32, "raw_line": pl.String, "parse_error": pl.String}, orient="row"
    ).select(
        pl.lit(file.week_start).alias("week_start"),
        pl.lit(file.day).alias("day"),
        pl.lit(file.source_file).alias("source_file"),
        pl.all(),
    )


def bronze_select(lines_table: str) -> str:
    """Bronze rows from numbered lines (`lines_of_files_select`, or `utf8_fallback_lines` registered as a table).

    One JSON parse per line (DuckDB's reader, several times faster than Polars on nested JSON); only lines that fail
    it, or lack a basket, are looked at again to say why (they are rare): a basket that is there but not a list of
    items is `unexpected_field_types`, not a missing one. A line that parsed keeps its file and line but not its text
    (`raw_line` null): storing every line's text cost over half of bronze's size (measured at 3M lines: 497 of 863
    blocks) for what file and line already locate. A line that did not keeps its text and a `parse_error`.
    """
    return f"""
        with attempted as (
            select *, case when parse_error is null then try(from_json(raw_line, '{_LINE_JSON_TYPE}')) end as parsed
            from {lines_table}
        )
        select week_start, day, source_file, line_number,
               case when parse_error is not null then rtrim(raw_line, chr(13)) end as raw_line,
               parse_error, parsed.customer_id, parsed.date_of_purchase, parsed.basket
        from (
            select * exclude (parse_error, parsed),
                   case when parse_error is not null then parse_error
                        when parsed.basket is not null then null  -- the common case: a record with a basket
                        when trim(rtrim(raw_line, chr(13))) = '' then 'blank_line'
                        when not json_valid(raw_line) then 'malformed_json'
                        when json_type(raw_line) <> 'OBJECT' then 'not_a_json_object'
                        when parsed is null or coalesce(json_type(raw_line, '$.basket'), 'NULL') <> 'NULL'
                        then 'unexpected_field_types'  -- e.g. a basket that is a string: not a missing one
                   end as parse_error,
                   parsed
            from attempted
        )
    """


def insert_bronze(connection: duckdb.DuckDBPyConnection, bronze: str, files: list[DayFile]) -> None:
    """Insert the bronze rows of `files` into the table `bronze`, which holds no other row of their weeks (the caller
    deleted them); a file that is not UTF-8 is read line by line."""
    if not files:
        return
    connection.execute(f"insert into {bronze} by name {bronze_select(f'({lines_of_files_select(files)})')}")
    # the placeholder rows of files that are not UTF-8, among the rows of these weeks (all written just now)
    not_utf8 = "week_start = any($weeks) and line_number is null and parse_error = 'not_utf8'"
    weeks = sorted({file.week_start for file in files})
    unreadable = {
        name
        for (name,) in connection.execute(
            f"select source_file from {bronze} where {not_utf8}", {"weeks": weeks}
        ).fetchall()
    }
    if unreadable:
        connection.execute(f"delete from {bronze} where {not_utf8}", {"weeks": weeks})
        fallback = pl.concat([utf8_fallback_lines(file) for file in files if file.source_file in unreadable])
        connection.register("fallback_lines", fallback)
        connection.execute(f"insert into {bronze} by name {bronze_select('fallback_lines')}")
        connection.unregister("fallback_lines")
