"""Weekly rollups, their aggregation (Polars and DuckDB SQL) and customer features, on hand-made inputs and answers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import duckdb
import numpy as np
import polars as pl
import pytest

from custpipe_assets.purchases.transactions import LINES_SCHEMA
from custpipe_assets.segmentation.features import (
    AGGREGATED_ROLLUPS_SCHEMA,
    CLV_LIFETIME_WEEKS,
    FEATURES_SCHEMA,
    ROLLUP_SCHEMA,
    aggregate_rollups,
    aggregate_rollups_sql,
    customer_features,
    weekly_rollup,
)
from custpipe_assets.segmentation.store_purchases import MATCHED_SCHEMA

WEEK_1, WEEK_2 = date(2018, 9, 3), date(2018, 9, 10)


def online(week: date, *lines: tuple[str, str, int, float, datetime]) -> pl.DataFrame:
    """Silver transaction lines: (customer, file, line, price, purchased_at); one row per basket item."""
    rows = [
        {
            "week_start": week,
            "purchased_at": at,
            "customer_id": customer,
            "product_id": "P1",
            "price": price,
            "source_file": file,
            "line_number": line,
            "basket_position": position,
        }
        for position, (customer, file, line, price, at) in enumerate(lines)
    ]
    return pl.DataFrame(rows, schema=LINES_SCHEMA)


def store(week: date, *purchases: tuple[str, float, datetime]) -> pl.DataFrame:
    rows = [
        {
            "week_start": week,
            "purchased_at": at,
            "customer_id": customer,
            "mobile_e164": "+447852722458",
            "amount": amount,
            "store": "Leeds",
            "page": 1,
            "record_number": number,
        }
        for number, (customer, amount, at) in enumerate(purchases, start=1)
    ]
    return pl.DataFrame(rows, schema=MATCHED_SCHEMA)


def test_weekly_rollup_counts_transactions_not_basket_lines_and_joins_online_with_store() -> None:
    day1, day2 = "transactions/d=2018-09-03/transactions.json", "transactions/d=2018-09-04/transactions.json"
    lines = online(
        WEEK_1,
        ("C1", day1, 1, 0.1, datetime(2018, 9, 3, 9)),  # one transaction of two basket lines
        ("C1", day1, 1, 0.2, datetime(2018, 9, 3, 9)),
        ("C1", day2, 1, 5.0, datetime(2018, 9, 4, 9)),  # same line number, other file: another transaction
        ("C2", day1, 2, 19.99, datetime(2018, 9, 3, 10)),
    )
    purchases = store(
        WEEK_1,
        ("C1", 2.5, datetime(2018, 9, 8, 12)),
        ("C3", 1.1, datetime(2018, 9, 5)),
        ("C3", 2.2, datetime(2018, 9, 6)),
    )
    rollup = weekly_rollup(lines, purchases, WEEK_1)
    assert rollup.schema == ROLLUP_SCHEMA
    assert rollup.rows() == [
        (WEEK_1, "C1", 2, Decimal("5.30"), 1, Decimal("2.50"), datetime(2018, 9, 3, 9), datetime(2018, 9, 8, 12)),
        (WEEK_1, "C2", 1, Decimal("19.99"), 0, Decimal("0.00"), datetime(2018, 9, 3, 10), datetime(2018, 9, 3, 10)),
        (WEEK_1, "C3", 0, Decimal("0.00"), 2, Decimal("3.30"), datetime(2018, 9, 5), datetime(2018, 9, 6)),
    ]


def test_weekly_rollup_refuses_rows_of_another_week() -> None:
    lines = online(WEEK_2, ("C1", "f", 1, 1.0, datetime(2018, 9, 10, 9)))
    with pytest.raises(ValueError, match="2018-09-10"):
        weekly_rollup(lines, store(WEEK_1), WEEK_1)


def two_weeks_of_rollups() -> pl.DataFrame:
    rows = [
        (WEEK_1, "C1", 2, Decimal("5.30"), 1, Decimal("2.50"), datetime(2018, 9, 3, 9), datetime(2018, 9, 8, 12)),
        (WEEK_1, "C2", 1, Decimal("19.99"), 0, Decimal("0"), datetime(2018, 9, 3, 10), datetime(2018, 9, 3, 10)),
        (WEEK_2, "C1", 0, Decimal("0"), 3, Decimal("0.10"), datetime(2018, 9, 11, 8), datetime(2018, 9, 15, 8)),
    ]
    return pl.DataFrame(rows, schema=ROLLUP_SCHEMA, orient="row")


def test_aggregate_rollups_in_polars_and_in_duckdb_sql_agree_with_the_hand_computed_answer() -> None:
    rollups = two_weeks_of_rollups()
    expected = pl.DataFrame(
        [
            ("C1", 6, Decimal("7.90"), datetime(2018, 9, 15, 8), datetime(2018, 9, 3, 9), 2),
            ("C2", 1, Decimal("19.99"), datetime(2018, 9, 3, 10), datetime(2018, 9, 3, 10), 1),
        ],
        schema=AGGREGATED_ROLLUPS_SCHEMA,
        orient="row",
    )
    assert aggregate_rollups(rollups).equals(expected)
    connection = duckdb.connect()
    connection.execute("create schema gold")
    connection.execute("create table gold.customer_weekly_rollups as select * from rollups")
    from_sql = connection.sql(aggregate_rollups_sql("gold.customer_weekly_rollups")).pl()
    assert from_sql.schema == AGGREGATED_ROLLUPS_SCHEMA
    assert from_sql.equals(expected)


def aggregated(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=AGGREGATED_ROLLUPS_SCHEMA, orient="row")


PROFILES = pl.DataFrame(
    {
        "customer_id": ["C1", "C2", "C3"],
        "age": [30, 50, 40],
        "income": [20_000.0, 60_000.0, 40_000.0],
        "gender_female": [1, 0, 1],
        "joined_at": [date(2015, 1, 1), date(2018, 9, 24), date(2018, 1, 1)],
    },
    schema_overrides={"gender_female": pl.Int8},
)
CUSTOMERS = pl.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"], "loyalty_score": [0.9, 0.5, None, 0.1]})
AS_OF = date(2018, 10, 28)  # Sunday ending the eighth week from 2018-09-03


def test_customer_features_by_hand() -> None:
    rollups = aggregated(
        ("C1", 16, Decimal("400.00"), datetime(2018, 10, 25, 9), datetime(2018, 9, 3, 9), 8),
        ("C2", 3, Decimal("30.00"), datetime(2018, 10, 1, 9), datetime(2018, 9, 24, 9), 2),
    )
    features = customer_features(rollups, PROFILES, CUSTOMERS, AS_OF)
    assert features.schema == FEATURES_SCHEMA
    assert features["customer_id"].to_list() == ["C1", "C2", "C3", "C4"]
    rows = {row["customer_id"]: row for row in features.to_dicts()}

    # C1 joined in 2015, so it is observed from the history start (Monday 2018-09-03): 56 days = 8 weeks
    c1 = rows["C1"]
    assert c1["observed_weeks"] == 8.0 and c1["purchase_frequency"] == 2.0
    assert c1["avg_transaction_value"] == 25.0 and c1["recency_days"] == 3
    assert c1["clv"] == pytest.approx(25.0 * 2.0 * CLV_LIFETIME_WEEKS)
    assert (c1["first_purchase_date"], c1["last_purchase_date"]) == (date(2018, 9, 3), date(2018, 10, 25))
    # C2 joined on 2018-09-24: its tenure is 35 days = 5 weeks
    c2 = rows["C2"]
    assert c2["observed_weeks"] == 5.0 and c2["purchase_frequency"] == pytest.approx(3 / 5)
    assert c2["recency_days"] == 27 and c2["total_spend"] == Decimal("30.00")
    # C3 never bought: zeros, and recency is its whole observed window (8 weeks = 56 days)
    c3 = rows["C3"]
    assert (c3["purchases"], c3["active_weeks"], c3["total_spend"]) == (0, 0, Decimal("0.00"))
    assert (c3["purchase_frequency"], c3["avg_transaction_value"], c3["clv"]) == (0.0, 0.0, 0.0)
    assert c3["recency_days"] == 56 and c3["last_purchase_date"] is None and c3["loyalty_score"] is None
    # C4 is only in customers.csv: no demographics, so the mean (0) for the scaled inputs and not-female
    c4 = rows["C4"]
    assert (c4["age"], c4["income"], c4["gender_female"]) == (None, None, 0)
    assert (c4["age_scaled"], c4["income_scaled"]) == (0.0, 0.0)
    assert c4["loyalty_score"] == 0.1

    ages, incomes = np.array([30.0, 50.0, 40.0]), np.array([20_000.0, 60_000.0, 40_000.0])
    for customer, age, income in zip(("C1", "C2", "C3"), ages, incomes, strict=True):
        assert rows[customer]["age_scaled"] == pytest.approx((age - ages.mean()) / ages.std())
        assert rows[customer]["income_scaled"] == pytest.approx((income - incomes.mean()) / incomes.std())


def test_a_customer_only_in_the_rollups_is_kept_and_history_start_can_be_given() -> None:
    rollups = aggregated(("C9", 4, Decimal("8.00"), datetime(2018, 10, 28, 23), datetime(2018, 10, 22, 1), 1))
    features = customer_features(rollups, PROFILES, CUSTOMERS, AS_OF, history_start=date(2018, 10, 15))
    c9 = features.filter(pl.col("customer_id") == "C9").row(0, named=True)
    assert (c9["observed_weeks"], c9["purchase_frequency"], c9["recency_days"]) == (2.0, 2.0, 0)
    assert features.height == 5


def test_customer_features_refuses_purchases_after_as_of_and_repeated_customers() -> None:
    late = aggregated(("C1", 1, Decimal("1.00"), datetime(2018, 10, 29, 0, 1), datetime(2018, 10, 29, 0, 1), 1))
    with pytest.raises(ValueError, match="after as_of"):
        customer_features(late, PROFILES, CUSTOMERS, AS_OF)
    with pytest.raises(ValueError, match="customers must hold one row per customer_id"):
        customer_features(aggregated(), PROFILES, pl.concat([CUSTOMERS, CUSTOMERS]), AS_OF)
