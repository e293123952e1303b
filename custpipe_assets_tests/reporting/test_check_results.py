"""Reading check results from a real temporary Dagster instance after real runs of tiny assets and checks.

The checks compute their results from hand-made inputs, so every expectation (which rows fail, how many, which
run is the latest for a week) is written out here by hand, and run ids come from Dagster's own run results.
"""

from datetime import UTC, datetime

import dagster as dg
import pytest

from custpipe_assets.reporting.check_results import CheckResultRecord, latest_check_results

WEEKS = dg.WeeklyPartitionsDefinition(start_date="2018-09-03", day_offset=1, timezone="UTC")
WEEK_1, WEEK_2, WEEK_3 = "2018-09-03", "2018-09-10", "2018-09-17"

ORDERS = [
    {"order_id": 1, "amount": 10, "email": "a@example.com"},
    {"order_id": 2, "amount": -5, "email": ""},
    {"order_id": 3, "amount": -1, "email": "c@example.com"},
    {"order_id": 4, "amount": 7, "email": "d@example.com"},
]


def markdown_rows(rows: list[dict]) -> str:
    lines = ["| order_id | amount |", "|---|---|", *(f"| {row['order_id']} | {row['amount']} |" for row in rows)]
    return "\n".join(lines) if rows else "none"


@dg.asset
def orders() -> list[dict]:
    return ORDERS


@dg.asset_check(asset=orders, description="orders has rows")
def orders_not_empty(orders: list[dict]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=bool(orders),
        metadata={
            "failure_count": 0,
            "sample_failing_rows": dg.MetadataValue.md("none"),
            "orders_by_sign": dg.MetadataValue.json({"positive": 2, "negative": 2}),
            "null_share": float("nan"),
        },
    )


@dg.asset_check(asset=orders, description="amount is positive")
def positive_amount(orders: list[dict]) -> dg.AssetCheckResult:
    failing = [row for row in orders if row["amount"] <= 0]
    return dg.AssetCheckResult(
        passed=not failing,
        description=f"{len(failing)} orders have an amount of 0 or less",
        metadata={
            "rows_checked": len(orders),
            "failure_count": len(failing),
            "failures_by_check": dg.MetadataValue.md(
                "| column | check | failures |\n|---|---|---|\n| amount | > 0 | 2 |"
            ),
            "sample_failing_rows": dg.MetadataValue.md(markdown_rows(failing)),
        },
    )


@dg.asset_check(asset=orders)
def has_email(orders: list[dict]) -> dg.AssetCheckResult:
    failing = [row for row in orders if not row["email"]]
    return dg.AssetCheckResult(
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failure_count": len(failing), "sample_failing_rows": dg.MetadataValue.md(markdown_rows(failing))},
    )


def build_weekly(missing_by_week: dict[str, int]) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    """A weekly asset (no stored value, so a single run may cover many weeks) and a check counting missing rows."""

    @dg.asset(partitions_def=WEEKS)
    def signups() -> None:
        return None

    @dg.asset_check(asset=signups, partitions_def=WEEKS)
    def signups_complete(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        missing = sum(missing_by_week.get(week, 0) for week in context.partition_keys)
        return dg.AssetCheckResult(
            passed=missing == 0,
            metadata={"failure_count": missing, "sample_failing_rows": dg.MetadataValue.md(f"{missing} rows missing")},
        )

    return signups, signups_complete


@pytest.fixture(scope="module")
def history():
    """One instance, four runs: the unpartitioned checks once; the weekly check for week 1, week 2, then week 1 again."""
    missing_by_week = {WEEK_1: 2}
    signups, signups_complete = build_weekly(missing_by_week)
    runs = {}
    with dg.DagsterInstance.ephemeral() as instance:
        started = datetime.now(UTC)
        runs["orders"] = dg.materialize([orders, orders_not_empty, positive_amount, has_email], instance=instance)
        runs["week_1_first"] = dg.materialize([signups, signups_complete], instance=instance, partition_key=WEEK_1)
        runs["week_2"] = dg.materialize([signups, signups_complete], instance=instance, partition_key=WEEK_2)
        missing_by_week[WEEK_1] = 0
        runs["week_1_again"] = dg.materialize([signups, signups_complete], instance=instance, partition_key=WEEK_1)
        yield instance, {name: result.run_id for name, result in runs.items()}, started


def by_slot(records: list[CheckResultRecord]) -> dict[tuple[str, str, str | None], CheckResultRecord]:
    slots = {(r.asset_key, r.check_name, r.partition): r for r in records}
    assert len(slots) == len(records), "one record per check and partition"
    return slots


def test_latest_result_per_check_and_partition(history):
    instance, run_ids, started = history
    records = latest_check_results(instance)
    summary = {slot: (r.passed, r.severity, r.failure_count, r.run_id) for slot, r in by_slot(records).items()}
    assert summary == {
        ("orders", "orders_not_empty", None): (True, "ERROR", 0, run_ids["orders"]),
        ("orders", "positive_amount", None): (False, "ERROR", 2, run_ids["orders"]),
        ("orders", "has_email", None): (False, "WARN", 1, run_ids["orders"]),
        # week 1 failed first and passed on its re-run: only the re-run counts
        ("signups", "signups_complete", WEEK_1): (True, "ERROR", 0, run_ids["week_1_again"]),
        ("signups", "signups_complete", WEEK_2): (True, "ERROR", 0, run_ids["week_2"]),
    }
    assert [r.status for r in records if r.asset_key == "orders"] == ["warning", "passed", "failed"]
    for record in records:
        assert record.timestamp.tzinfo == UTC and started <= record.timestamp <= datetime.now(UTC)
        assert record.covered_partitions == ((record.partition,) if record.partition else ())


def test_failing_check_carries_its_sample_description_and_metadata(history):
    instance, _, _ = history
    failing = by_slot(latest_check_results(instance))[("orders", "positive_amount", None)]
    assert failing.sample_failing_rows == "| order_id | amount |\n|---|---|\n| 2 | -5 |\n| 3 | -1 |"
    assert failing.description == "2 orders have an amount of 0 or less"
    assert failing.metadata["rows_checked"] == 4
    assert failing.metadata["failure_count"] == 2
    assert "| amount | > 0 | 2 |" in failing.metadata["failures_by_check"]
    warned = by_slot(latest_check_results(instance))[("orders", "has_email", None)]
    assert warned.sample_failing_rows.splitlines()[-1] == "| 2 | -5 |"


def test_metadata_comes_back_as_plain_json(history):
    instance, _, _ = history
    passing = by_slot(latest_check_results(instance))[("orders", "orders_not_empty", None)]
    assert passing.metadata == {
        "failure_count": 0,
        "sample_failing_rows": "none",
        "orders_by_sign": {"positive": 2, "negative": 2},
        "null_share": "nan",
    }
    assert passing.failure_count == 0 and passing.sample_failing_rows == "none" and passing.description is None


def test_only_the_asked_check_keys(history):
    instance, run_ids, _ = history
    wanted = [
        dg.AssetCheckKey(dg.AssetKey("orders"), "has_email"),
        dg.AssetCheckKey(dg.AssetKey("nowhere"), "never_ran"),
    ]
    records = latest_check_results(instance, asset_check_keys=wanted)
    assert [(r.asset_key, r.check_name, r.run_id) for r in records] == [("orders", "has_email", run_ids["orders"])]
    assert latest_check_results(instance, asset_check_keys=[]) == []


def test_single_run_over_many_weeks_and_single_weeks_replace_each_other():
    """A single-run backfill gives one result for weeks 1-3; a re-run of week 2 takes that week away from it, and a
    later range run over weeks 1-2 takes both back, leaving week 3 to the first range run."""
    missing_by_week = {WEEK_2: 3}
    signups, signups_complete = build_weekly(missing_by_week)

    def run(**kwargs) -> str:
        return dg.materialize([signups, signups_complete], instance=instance, **kwargs).run_id

    def weeks(first: str, last: str) -> dict[str, dict[str, str]]:
        return {"tags": {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}}

    def results() -> list[tuple]:
        return [
            (r.partition, r.covered_partitions, r.passed, r.failure_count, r.run_id)
            for r in latest_check_results(instance)
        ]

    # a persistent sqlite instance keeps one event log per run, so storage ids restart in each run: the range run
    # (more events) has larger ids than the later single-week run, and "latest" must still be the later run
    with dg.instance_for_test() as instance:
        weeks_1_to_3 = run(**weeks(WEEK_1, WEEK_3))
        assert results() == [(None, (WEEK_1, WEEK_2, WEEK_3), False, 3, weeks_1_to_3)]

        missing_by_week[WEEK_2] = 0
        week_2 = run(partition_key=WEEK_2)
        assert results() == [(None, (WEEK_1, WEEK_3), False, 3, weeks_1_to_3), (WEEK_2, (WEEK_2,), True, 0, week_2)]

        missing_by_week[WEEK_1] = 1
        weeks_1_to_2 = run(**weeks(WEEK_1, WEEK_2))
        assert results() == [
            (None, (WEEK_1, WEEK_2), False, 1, weeks_1_to_2),
            (None, (WEEK_3,), False, 3, weeks_1_to_3),
        ]


@pytest.mark.parametrize(
    "make_instance", [dg.DagsterInstance.ephemeral, dg.instance_for_test], ids=["ephemeral", "temporary"]
)
def test_an_instance_without_runs_has_no_results(make_instance):
    with make_instance() as instance:
        assert latest_check_results(instance) == []
