"""Benchmark: online transactions -> gold.customer_product_purchases, three ways, on the same landing files.

  pipeline  the pipeline's own transforms, week by week, as the assets run them (read, parse, clean, count);
  dagster   the same as a real Dagster run over the whole partition range into a fresh warehouse (writes included);
  duckdb    one DuckDB SQL query computing the same table straight from the JSON files (the reference);
  pandas    the straightforward script: json.loads per line, explode baskets, groupby.
  end_to_end  what a user waits for: `custpipe run` (what `make run` runs) as its own process, over a landing folder
            holding only the weekly-count files, into a fresh warehouse and Dagster home: start-up, every step
            and check, the summary and the report; with the time of each step read back from the instance.

Each runs in its own process so its peak memory (max RSS) is its own. Prints wall time, peak memory, ratios
against DuckDB, and whether the tables agree. Usage (see the README):

  .venv/bin/python benchmarks/weekly_counts.py --scale medium            # 3M transactions
  .venv/bin/python benchmarks/weekly_counts.py --scale large --only dagster,duckdb
  .venv/bin/python benchmarks/weekly_counts.py --scale medium --end-to-end   # duckdb, pipeline, end_to_end; 3 rounds
"""

import argparse
import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from harness import ChildFailed, measure_in_child  # benchmarks/harness.py
from peak_memory import peak_mb  # benchmarks/peak_memory.py

WAYS = ("pipeline", "dagster", "duckdb", "pandas", "end_to_end")
COUNT_FILES = ("customers.csv", "products.csv", "transactions")  # the weekly-count sources, without the others
# The real exports end lines with \r\r\n: split on \n, strip the \r left on the last field.
REFERENCE_SQL = """
with customers as (
    select customer_id, any_value(try_cast(rtrim(loyalty_score, chr(13)) as double) order by customer_id) as loyalty_score
    from read_csv('{landing}/customers.csv', delim = ',', header = true, all_varchar = true, new_line = '\\n', strict_mode = false) group by customer_id
), products as (
    select product_id, any_value(rtrim(product_category, chr(13))) as product_category
    from read_csv('{landing}/products.csv', delim = ',', header = true, all_varchar = true, new_line = '\\n', strict_mode = false) group by product_id
), transactions as (
    select distinct customer_id, basket, date_of_purchase
    from read_json('{landing}/transactions/*/transactions.json', format = 'newline_delimited', ignore_errors = true,
                   columns = {{customer_id: 'VARCHAR', basket: 'STRUCT(product_id VARCHAR, price DOUBLE)[]',
                              date_of_purchase: 'VARCHAR'}})
), items as (
    select customer_id, unnest(basket) as item, try_strptime(date_of_purchase, '%Y-%m-%d %H:%M:%S') as purchased_at
    from transactions
)
select cast(date_trunc('week', purchased_at) as date) as week_start, customer_id, loyalty_score,
       item.product_id as product_id, product_category, count(*) as purchase_count
from items join customers using (customer_id) join products on products.product_id = item.product_id
where item.price > 0 and purchased_at is not null
group by all
"""


def _weeks(landing: Path) -> list[date]:
    days = sorted(date.fromisoformat(p.name[2:]) for p in (landing / "transactions").glob("d=*"))
    first = days[0] - timedelta(days=days[0].weekday())
    return [first + timedelta(days=7 * i) for i in range((days[-1] - first).days // 7 + 1)]


def run_pipeline(landing: Path, workdir: Path) -> dict:
    """The pipeline's transforms exactly as the weekly assets call them (reference tables in Polars, then the
    transactions' SQL over every week), in an in-memory DuckDB: the work without Dagster and the warehouse file."""
    import duckdb

    from custpipe_assets.purchases import reference, transactions

    customers, _ = reference.clean_customers(
        reference.read_reference_csv(landing, reference.CUSTOMERS_FILE, reference.CUSTOMER_COLUMNS)
    )
    products, _ = reference.clean_products(
        reference.read_reference_csv(landing, reference.PRODUCTS_FILE, reference.PRODUCT_COLUMNS)
    )
    connection = duckdb.connect()
    transactions.run_in(connection, landing, _weeks(landing), customers, products)
    rows, purchases = connection.execute("select count(*), sum(purchase_count) from counts").fetchone()
    return {"rows": rows, "purchases": int(purchases or 0)}


def run_dagster(landing: Path, workdir: Path) -> dict:
    """A real Dagster run of the transactions path (reference tables, then bronze -> silver -> gold for every
    week, with their checks) as one run over the whole partition range, into a fresh warehouse."""
    import dagster as dg

    from custpipe_assets.core.partitions import week_range_tags
    from custpipe_assets.core.settings import Settings
    from custpipe_assets.core.warehouse import Warehouse
    from custpipe_assets.definitions import build_definitions
    from custpipe_assets.purchases import assets

    warehouse = workdir / "bench_warehouse.duckdb"
    warehouse.unlink(missing_ok=True)
    weeks = _weeks(landing)
    definitions = build_definitions(Settings(landing_dir=landing, warehouse=warehouse, first_week=weeks[0]))
    selection = {
        assets.BRONZE_CUSTOMERS,
        assets.BRONZE_PRODUCTS,
        assets.SILVER_CUSTOMERS,
        assets.SILVER_PRODUCTS,
        assets.REFERENCE_QUARANTINE,
        assets.BRONZE_TRANSACTIONS,
        assets.TRANSACTION_LINES,
        assets.TRANSACTION_QUARANTINE,
        assets.CUSTOMER_PRODUCT_PURCHASES,
    }
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(asset_selection=selection)
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags=week_range_tags(weeks[0], weeks[-1]),
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
    if not result.success:
        raise SystemExit("the Dagster run failed")
    # counted in SQL: loading 64M gold rows into Python just to count them would be the benchmark's own peak
    counted = Warehouse(warehouse).query(
        "select count(*) as rows, sum(purchase_count) as purchases from gold.customer_product_purchases"
    )
    return {"rows": int(counted["rows"][0]), "purchases": int(counted["purchases"][0] or 0)}


def run_end_to_end(landing: Path, workdir: Path) -> dict:
    """`custpipe run` in a process of its own, as `make run` starts it; peak memory is that process's."""
    import os
    import resource
    import shutil

    run_dir = workdir / "end_to_end"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "landing").mkdir(parents=True)
    for name in COUNT_FILES:
        (run_dir / "landing" / name).symlink_to(landing / name)
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("CUSTPIPE_")},
        "DAGSTER_HOME": str(run_dir / "dagster_home"),
        "CUSTPIPE_LANDING_DIR": str(run_dir / "landing"),
        "CUSTPIPE_WAREHOUSE": str(run_dir / "warehouse.duckdb"),
        "CUSTPIPE_REPORTS_DIR": str(run_dir / "reports"),
        "CUSTPIPE_FIRST_WEEK": _weeks(landing)[0].isoformat(),
    }
    custpipe = Path(sys.executable).with_name("custpipe")
    completed = subprocess.run([str(custpipe), "run"], env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(
            f"custpipe run exited {completed.returncode}:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    steps, peaks = _steps(run_dir / "dagster_home")
    from custpipe_assets.core.warehouse import Warehouse

    counted = Warehouse(run_dir / "warehouse.duckdb").query(
        "select count(*) as rows, sum(purchase_count) as purchases from gold.customer_product_purchases"
    )
    return {
        "rows": int(counted["rows"][0]),
        "purchases": int(counted["purchases"][0] or 0),
        "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "step_seconds": steps,
        "step_peak_mb": peaks,
    }


def _steps(dagster_home: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of every step of every run recorded in the instance (from its step start and end events), and the
    peak memory a step recorded on its materializations (`peak_memory_mb`, the SQL steps)."""
    import os

    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs():
            started: dict[str, float] = {}
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                if event is None or event.step_key is None:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_START:
                    started[event.step_key] = record.timestamp
                elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                    seconds[event.step_key] = record.timestamp - started.get(event.step_key, record.timestamp)
                elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    peak = event.event_specific_data.materialization.metadata.get("peak_memory_mb")
                    if peak is not None:
                        peaks[event.step_key] = max(peaks.get(event.step_key, 0), peak.value)
    return seconds, peaks


def run_duckdb(landing: Path, workdir: Path) -> dict:
    import duckdb

    return _digest(duckdb.sql(REFERENCE_SQL.format(landing=landing)).pl())


def run_pandas(landing: Path, workdir: Path) -> dict:
    """What one would write first: json.loads every line, explode the baskets, groupby."""
    import pandas as pd
    import polars as pl

    records = []
    for path in sorted((landing / "transactions").glob("d=*/transactions.json")):
        with open(path, encoding="utf-8-sig") as handle:
            for line in handle:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    frame = pd.DataFrame.from_records(records).dropna(subset=["customer_id", "basket"])
    frame = frame[frame["basket"].map(lambda b: isinstance(b, list))]
    frame["key"] = (
        frame["customer_id"].astype(str) + frame["date_of_purchase"].astype(str) + frame["basket"].map(json.dumps)
    )
    frame = frame.drop_duplicates("key").explode("basket").dropna(subset=["basket"])
    items = pd.json_normalize(frame["basket"].tolist())
    frame = frame.reset_index(drop=True).join(items)
    frame["price"] = pd.to_numeric(frame["price"], errors="coerce")
    frame["purchased_at"] = pd.to_datetime(frame["date_of_purchase"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    frame = frame[(frame["price"] > 0) & frame["purchased_at"].notna()]
    customers = pd.read_csv(landing / "customers.csv", dtype=str).drop_duplicates("customer_id")
    customers["loyalty_score"] = pd.to_numeric(customers["loyalty_score"], errors="coerce")
    products = pd.read_csv(landing / "products.csv", dtype=str).drop_duplicates("product_id")
    frame = frame.merge(customers, on="customer_id").merge(
        products[["product_id", "product_category"]], on="product_id"
    )
    frame["week_start"] = (frame["purchased_at"] - pd.to_timedelta(frame["purchased_at"].dt.weekday, unit="D")).dt.date
    counts = frame.groupby(
        ["week_start", "customer_id", "loyalty_score", "product_id", "product_category"], dropna=False
    ).size()
    return _digest(pl.from_pandas(counts.rename("purchase_count").reset_index()))


def _digest(counts) -> dict:
    return {"rows": counts.height, "purchases": int(counts["purchase_count"].sum() or 0)}


def _child(way: str, landing: Path, workdir: Path) -> None:
    import duckdb  # noqa: F401  libraries load before the clock starts, for every way alike
    import pandas  # noqa: F401
    import polars  # noqa: F401

    import custpipe_assets.purchases.transactions  # noqa: F401

    started = time.perf_counter()
    digest = globals()[f"run_{way}"](landing, workdir)
    print(json.dumps({"way": way, "seconds": time.perf_counter() - started, "peak_mb": peak_mb(), **digest}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path(".bench"))
    parser.add_argument("--only", default=",".join(WAYS), help=f"comma-separated subset of {','.join(WAYS)}")
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="time `custpipe run` (as `make run`) against the query: --only duckdb,pipeline,end_to_end",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="run the ways this many times, interleaved, and compare each way's median round (default 1; 3 with "
        "--end-to-end: this machine's speed drifts by a third within minutes, and a way timed once rides the drift)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.end_to_end:
        args.only = "duckdb,pipeline,end_to_end"
    rounds = args.rounds or (3 if args.end_to_end else 1)
    landing = (args.workdir / f"{args.scale}-seed{args.seed}" / "landing").absolute()
    if args.child:
        _child(args.child, landing, landing.parent)
        return

    if not landing.exists():
        from custpipe_assets.sample.customers import generate_customers_landing

        print(f"generating the {args.scale} sample into {landing} ...", flush=True)
        started = time.perf_counter()
        generate_customers_landing(landing, seed=args.seed, scale=args.scale)
        print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)
    size_mb = sum(p.stat().st_size for p in (landing / "transactions").rglob("*.json")) / 1e6
    lines = sum(p.read_bytes().count(b"\n") for p in (landing / "transactions").rglob("*.json"))
    print(f"landing: {landing} ({size_mb:,.0f} MB of transaction JSON Lines, {lines:,} lines)")

    measured: dict[str, list[dict]] = {}
    arguments = ["--scale", args.scale, "--seed", str(args.seed), "--workdir", str(args.workdir)]
    for round_number in range(1, rounds + 1):
        for way in [w for w in args.only.split(",") if w]:
            try:
                result = measure_in_child(__file__, arguments, way, stderr_tail=2000)
            except ChildFailed as failure:
                print(failure)
                continue
            if "child_peak_mb" in result:  # the run's own process, not the benchmark's
                result["peak_mb"] = result["child_peak_mb"]
            measured.setdefault(way, []).append(result)
            label = f"round {round_number}: " if rounds > 1 else ""
            print(f"  {label}{way:<10} {result['seconds']:8.2f} s  {result['peak_mb']:9,.0f} MB", flush=True)
    # each way's median round (whole, so its rows, memory and step times belong together)
    results = {way: sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2] for way, runs in measured.items()}
    if rounds > 1:
        print(f"\neach way's median of {rounds} rounds:")

    reference = results.get("duckdb")
    print()
    print(
        f"{'way':<10}{'wall s':>10}{'peak MB':>10}{'x duckdb time':>15}{'x duckdb mem':>14}{'rows':>12}{'purchases':>12}"
    )
    for way, result in results.items():
        time_ratio = f"{result['seconds'] / reference['seconds']:.2f}" if reference else "-"
        mem_ratio = f"{result['peak_mb'] / reference['peak_mb']:.2f}" if reference else "-"
        print(
            f"{way:<10}{result['seconds']:>10.2f}{result['peak_mb']:>10,.0f}{time_ratio:>15}{mem_ratio:>14}"
            f"{result['rows']:>12,}{result['purchases']:>12,}"
        )
    if "pipeline" in results and "pandas" in results:
        print(f"\npipeline is {results['pandas']['seconds'] / results['pipeline']['seconds']:.1f}x faster than pandas")
    if reference and "pipeline" in results:
        print(
            f"pipeline compute / duckdb query: {results['pipeline']['seconds'] / reference['seconds']:.2f} (target <= 1.5)"
        )
    if reference and "end_to_end" in results:
        ratio = results["end_to_end"]["seconds"] / reference["seconds"]
        pipeline = f"{results['pipeline']['seconds'] / reference['seconds']:.2f}" if "pipeline" in results else "-"
        print(f"\nend to end (custpipe run) / duckdb query: {ratio:.2f} (target <= 4), pipeline only: {pipeline}")
        steps, peaks = results["end_to_end"]["step_seconds"], results["end_to_end"]["step_peak_mb"]
        accounted = sum(steps.values())
        print(
            f"where the time goes ({accounted:.1f} s in steps, {results['end_to_end']['seconds'] - accounted:.1f} s "
            "start-up, step launches, summary and report; peak memory where the step records it):"
        )
        for step, seconds in sorted(steps.items(), key=lambda item: -item[1])[:15]:
            peak = f"{peaks[step]:8,.0f} MB" if step in peaks else ""
            print(f"  {seconds:8.2f} s {peak:>11}  {step}")
    if "dagster" in results:
        print(
            f"dagster run peak memory: {results['dagster']['peak_mb'] / 1024:.2f} GB (target at --scale large: < 8 GB)"
        )


if __name__ == "__main__":
    main()
