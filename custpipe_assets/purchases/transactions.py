"""Online transactions, pure transforms in DuckDB SQL: landing JSON Lines -> bronze rows -> silver lines + quarantine
-> weekly counts.

No Dagster here: each function builds a `select` over named tables, run where the tables live (the warehouse, or an
in-memory DuckDB in tests). Why SQL and not Polars, as elsewhere: this is the one big path (millions of lines a
year), and DuckDB parses nested JSON several times faster than Polars and never copies the rows out of the
warehouse to clean and count them (measured in benchmarks/weekly_counts.py; see the README).

The reconciliation unit is the *record*: one basket item, or the whole line when it has no usable basket (malformed
JSON, blank line, missing or empty basket). Every bronze record ends up either as a silver line or as a quarantine
row with a reason code, so rows in = rows out + rows quarantined holds by construction and is checked independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from custpipe_assets.core.quarantine import WEEKLY_QUARANTINE_SCHEMA

TRANSACTIONS_DIR = "transactions"
TRANSACTIONS_FILE = "transactions.json"

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
LINES_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date,
        "purchased_at": pl.Datetime("us"),
        "customer_id": pl.String,
        "product_id": pl.String,
        "price": pl.Float64,
        "source_file": pl.String,
        "line_number": pl.Int32,
        "basket_position": pl.Int32,
    }
)
# Why a record is quarantined, in the order the rules apply (first broken wins): line rules, then per basket item.
QUARANTINE_REASONS = (
    "blank_line",
    "not_utf8",
    "malformed_json",
    "not_a_json_object",
    "unexpected_field_types",
    "missing_customer_id",
    "missing_basket",
    "empty_basket",
    "invalid_date_of_purchase",
    "purchase_outside_week",
    "duplicate_transaction",
    "unknown_customer",
    "missing_product_id",
    "unknown_product",
    "missing_price",
    "invalid_price",
    "non_positive_price",
)
QUARANTINE_SCHEMA = WEEKLY_QUARANTINE_SCHEMA  # position: `basket[i]` for an item, null for the whole line
COUNTS_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date,
        "customer_id": pl.String,
        "loyalty_score": pl.Float64,
        "product_id": pl.String,
        "product_category": pl.String,
        "purchase_count": pl.Int64,
    }
)

# Prices stay JSON text in bronze ("506", "\"abc\"", null) so silver can tell a missing price from a wrong type.
_LINE_JSON_TYPE = (
    '{"customer_id":"VARCHAR","basket":[{"product_id":"VARCHAR","price":"JSON"}],"date_of_purchase":"VARCHAR"}'
)
_PURCHASE_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


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


def day_files_frame(files: list[DayFile]) -> pl.DataFrame:
    """The files as a table for the bronze query (register it under the name `bronze_select` is given)."""
    return pl.DataFrame(
        {
            "path": [str(file.path) for file in files],
            "source_file": [file.source_file for file in files],
            "day": [file.day for file in files],
            "week_start": [file.week_start for file in files],
        },
        schema={"path": pl.String, "source_file": pl.String, "day": pl.Date, "week_start": pl.Date},
    )


def lines_of_files_select(files_table: str, paths: list[str]) -> str:
    """Every line of the files, numbered from 1 as an editor shows them, text as landed.

    Lines end at `\\n`; a `\\r` before it (Windows endings) and a UTF-8 byte-order mark at the start of a file are
    not part of the line; a final newline does not start an empty last line. A file that is not UTF-8 gives one
    row with a null line number and `not_utf8` (`utf8_fallback_lines` then reads it line by line).
    `paths` must be the `path` column of `files_table`, in a literal list DuckDB can plan the read from.
    """
    path_list = "[" + ", ".join("'" + path.replace("'", "''") + "'" for path in paths) + "]"
    return f"""
        with landed as (
            select f.week_start, f.day, f.source_file, try(decode(b.content)) as text
            from read_blob({path_list}) as b join {files_table} as f on f.path = b.filename
        ), split as (
            select week_start, day, source_file, text is null as not_utf8,
                   case when text is null then [null::varchar] else string_split(text, chr(10)) end as lines
            from landed
        ), numbered as (
            select week_start, day, source_file, not_utf8, unnest(lines) as raw_line,
                   unnest(range(1, len(lines) + 1)) as line_number, len(lines) as line_count
            from split
        )
        select week_start, day, source_file,
               case when not not_utf8 then line_number::integer end as line_number,
               rtrim(case when line_number = 1 then ltrim(raw_line, chr(65279)) else raw_line end, chr(13)) as raw_line,
               case when not_utf8 then 'not_utf8' end as parse_error
        from numbered
        where line_number < line_count or raw_line is distinct from ''  -- a final newline ends the last line
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
               case when parse_error is not null then raw_line end as raw_line,
               parse_error, parsed.customer_id, parsed.date_of_purchase, parsed.basket
        from (
            select * exclude (parse_error, parsed),
                   case when parse_error is not null then parse_error
                        when parsed.basket is not null
                          or (parsed.customer_id is not null or parsed.date_of_purchase is not null)
                             and coalesce(json_type(raw_line, '$.basket'), 'NULL') = 'NULL' then null
                        when trim(raw_line) = '' then 'blank_line'
                        when not json_valid(raw_line) then 'malformed_json'
                        when json_type(raw_line) <> 'OBJECT' then 'not_a_json_object'
                        when parsed is null or coalesce(json_type(raw_line, '$.basket'), 'NULL') <> 'NULL'
                        then 'unexpected_field_types'
                   end as parse_error,
                   parsed
            from attempted
        )
    """


def records_select(bronze: str, customers: str, products: str, first_week: date, last_week: date) -> str:
    """Every bronze record of the weeks, judged: one row per basket item (or per line without a usable basket) with
    the first rule it breaks as `reason` (null: a good line), `detail` saying more, and the silver columns.

    Rules, line-wide first: parse error, missing customer, missing/empty basket, bad or out-of-week date, duplicate
    of an earlier transaction (same customer, purchase time and basket, earlier by day and line: the first copy is
    kept and named in `detail`); then per basket item: unknown customer, missing/unknown product, missing/invalid/
    non-positive price.
    """
    purchased_at = ", ".join(f"try_strptime(date_of_purchase, '{fmt}')" for fmt in _PURCHASE_TIME_FORMATS)
    same_transaction = "week_start, customer_id, date_of_purchase, basket"
    return f"""
        with judged as not materialized (
            select *,
                   case when parse_error is not null then parse_error
                        when customer_id is null or trim(customer_id) = '' then 'missing_customer_id'
                        when basket is null then 'missing_basket'
                        when len(basket) = 0 then 'empty_basket'
                        when purchased_at is null then 'invalid_date_of_purchase'
                        when purchased_at < week_start or purchased_at >= week_start + 7 then 'purchase_outside_week'
                   end as line_reason
            from (
                select *, coalesce({purchased_at}) as purchased_at
                from {bronze} where week_start between DATE '{first_week}' and DATE '{last_week}'
            )
        ), repeated as (
            -- transactions whose hash comes more than once in their week: a cheap filter, the window below is exact
            select week_start, hash({same_transaction}) as key_hash from judged where line_reason is null
            group by all having count(*) > 1
        ), later_copies as (
            select source_file, line_number, 'duplicate of ' || kept_file || ' line ' || kept_line as line_detail
            from (
                select source_file, line_number,
                       row_number() over same_transaction as copy,
                       first_value(source_file) over same_transaction as kept_file,
                       first_value(line_number) over same_transaction as kept_line
                from judged
                where line_reason is null
                  and (week_start, hash({same_transaction})) in (select (week_start, key_hash) from repeated)
                window same_transaction as (partition by {same_transaction} order by day, line_number)
            )
            where copy > 1
        ), deduplicated as (
            select judged.* exclude (line_reason),
                   coalesce(line_reason, case when later_copies.line_detail is not null then 'duplicate_transaction'
                                              when customer_id not in (select customer_id from {customers})
                                              then 'unknown_customer' end) as line_reason,
                   later_copies.line_detail
            from judged left join later_copies using (source_file, line_number)
        ), records as (
            select week_start, day, source_file, line_number, raw_line, customer_id, date_of_purchase, basket,
                   purchased_at, line_reason, line_detail,
                   unnest(case when len(basket) > 0 then basket else [null] end) as item,
                   unnest(case when len(basket) > 0 then range(len(basket)) else [null] end)::integer
                       as basket_position
            from deduplicated
        ), priced as (
            select *, item.product_id as product_id, cast(item.price as varchar) as price_json,
                   try_cast(cast(item.price as varchar) as double) as price
            from records
        )
        select week_start, purchased_at, customer_id, product_id, price, source_file, line_number, basket_position,
               raw_line, date_of_purchase, basket,
               case when line_reason is not null then line_reason
                    when product_id is null then 'missing_product_id'
                    when product_id not in (select product_id from {products}) then 'unknown_product'
                    when price_json is null or price_json = 'null' then 'missing_price'
                    when price is null or not isfinite(price) then 'invalid_price'
                    when price <= 0 then 'non_positive_price'
               end as reason,
               case when line_reason is not null then line_detail
                    when product_id is not null and price is null and price_json <> 'null'
                    then 'price ' || price_json end as detail
        from priced
    """


def lines_select(records: str) -> str:
    """silver.transaction_lines: the records no rule rejected, in LINES_SCHEMA's columns."""
    return f"select {', '.join(LINES_SCHEMA.names())} from {records} where reason is null"


def quarantine_select(records: str) -> str:
    """silver.transaction_quarantine in the core contract: the landed text of a line that did not parse, else the
    record as parsed (file and line locate it in the landing folder)."""
    return f"""
        select week_start, source_file, line_number,
               case when basket_position is not null then 'basket[' || basket_position || ']' end as position,
               reason, detail,
               coalesce(raw_line, to_json({{'customer_id': customer_id, 'basket': basket,
                                            'date_of_purchase': date_of_purchase}})::varchar) as raw
        from {records} where reason is not null
    """


def weekly_purchase_counts_select(lines: str, customers: str, products: str, first_week: date, last_week: date) -> str:
    """gold.customer_product_purchases: one row per week, customer and product bought; count = basket lines."""
    return f"""
        select counts.week_start, counts.customer_id, c.loyalty_score, counts.product_id, p.product_category,
               counts.purchase_count
        from (
            select week_start, customer_id, product_id, count(*)::bigint as purchase_count
            from {lines} where week_start between DATE '{first_week}' and DATE '{last_week}'
            group by all
        ) as counts
        left join {customers} as c on c.customer_id = counts.customer_id
        left join {products} as p on p.product_id = counts.product_id
    """


def records_per_week_sql(bronze: str) -> str:
    """Bronze records per week (basket items, or one for a line without a usable basket), in the form
    `reconciliation_check` takes (`$weeks`)."""
    return f"""
        select week_start, sum(greatest(coalesce(len(basket), 0), 1))::bigint as rows
        from {bronze} where week_start = any($weeks) group by 1"""


def insert_bronze(connection: duckdb.DuckDBPyConnection, bronze: str, files: list[DayFile]) -> None:
    """Insert the bronze rows of `files` into the table `bronze`; a file that is not UTF-8 is read line by line."""
    if not files:
        return
    connection.register("day_files", day_files_frame(files))
    lines = lines_of_files_select("day_files", [str(file.path) for file in files])
    connection.execute(f"insert into {bronze} by name {bronze_select(f'({lines})')}")
    connection.unregister("day_files")
    not_utf8 = "parse_error = 'not_utf8' and line_number is null and source_file = any($files)"
    names = [file.source_file for file in files]
    unreadable = {
        name
        for (name,) in connection.execute(
            f"select source_file from {bronze} where {not_utf8}", {"files": names}
        ).fetchall()
    }
    if unreadable:
        connection.execute(f"delete from {bronze} where {not_utf8}", {"files": sorted(unreadable)})
        fallback = pl.concat([utf8_fallback_lines(file) for file in files if file.source_file in unreadable])
        connection.register("fallback_lines", fallback)
        connection.execute(f"insert into {bronze} by name {bronze_select('fallback_lines')}")
        connection.unregister("fallback_lines")


def insert_silver(
    connection: duckdb.DuckDBPyConnection,
    *,
    bronze: str,
    customers: str,
    products: str,
    lines: str,
    quarantine: str,
    weeks: list[date],
) -> None:
    """Judge the bronze records of `weeks` (consecutive) and insert each into `lines` or `quarantine`.

    The judging query runs twice, once per table, rather than materializing every record in between: measured at
    3M transactions, keeping 6.4M judged records in a temporary table cost more than judging them again."""
    records = f"({records_select(bronze, customers, products, min(weeks), max(weeks))})"
    connection.execute(f"insert into {lines} by name {lines_select(records)}")
    connection.execute(f"insert into {quarantine} by name {quarantine_select(records)}")


def insert_counts(
    connection: duckdb.DuckDBPyConnection, *, lines: str, customers: str, products: str, counts: str, weeks: list[date]
) -> None:
    """Insert the weekly purchase counts of `weeks` (consecutive) into `counts`."""
    select = weekly_purchase_counts_select(lines, customers, products, min(weeks), max(weeks))
    connection.execute(f"insert into {counts} by name {select}")


@dataclass(frozen=True)
class TransactionTables:
    bronze: pl.DataFrame
    lines: pl.DataFrame
    quarantine: pl.DataFrame
    counts: pl.DataFrame


def transform_in_memory(
    landing_dir: Path, weeks: list[date], customers: pl.DataFrame, products: pl.DataFrame
) -> TransactionTables:
    """The whole path, as the weekly assets run it, in an in-memory DuckDB over silver customers and products
    frames: a look at the tables without a warehouse (tests, a notebook)."""
    connection = duckdb.connect()
    try:
        run_in(connection, landing_dir, weeks, customers, products)
        order = {"bronze": "day, line_number", "lines": "source_file, line_number, basket_position"}
        frames = {
            table: connection.sql(f"select * from {table} order by {order.get(table, 'all')}").pl()
            for table in ("bronze", "lines", "quarantine", "counts")
        }
        return TransactionTables(**frames)
    finally:
        connection.close()


def run_in(
    connection: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    weeks: list[date],
    customers: pl.DataFrame,
    products: pl.DataFrame,
) -> None:
    """Every step of the path into the tables `bronze`, `lines`, `quarantine` and `counts` of `connection`."""
    connection.register("customers", customers)
    connection.register("products", products)
    for table, schema in (
        ("bronze", BRONZE_SCHEMA),
        ("lines", LINES_SCHEMA),
        ("quarantine", QUARANTINE_SCHEMA),
        ("counts", COUNTS_SCHEMA),
    ):
        connection.register("empty", schema.to_frame())
        connection.execute(f"create table {table} as select * from empty")
    insert_bronze(connection, "bronze", landed_day_files(landing_dir, weeks))
    if weeks:
        tables = {"customers": "customers", "products": "products", "lines": "lines"}
        insert_silver(connection, bronze="bronze", quarantine="quarantine", weeks=weeks, **tables)
        insert_counts(connection, counts="counts", weeks=weeks, **tables)
