"""A Pandera schema checked where the table lives: one SQL pass over the warehouse table per check run, instead of
loading every week into Polars. No Dagster here: a schema and a connection in, a `SchemaValidation` out.

The schema stays the one source (`core.checks.pandera_schema` derives it from the transform's `pl.Schema`); this
module translates what it says into DuckDB SQL: each column present with its dtype, no nulls where not nullable,
the built-in checks Pandera names (`ge`, `gt`, `le`, `lt`, `in_range`, `isin`, `notin`, `eq`, `str_matches`,
`str_startswith`, `str_contains`), unique columns and unique column sets (within a week for a weekly table, as the
per-week validation did), `strict` and `ordered`. As in Pandera, a check ignores nulls; nulls are the nullable
flag's business. A schema with a check it cannot translate (a custom function) returns None, and the caller falls
back to Pandera on Polars frames.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandera.polars as pa
import polars as pl

from custpipe_assets.core.partitions import weeks_in_batches
from custpipe_assets.core.sql_text import sql_literal
from custpipe_assets.core.warehouse import PARTITION_COLUMN

SAMPLE_ROWS = 10
UNIQUE_ROWS_PER_QUERY = 500_000  # see validate_in_sql
CASES_SCHEMA = {
    "column": pl.String,
    "check": pl.String,
    "failures": pl.Int64,
    "failure_case": pl.String,
    "where": pl.String,
}


# Pandera's built-in comparisons: check name -> (SQL operator, the statistic the column is compared with)
_COMPARISONS = {
    "greater_than_or_equal_to": (">=", "min_value"),
    "greater_than": (">", "min_value"),
    "less_than_or_equal_to": ("<=", "max_value"),
    "less_than": ("<", "max_value"),
    "equal_to": ("=", "value"),
}
# Pandera's built-in string checks: check name -> (DuckDB function, the statistic, the function's argument from it)
_STRING_CHECKS = {
    "str_matches": ("regexp_matches", "pattern", lambda pattern: "^(?:" + pattern + ")"),  # anchored at the start
    "str_contains": ("regexp_matches", "pattern", str),
    "str_startswith": ("starts_with", "string", str),
}


def _check_sql(check: pa.Check, column: str) -> str | None:
    """A predicate that holds for a passing value of `column` (quoted), or None when the check is not a built-in."""
    stats = check.statistics or {}
    if check.name in _COMPARISONS:
        operator, statistic = _COMPARISONS[check.name]
        return f"{column} {operator} {sql_literal(stats[statistic])}"
    if check.name == "in_range":
        low = ">=" if stats.get("include_min", True) else ">"
        high = "<=" if stats.get("include_max", True) else "<"
        return f"{column} {low} {sql_literal(stats['min_value'])} and {column} {high} {sql_literal(stats['max_value'])}"
    if check.name in ("isin", "notin"):
        values = stats["allowed_values" if check.name == "isin" else "forbidden_values"]
        listed = ", ".join(sql_literal(value) for value in values) or "NULL"
        return f"{column} {'in' if check.name == 'isin' else 'not in'} ({listed})"
    if check.name in _STRING_CHECKS:
        function, statistic, argument = _STRING_CHECKS[check.name]
        return f"{function}({column}, {sql_literal(argument(stats[statistic]))})"
    return None


def _same_dtype(expected: pl.DataType, actual: pl.DataType) -> bool:
    """Dtype equality, reading a zoned timestamp's `Etc/UTC` (DuckDB's name) as `UTC`."""
    if isinstance(expected, pl.Datetime) and isinstance(actual, pl.Datetime):
        zone = {"Etc/UTC": "UTC"}
        return zone.get(expected.time_zone, expected.time_zone) == zone.get(actual.time_zone, actual.time_zone)
    return expected == actual


def validate_in_sql(
    connection: duckdb.DuckDBPyConnection, table: str, schema: pa.DataFrameSchema, weeks: list[date] | None
) -> tuple[int, pl.DataFrame] | None:
    """Rows checked and the failure cases of `schema` on `table` (only `weeks` when given), one row per failing
    check with its count (`column, check, failures, failure_case, where`), or None when the schema has a check SQL
    cannot express. A missing or mistyped column is reported alone, with 0 rows checked.

    `where` is a predicate selecting the failing rows, for the caller's sample.
    """
    predicates: list[tuple[str, str, str]] = []  # (column, check name, SQL that holds for a failing row)
    for name, column in schema.columns.items():
        quoted = f'"{name}"'
        if not column.nullable:
            predicates.append((name, "not_nullable", f"{quoted} is null"))
        for check in column.checks:
            passing = _check_sql(check, quoted)
            if passing is None:
                return None
            predicates.append((name, check.error or check.name, f"{quoted} is not null and not ({passing})"))

    actual = connection.execute(f"select * from {table} limit 0").pl().schema
    cases: list[dict] = []
    for name, column in schema.columns.items():
        if name not in actual:
            cases.append({"column": name, "check": "column_in_dataframe", "failures": 1, "failure_case": name})
        elif column.dtype is not None and not _same_dtype(column.dtype.type, actual[name]):
            cases.append(
                {"column": name, "check": f"dtype('{column.dtype}')", "failures": 1, "failure_case": str(actual[name])}
            )
    if schema.strict:
        for name in actual.names():
            if name not in schema.columns:
                cases.append({"column": name, "check": "column_in_schema", "failures": 1, "failure_case": name})
    if schema.ordered and [n for n in actual.names() if n in schema.columns] != list(schema.columns):
        cases.append(
            {"column": None, "check": "column_ordered", "failures": 1, "failure_case": ", ".join(actual.names())}
        )
    if cases:  # a missing or mistyped column: the value checks cannot be trusted (or even run)
        return 0, pl.DataFrame(cases).with_columns(where=pl.lit(None, pl.String))

    scope = f"where {PARTITION_COLUMN} = any($weeks)" if weeks is not None else ""
    parameters = {"weeks": weeks} if weeks is not None else {}
    counted = ", ".join(f"count(*) filter (where {sql}) as c{i}" for i, (_, _, sql) in enumerate(predicates))
    row = connection.execute(
        f"select count(*) {', ' + counted if counted else ''} from {table} {scope}", parameters
    ).fetchone()
    rows_checked = row[0]
    for (name, check, sql), failures in zip(predicates, row[1:], strict=True):
        if failures:
            cases.append({"column": name, "check": check, "failures": failures, "failure_case": None, "where": sql})

    week_key = [PARTITION_COLUMN] if weeks is not None and PARTITION_COLUMN in actual else []
    unique_sets = [[name] for name, column in schema.columns.items() if column.unique]
    if schema.unique:
        unique_sets.append(list(schema.unique))
    # Uniqueness groups every row by its key: over a long range that is more groups than memory holds (64M gold rows
    # ran out at DuckDB's 1 GB), so weekly tables are checked a batch of weeks at a time (within a week is what
    # uniqueness means for them anyway). Small batches are also faster, their hash tables staying small: the three
    # transaction tables of 3M transactions took 2.6 s of CPU in batches of 500,000 rows, 4.2 s in batches of 8M.
    # Each batch is first counted by the hash of its key (one 64-bit value per row, 20-30% cheaper than grouping the
    # key's text): as many distinct hashes as rows means no key repeats; only a batch with fewer (a repeat, or a
    # hash collision, about one in 10^8 batches) is grouped by the key itself for the exact count.
    batches = [weeks] if not week_key else _week_batches(connection, table, weeks)
    for columns in unique_sets:
        key = ", ".join(f'"{name}"' for name in dict.fromkeys(week_key + columns))
        duplicated = 0
        for batch in batches:
            batch_scope = f"where {PARTITION_COLUMN} = any($weeks)" if batch is not None else ""
            parameters = {"weeks": batch} if batch is not None else {}
            repeats = connection.execute(
                f"select count(*) - count(distinct hash({key})) from {table} {batch_scope}", parameters
            ).fetchone()[0]
            if repeats:
                duplicated += connection.execute(
                    f"select coalesce(sum(n), 0) from "
                    f"(select count(*) as n from {table} {batch_scope} group by {key} having n > 1)",
                    parameters,
                ).fetchone()[0]
        if duplicated:
            cases.append(
                {
                    "column": ", ".join(columns),
                    "check": "unique",
                    "failures": int(duplicated),
                    "failure_case": None,
                    "where": f"({key}) in (select ({key}) from {table} {scope} group by {key} having count(*) > 1)",
                }
            )
    return rows_checked, pl.DataFrame(cases, schema=CASES_SCHEMA)


def _week_batches(connection: duckdb.DuckDBPyConnection, table: str, weeks: list[date]) -> list[list[date]]:
    rows = dict(
        connection.execute(
            f"select {PARTITION_COLUMN}, count(*) from {table} where {PARTITION_COLUMN} = any($weeks) group by 1",
            {"weeks": weeks},
        ).fetchall()
    )
    return weeks_in_batches(weeks, rows, UNIQUE_ROWS_PER_QUERY)


def table_exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `schema.table` was ever written (a check validates it in place only then)."""
    schema, name = table.split(".")
    found = connection.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = ? and table_name = ? and table_catalog = current_database()",
        [schema, name],
    ).fetchone()[0]
    return bool(found)


def failing_rows(
    connection: duckdb.DuckDBPyConnection, table: str, where: str, weeks: list[date] | None
) -> pl.DataFrame:
    """A few rows failing one check (its `where`), for the report."""
    scope = f" and {PARTITION_COLUMN} = any($weeks)" if weeks is not None else ""
    parameters = {"weeks": weeks} if weeks is not None else {}
    return connection.execute(f"select * from {table} where ({where}){scope} limit {SAMPLE_ROWS}", parameters).pl()
