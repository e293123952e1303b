"""A Pandera schema checked in SQL where the table lives finds exactly what Pandera finds on the same rows."""

from datetime import date

import duckdb
import pandera.errors
import pandera.polars as pa
import polars as pl
import pytest

from custpipe_assets.core.sql_checks import failing_rows, validate_in_sql

SCHEMA = pa.DataFrameSchema(
    {
        "week_start": pa.Column(pl.Date),
        "customer_id": pa.Column(pl.String, pa.Check.str_matches(r"C\d+")),
        "score": pa.Column(pl.Int64, pa.Check.in_range(1, 10), nullable=True),
        "price": pa.Column(pl.Float64, pa.Check.gt(0)),
        "reason": pa.Column(pl.String, pa.Check.isin(["a", "b"]), nullable=True),
    },
    unique=["customer_id"],
    strict=True,
)
W1, W2 = date(2018, 9, 3), date(2018, 9, 10)
ROWS = pl.DataFrame(
    {
        "week_start": [W1, W1, W1, W1, W2, W2],
        "customer_id": ["C1", "C2", "x3", "C1", "C1", None],
        "score": [5, None, 11, 1, 0, 3],
        "price": [1.0, -2.0, 3.0, 4.0, 0.0, 1.0],
        "reason": ["a", None, "c", "b", "a", "z"],
    }
)


def _pandera_counts(frame: pl.DataFrame) -> dict[tuple[str, str], int]:
    """What Pandera itself reports on the same rows, a week at a time (how the checks ran before); its
    `multiple_fields_uniqueness` is our `unique` on the same columns."""
    counts: dict[tuple[str, str], int] = {}
    for week in (W1, W2):
        try:
            SCHEMA.validate(frame.filter(pl.col("week_start") == week), lazy=True)
        except pandera.errors.SchemaErrors as errors:
            for column, check, failures in errors.failure_cases.group_by("column", "check").len().iter_rows():
                if check == "multiple_fields_uniqueness":
                    column, check = "customer_id", "unique"
                counts[(column, check)] = counts.get((column, check), 0) + failures
    return counts


@pytest.fixture
def connection():
    with duckdb.connect() as connection:
        connection.execute("create schema silver")
        connection.register("rows", ROWS.to_arrow())
        connection.execute("create table silver.t as select * from rows")
        yield connection


@pytest.mark.parametrize("rows_per_query", [8_000_000, 1], ids=["one query", "a week a query"])
def test_sql_counts_what_pandera_counts_per_check(connection, monkeypatch, rows_per_query):
    monkeypatch.setattr("custpipe_assets.core.sql_checks.UNIQUE_ROWS_PER_QUERY", rows_per_query)
    rows_checked, cases = validate_in_sql(connection, "silver.t", SCHEMA, [W1, W2])
    found = {
        (column, check): failures for column, check, failures in cases.select("column", "check", "failures").iter_rows()
    }
    assert found == {
        ("customer_id", r"str_matches('C\d+')"): 1,  # x3
        ("customer_id", "not_nullable"): 1,  # week 2's null id
        ("score", "in_range(1, 10)"): 2,  # 11, 0 (the null is allowed)
        ("price", "greater_than(0)"): 2,  # -2, 0
        ("reason", "isin(['a', 'b'])"): 2,  # c, z
        ("customer_id", "unique"): 2,  # C1 twice in week 1 (week 2's C1 is another week)
    }
    assert found == _pandera_counts(ROWS), "the same failures as Pandera on Polars"
    assert rows_checked == 6


def test_one_week_only_and_the_failing_rows_sample(connection):
    rows_checked, cases = validate_in_sql(connection, "silver.t", SCHEMA, [W2])
    assert rows_checked == 2
    assert dict(cases.select("check", "failures").iter_rows()) == {
        "not_nullable": 1,
        "in_range(1, 10)": 1,
        "greater_than(0)": 1,
        "isin(['a', 'b'])": 1,
    }
    where = cases.filter(pl.col("column") == "reason")["where"][0]
    assert failing_rows(connection, "silver.t", where, [W2])["reason"].to_list() == ["z"]


def test_missing_extra_and_mistyped_columns_are_reported_first(connection):
    connection.execute(
        "create table silver.u as select week_start, customer_id, cast(score as varchar) as score, "
        "price, 1 as extra from silver.t"
    )
    rows_checked, cases = validate_in_sql(connection, "silver.u", SCHEMA, None)
    assert rows_checked == 0, "the value checks do not run on a table in other columns"
    assert sorted(cases.select("column", "check").rows()) == [
        ("extra", "column_in_schema"),
        ("reason", "column_in_dataframe"),
        ("score", "dtype('Int64')"),
    ]


def test_a_custom_check_is_left_to_pandera():
    custom = pa.DataFrameSchema(
        {"a": pa.Column(pl.Int64, pa.Check(lambda data: data.lazyframe.select(pl.col("a") > 0)))}
    )
    with duckdb.connect() as connection:
        connection.execute("create table t as select 1 as a")
        assert validate_in_sql(connection, "t", custom, None) is None


def test_a_passing_table_still_reports_the_rows_it_checked(connection):
    connection.execute("create table silver.ok as select * from silver.t where customer_id = 'C2'")
    connection.execute("update silver.ok set price = 2.0")
    rows_checked, cases = validate_in_sql(connection, "silver.ok", SCHEMA, [W1])
    assert (rows_checked, cases.height) == (1, 0)


@pytest.mark.parametrize("rows_per_query", [8_000_000, 1], ids=["one query", "a week a query"])
def test_uniqueness_counts_only_the_weeks_asked_for(monkeypatch, rows_per_query):
    """A week between two asked-for weeks is not checked, also when they are checked in one query."""
    monkeypatch.setattr("custpipe_assets.core.sql_checks.UNIQUE_ROWS_PER_QUERY", rows_per_query)
    schema = pa.DataFrameSchema({"week_start": pa.Column(pl.Date), "id": pa.Column(pl.Int64)}, unique=["id"])
    w3 = date(2018, 9, 17)
    rows = pl.DataFrame({"week_start": [W1, W2, W2, W2, w3, w3], "id": [1, 7, 7, 7, 1, 2]})  # week 2 repeats id 7
    with duckdb.connect() as connection:
        connection.register("rows", rows.to_arrow())
        connection.execute("create table t as select * from rows")

        def unique_failures(weeks):
            cases = validate_in_sql(connection, "t", schema, weeks)[1]
            return cases.filter(pl.col("check") == "unique")["failures"].sum()

        assert unique_failures([W1, W2, w3]) == 3
        assert unique_failures([W2]) == 3
        assert unique_failures([W1, w3]) == 0  # week 2 is not among them
        assert unique_failures([W1]) == unique_failures([w3]) == 0
