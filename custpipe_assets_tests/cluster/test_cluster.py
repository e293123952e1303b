"""The same assets on the local cluster: Celery workers, the Dagster instance in PostgreSQL, a DuckLake warehouse.

Two weeks run at once (their steps spread over both workers), then one week is re-run twice at once (two writers on
one partition); the warehouse is compared with the independent oracle: no row lost, none duplicated.
"""

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from custpipe_assets.core.warehouse import Warehouse

pytestmark = pytest.mark.slow

WEEK_1, WEEK_2 = date(2018, 9, 3), date(2018, 9, 10)
RUN_TIMEOUT_S = 420


def launch_at_once(cluster, *weeks: date) -> list[subprocess.CompletedProcess]:
    """`custpipe cluster run` once per week, all started together, each its own run coordinator process."""
    environment = cluster.environment
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "custpipe_assets.cli",
                "cluster",
                "run",
                "--root",
                str(cluster.paths.root),
                "--domain",
                "purchases",
                "--week",
                week.isoformat(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **environment},
        )
        for week in weeks
    ]
    results = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, output))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def run_ids(results) -> list[str]:
    return [line.split()[1] for result in results for line in result.stdout.splitlines() if line.startswith("run ")]


def workers_of(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """The Celery workers (hostnames) that executed the run's steps, as the run's engine events record them."""
    names = set()
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.is_engine_event and event.engine_event_data:
            worker = event.engine_event_data.metadata.get("Celery worker")
            if worker is not None:
                names.add(worker.value)
    return names


def warehouse_of(cluster) -> Warehouse:
    environment = cluster.environment
    return Warehouse(environment["CUSTPIPE_WAREHOUSE"], data_path=environment["CUSTPIPE_DUCKLAKE_DATA_PATH"])


def gold_counts(warehouse: Warehouse) -> tuple[Counter, int]:
    gold = warehouse.read("gold.customer_product_purchases")
    counts = Counter(
        {
            (week, customer, product): count
            for week, customer, product, count in gold.select(
                "week_start", "customer_id", "product_id", "purchase_count"
            ).iter_rows()
        }
    )
    return counts, gold.height


def test_two_weeks_at_once_then_a_week_twice_match_the_oracle(cluster, expected_counts_of):
    results = launch_at_once(cluster, WEEK_1, WEEK_2)
    for result in results:
        assert result.returncode == 0, result.stdout[-4000:]
    with dg.DagsterInstance.from_config(str(cluster.paths.dagster_home)) as instance:
        ids = run_ids(results)
        assert len(ids) == 2
        for run_id in ids:
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        workers = set().union(*(workers_of(instance, run_id) for run_id in ids))
        assert workers == set(cluster.worker_names()), f"steps ran on {workers}"
        records = [instance.get_run_record_by_id(run_id) for run_id in ids]
        first_end = min(record.end_time for record in records)
        assert max(record.start_time for record in records) < first_end, "the two runs did not overlap"

    # the re-run of week 1, started twice at once: both replace the same partition
    reruns = launch_at_once(cluster, WEEK_1, WEEK_1)
    for result in reruns:
        assert result.returncode == 0, result.stdout[-4000:]

    expected = Counter(
        {
            key: count
            for key, count in expected_counts_of(Path(cluster.environment["CUSTPIPE_LANDING_DIR"])).items()
            if key[0] in (WEEK_1, WEEK_2)
        }
    )
    warehouse = warehouse_of(cluster)
    counts, rows = gold_counts(warehouse)
    assert rows == len(counts), "a (week, customer, product) row is duplicated"
    assert counts == expected
    lines = warehouse.read("silver.transaction_lines")
    assert lines.height == lines.select("source_file", "line_number", "basket_position").n_unique()
    assert lines.height == sum(expected.values())
    bronze = warehouse.read("bronze.transactions")
    assert bronze.height == bronze.select("source_file", "line_number").n_unique()
    assert set(bronze["week_start"].unique()) == {WEEK_1, WEEK_2}


def test_writers_of_one_empty_week_never_duplicate_it(cluster):
    """Four writers replace the same, empty week of a new table at once, three times: the lock serializes them and
    the week ends with exactly one writer's rows."""
    warehouse = warehouse_of(cluster)
    frame = pl.DataFrame({"customer_id": [f"C{n}" for n in range(500)], "value": list(range(500))})
    errors = []

    def write() -> None:
        try:
            Warehouse(warehouse.path, data_path=warehouse.lake.data_path).replace_week(
                "silver.lock_probe", WEEK_1, frame
            )
        except Exception as error:
            errors.append(error)

    for _ in range(3):
        threads = [threading.Thread(target=write) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert warehouse.query("select count(*) as n from silver.lock_probe")["n"][0] == 500
