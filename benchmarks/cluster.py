"""Benchmark: a history backfill of the purchases domain, embedded (one process, the DuckDB file) vs the local
cluster (two Celery workers, the instance in PostgreSQL, a DuckLake warehouse), on the same landing files.

  embedded  `custpipe run --domain purchases`: one run over every week, its steps in the run's process, into
            a DuckDB file (the default), and the same into a DuckLake (what the warehouse format costs alone);
  cluster   `custpipe cluster run`: the same weeks as one run, and split into two halves launched at once (one run
            each), their steps on two Celery workers, into a DuckLake (catalog in PostgreSQL, Parquet files on disk).

Every way must write the same gold table (rows and purchases compared). Each cluster way gets a fresh cluster; its
start-up is timed apart. Usage:

  .venv/bin/python benchmarks/cluster.py                         # 12 weeks, 700k transactions (medium's rate)
  .venv/bin/python benchmarks/cluster.py --weeks 8 --transactions 200000
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from harness import settings_in  # benchmarks/harness.py

FIRST_WEEK = date(2018, 9, 3)
GOLD_SQL = "select count(*) as rows, sum(purchase_count) as purchases from gold.customer_product_purchases"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def generate(landing: Path, weeks: int, transactions: int, customers: int) -> None:
    from custpipe_assets.sample.customers import Scale, generate_customers_landing

    scale = Scale(customers=customers, products=500, weeks=weeks, transactions=transactions)
    generate_customers_landing(landing, seed=7, scale=scale, first_week=FIRST_WEEK)


def run_embedded(root: Path, landing: Path, warehouse: str | Path, data_path: str | None = None) -> tuple[float, dict]:
    """`custpipe run --domain purchases`: one run over every week, steps in this process."""
    import dagster as dg

    from custpipe_assets.core.warehouse import Warehouse
    from custpipe_assets.run import run_everything

    settings = settings_in(root, landing, warehouse, FIRST_WEEK, ducklake_data_path=data_path)
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        summary = run_everything(settings, instance=instance, domains=["purchases"], log=lambda *_: None)
        elapsed = time.perf_counter() - started
    if not summary.success:
        raise SystemExit("the embedded run failed")
    return elapsed, Warehouse(settings.warehouse, data_path=data_path).query(GOLD_SQL).row(0, named=True)


def run_cluster(root: Path, landing: Path, weeks: int, workers: int, runs: int) -> dict:
    """A fresh cluster; the weeks split into `runs` consecutive ranges launched at once; then, with the same
    cluster's PostgreSQL, the embedded run into a DuckLake of its own (`embedded_lake`) when `runs` is 1."""
    from custpipe_assets.cluster.commands import down, up
    from custpipe_assets.cluster.processes import connect_postgres
    from custpipe_assets.core.warehouse import Warehouse

    settings = settings_in(root, landing, root / "unused.duckdb", FIRST_WEEK)
    cluster_root = root / f"cluster_{runs}"
    figures = {}
    started = time.perf_counter()
    try:
        local = up(
            cluster_root,
            settings=settings,
            workers=workers,
            postgres_port=free_port(),
            redis_port=free_port(),
            log=lambda *_: None,
        )
        figures["up_s"] = time.perf_counter() - started
        all_weeks = [FIRST_WEEK + timedelta(days=7 * number) for number in range(weeks)]
        size = -(-len(all_weeks) // runs)
        ranges = [all_weeks[start : start + size] for start in range(0, len(all_weeks), size)]
        environment = {**os.environ, **local.environment}
        command = [sys.executable, "-m", "custpipe_assets.cli", "cluster", "run", "--root", str(cluster_root)]
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [*command, "--domain", "purchases", "--week", part[0].isoformat(), "--week", part[-1].isoformat()],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for part in ranges
        ]
        outputs = [process.communicate()[0] for process in processes]
        figures["backfill_s"] = time.perf_counter() - started
        for process, output in zip(processes, outputs, strict=True):
            if process.returncode:
                raise SystemExit(f"a cluster run failed:\n{output[-3000:]}")
        lake = local.environment
        gold = Warehouse(lake["CUSTPIPE_WAREHOUSE"], data_path=lake["CUSTPIPE_DUCKLAKE_DATA_PATH"]).query(GOLD_SQL)
        figures["gold"] = gold.row(0, named=True)
        if runs == 1:
            with connect_postgres(local.endpoints, "postgres") as connection, connection.cursor() as cursor:
                cursor.execute("create database embedded_lake")
            target = f"ducklake:postgres:{local.endpoints.libpq('embedded_lake')}"
            figures["embedded_lake_s"], figures["embedded_lake_gold"] = run_embedded(
                root, landing, target, str(root / "embedded_lake")
            )
        return figures
    finally:
        down(cluster_root, log=lambda *_: None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--transactions", type=int, default=700_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    from custpipe_assets.cluster.processes import missing_services

    missing = missing_services()
    if missing:
        raise SystemExit(f"the cluster needs {', '.join(missing)} (make services)")
    root = Path(tempfile.mkdtemp(prefix="custpipe-bench-cluster-", dir="/tmp"))
    root.chmod(0o755)  # the postgres user reaches its data folder through it
    landing = root / "landing"
    started = time.perf_counter()
    generate(landing, args.weeks, args.transactions, args.customers)
    lines = sum(1 for path in landing.glob("transactions/d=*/transactions.json") for _ in path.open("rb"))
    print(
        f"landing: {args.weeks} weeks, {lines:,} transaction lines (generated in {time.perf_counter() - started:.1f} s)"
    )

    embedded_s, embedded_gold = run_embedded(root, landing, root / "embedded.duckdb")
    one_run = run_cluster(root, landing, args.weeks, args.workers, runs=1)
    two_runs = run_cluster(root, landing, args.weeks, args.workers, runs=2)
    subprocess.run(["rm", "-rf", str(root)], check=False)

    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'way':<56} {'wall s':>8} {'x embedded':>11} {'gold rows':>11} {'purchases':>11}")
    ways = [
        ("embedded: 1 run, steps in-process, DuckDB file", embedded_s, embedded_gold),
        ("embedded: 1 run, steps in-process, DuckLake", one_run["embedded_lake_s"], one_run["embedded_lake_gold"]),
        (f"cluster: 1 run, {args.workers} Celery workers, DuckLake", one_run["backfill_s"], one_run["gold"]),
        (f"cluster: 2 runs at once, {args.workers} Celery workers, DuckLake", two_runs["backfill_s"], two_runs["gold"]),
    ]
    for label, seconds, gold in ways:
        print(f"{label:<56} {seconds:>8.1f} {seconds / embedded_s:>11.2f} {gold['rows']:>11,} {gold['purchases']:>11,}")
    print(f"{'cluster start-up (initdb, servers, workers)':<56} {one_run['up_s']:>8.1f}")
    same = all(gold == embedded_gold for _, _, gold in ways)
    print(f"same gold table every way: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
