"""Benchmark: product-view ingestion throughput against DuckDB's read_json, and CTR API latency over loopback.

Ingestion, each in its own process (so its peak memory is its own), best of --repeats runs, on the same files:
  parse          our bronze parse alone (`transforms.parse_product_view_files`): one row per event, ids exact;
  pipeline       bronze parse + silver views + gold per minute, week by week as the assets run them, with the
                 orders and items (parse + silver purchases) the gold table needs;
  duckdb         DuckDB `read_json` of the same files, one row per batch (the reference);
  duckdb-unnest  the same unnested to one row per event, which is what our parse returns.
MB/s is the size of the view files over the wall time. The files are those the parse does not reject whole
(`read_json` aborts on the generator's truncated file), chosen as `benchmarks/view_parse_throughput.py` chooses them.

API: the gold table over every landed file is published as the serving snapshot (`api.publish_serving_snapshot`),
the API runs in one process (`api.serve`, what `custpipe api` runs: uvicorn on 127.0.0.1, a free port), and a
second process sends GET /ctr for one local day at 10-minute buckets through one keep-alive httpx client, cycling
no filter / platform only / product + platform. It prints median, p90 and p99 latency per kind and overall, and
requests per second. Every response must be a 200; the first few of each kind must be non-empty arrays of the
expected length with some non-null CTR, else the run reports the failures and exits non-zero. A kind the API
refuses as too many rows (its documented MAX_RESULT_ROWS limit: buckets x platforms x products) is left out of the
timed mix and reported with the API's message; at the default volume that is the unfiltered query.
The day's ten most viewed products are the ones asked for; at most --requests (3000) are timed, in at most
--max-seconds (300).

The landing files are generated once (`generate.generate_product_views_landing`, seeded) under `.bench/ctr/`
and reused. The default, 200k product views a day over two days, gives ~210 MB of view files, 5-45 MB per
platform and UTC day.

  .venv/bin/python benchmarks/ctr_api.py
  .venv/bin/python benchmarks/ctr_api.py --views-per-day 20000 --requests 300   # a quick run
  .venv/bin/python benchmarks/ctr_api.py --only parse,duckdb --skip-api
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import numpy as np
import polars as pl
from harness import ChildFailed, measure_in_child  # benchmarks/harness.py
from peak_memory import peak_mb, vm_hwm_mb  # benchmarks/peak_memory.py

from custpipe_assets.product_views import api, transforms
from custpipe_assets.product_views.view_files import scan_view_file, source_name
from custpipe_assets.sample.product_views import generate_product_views_landing

INGESTION = ("parse", "pipeline", "duckdb", "duckdb-unnest")
REFERENCE = "duckdb"
START = date(2018, 9, 4)  # a Tuesday: two local days and their UTC spill-over stay inside one weekly partition
API_DAY = datetime(
    START.year, START.month, START.day
)  # the one-day range the API is asked for (local time), fully covered by views
AGGREGATION_MINUTES = 10
BUCKETS = 24 * 60 // AGGREGATION_MINUTES
CHECKED_PER_KIND = 5  # responses of each kind whose body is verified (all statuses are always checked)
QUERY_PRODUCTS = 10  # product + platform queries cycle through the day's most viewed products
READ_JSON = "read_json($paths, format='array', ignore_errors=true)"  # as in benchmarks/view_parse_throughput.py


class Paths:
    """Where one generated data set and everything derived from it lives under the work folder."""

    def __init__(self, workdir: Path, seed: int, days: int, views_per_day: int) -> None:
        self.root = (workdir / f"seed{seed}-days{days}-views{views_per_day}").absolute()
        self.landing = self.root / "landing"
        self.amaro = self.landing / "amaro"
        self.views = self.amaro / "product_views"
        self.readable_files = self.root / "readable_files.json"
        self.snapshot = self.root / "serving" / "ctr.parquet"
        self.server_log = self.root / "api_server.log"

    def files(self) -> list[Path]:
        return [Path(name) for name in json.loads(self.readable_files.read_text())]


# -- the pipeline's transforms, as the assets run them ----------------------------------------------------------------


def gold_per_minute(files: list[Path], paths: Paths) -> tuple[pl.DataFrame, pl.DataFrame]:
    """gold.ctr_per_minute over `files` (by the UTC weeks of their events, as the assets run) and the bronze rejects."""
    orders = transforms.parse_orders_csv(paths.amaro / "orders.csv")
    items = transforms.parse_order_items_csv(paths.amaro / "order_items.csv")
    purchases = transforms.build_silver_purchases(orders.rows, items.rows).purchases
    by_week: dict[date, list[Path]] = {}
    for path in files:
        for week in scan_view_file(path, paths.views).weeks:
            by_week.setdefault(week, []).append(path)
    gold, rejects = [], []
    for week, week_files in sorted(by_week.items()):
        parsed = transforms.parse_product_view_files(week_files, paths.views, week=week)
        views = transforms.build_silver_product_views(parsed.rows).views
        start = datetime(week.year, week.month, week.day)
        in_week = purchases.filter(
            pl.col("event_time_utc")
            .dt.convert_time_zone("UTC")
            .dt.replace_time_zone(None)
            .is_between(start, start + timedelta(days=7), closed="left")
        )
        gold.append(transforms.build_gold_ctr_per_minute(views, in_week))
        rejects.append(parsed.quarantine)
    return pl.concat(gold), pl.concat(rejects)


def prepare(paths: Paths, seed: int, days: int, views_per_day: int) -> None:
    """Generate the landing files, list the readable ones and publish the serving snapshot, each once."""
    if not paths.amaro.exists():
        print(f"generating {days} day(s) x {views_per_day:,} product views into {paths.landing} ...", flush=True)
        started = time.perf_counter()
        partial = paths.landing.with_name("landing.partial")
        generate_product_views_landing(
            partial, seed=seed, start=START, days=days, views_per_day=views_per_day, overwrite=True
        )
        partial.rename(paths.landing)
        print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    if not (paths.readable_files.exists() and paths.snapshot.exists()):
        every_file = transforms.list_product_view_files(paths.views)
        gold, rejects = gold_per_minute(every_file, paths)
        rejected = set(
            rejects.filter(pl.col("line_number").is_null() & pl.col("position").is_null())["source_file"].to_list()
        )
        readable = [str(path) for path in every_file if source_name(path, paths.views.parent.parent) not in rejected]
        api.publish_serving_snapshot(gold, paths.snapshot)
        paths.readable_files.write_text(json.dumps(readable, indent=1) + "\n")


# -- ingestion measurements (each in its own process) ---------------------------------------------------------------


def _read_json(sql: str, files: list[Path]) -> int:
    with duckdb.connect() as connection:
        return connection.execute(sql, {"paths": [str(path) for path in files]}).pl().height


INGESTION_RUNS: dict[str, Callable[[list[Path], Paths], int]] = {
    "parse": lambda files, paths: transforms.parse_product_view_files(files, paths.views).rows.height,
    "pipeline": lambda files, paths: gold_per_minute(files, paths)[0].height,
    "duckdb": lambda files, paths: _read_json(f"SELECT * FROM {READ_JSON}", files),
    "duckdb-unnest": lambda files, paths: _read_json(
        f"SELECT unnest(events, recursive := true) FROM {READ_JSON}", files
    ),
}


def _ingestion_child(way: str, paths: Paths, repeats: int) -> None:
    files = paths.files()
    timings, rows = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        rows = INGESTION_RUNS[way](files, paths)
        timings.append(time.perf_counter() - started)
    print(json.dumps({"way": way, "seconds": min(timings), "timings": timings, "rows": rows, "peak_mb": peak_mb()}))


# -- the API: one server process, one client process ----------------------------------------------------------------


KINDS = ("no filter", "platform", "product+platform")


def _queries(requests: int, products: list[str], kinds: tuple[str, ...] = KINDS) -> list[tuple[str, dict]]:
    """(kind, query parameters) for one local day at 10-minute buckets, cycling through `kinds`, platforms, products."""
    day = {
        "startTimestamp": f"{API_DAY:%Y-%m-%d %H:%M:%S}",
        "endTimestamp": f"{API_DAY + timedelta(days=1):%Y-%m-%d %H:%M:%S}",
        "aggregation": AGGREGATION_MINUTES,
    }
    platforms = sorted(transforms.VIEW_PLATFORMS)
    queries = []
    for number in range(requests):
        round_number = number // len(kinds)
        platform, product = platforms[round_number % len(platforms)], products[round_number % len(products)]
        kind = kinds[number % len(kinds)]
        filters = {
            "no filter": {},
            "platform": {"platform": platform},
            "product+platform": {"product": product, "platform": platform},
        }[kind]
        queries.append((kind, {**day, **filters}))
    return queries


def _refused_for_size(response: httpx.Response) -> str | None:
    """The API's message when it refuses a query as too many rows (its documented MAX_RESULT_ROWS limit), else None."""
    if response.status_code != 422:
        return None
    problems = response.json().get("errors", [])
    if len(problems) == 1 and problems[0]["parameter"] == "aggregation" and "above the limit" in problems[0]["message"]:
        return problems[0]["message"]
    return None


def _problem(kind: str, parameters: dict, body: object) -> str | None:
    """Why a 200 body is not what the query asks for (None when it is): non-empty, the day's buckets, the filters
    respected, whole series, some CTR."""
    if not isinstance(body, list) or not body:
        return "empty or not an array"
    day_starts = {
        f"{API_DAY + timedelta(minutes=AGGREGATION_MINUTES * bucket):%Y-%m-%d %H:%M:%S}" for bucket in range(BUCKETS)
    }
    if {point.get("startTimestamp") for point in body} != day_starts:
        return f"bucket starts are not the day's {BUCKETS} {AGGREGATION_MINUTES}-minute starts"
    for field in ("platform", "product"):
        if field in parameters and any(point.get(field) != parameters[field] for point in body):
            return f"a point of another {field} than {parameters[field]!r}"
    platforms = 1 if "platform" in parameters else len(transforms.VIEW_PLATFORMS)
    series_length = BUCKETS * platforms
    if kind == "product+platform" and len(body) != series_length:
        return f"{len(body)} points, expected {series_length}"
    if len(body) % series_length:
        return f"{len(body)} points, not a whole number of {series_length}-point series"
    if all(point.get("ctr") is None for point in body):
        return "no bucket has a CTR (no views at all)"
    return None


def _client_child(port: int, requests: int, max_seconds: float, products: list[str]) -> None:
    latencies: dict[str, list[float]] = {}
    response_bytes: dict[str, list[int]] = {}
    statuses: dict[str, int] = {}
    problems: list[str] = []
    checked: dict[str, int] = {}
    refused: dict[str, str] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60.0) as client:
        for kind, parameters in _queries(len(KINDS), products):  # warm-up (loads the snapshot), not counted
            response = client.get("/ctr", params=parameters)
            if (message := _refused_for_size(response)) is not None:
                refused[kind] = message  # the row limit, at this volume: timed without this kind
            else:
                response.raise_for_status()
        accepted = tuple(kind for kind in KINDS if kind not in refused)
        if not accepted:
            raise SystemExit(f"the API refuses every kind of query as too large: {refused}")
        queries = _queries(requests, products, accepted)
        started = time.perf_counter()
        for kind, parameters in queries:
            if time.perf_counter() - started > max_seconds:
                break
            sent = time.perf_counter()
            response = client.get("/ctr", params=parameters)
            latencies.setdefault(kind, []).append(time.perf_counter() - sent)
            response_bytes.setdefault(kind, []).append(len(response.content))
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            if response.status_code != 200:
                problems.append(f"{kind} {parameters}: HTTP {response.status_code} {response.text[:200]}")
            elif checked.get(kind, 0) < CHECKED_PER_KIND:
                checked[kind] = checked.get(kind, 0) + 1
                problem = _problem(kind, parameters, response.json())
                if problem:
                    problems.append(f"{kind} {parameters}: {problem}")
        elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "latencies": latencies,
                "bytes": response_bytes,
                "statuses": statuses,
                "refused": refused,
                "checked": checked,
                "problems": problems[:20],
                "peak_mb": peak_mb(),
            }
        )
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(server: subprocess.Popen, port: int, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the API server exited with {server.returncode}:\n{log.read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"the API server did not listen on port {port} within {timeout_s:.0f} s")


def _most_viewed_products(paths: Paths) -> list[str]:
    day = pl.read_parquet(paths.snapshot).filter(
        pl.col("minute_local").is_between(API_DAY, API_DAY + timedelta(days=1), closed="left")
    )
    totals = day.group_by("product").agg(pl.col("views").sum()).sort(["views", "product"], descending=[True, False])
    return totals["product"].head(QUERY_PRODUCTS).to_list()


def measure_api(paths: Paths, args: argparse.Namespace) -> dict:
    """Start the server, run the client in its own process, stop the server; the client's figures + server memory."""
    port = _free_port()
    products = _most_viewed_products(paths)
    with paths.server_log.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, __file__, *_data_arguments(args), "--child", "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(server, port, paths.server_log)
        completed = subprocess.run(
            [
                sys.executable,
                __file__,
                *_data_arguments(args),
                "--child",
                "client",
                "--port",
                str(port),
                "--requests",
                str(args.requests),
                "--max-seconds",
                str(args.max_seconds),
                "--products",
                ",".join(products),
            ],
            capture_output=True,
            text=True,
        )
        server_peak = vm_hwm_mb(server.pid)  # read before it is stopped
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if completed.returncode != 0:
        raise SystemExit(f"the API client failed:\n{completed.stderr[-3000:]}")
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "server_peak_mb": server_peak, "port": port}


def _print_api(result: dict) -> None:
    def row(label: str, seconds: list[float], sizes: list[int]) -> str:
        milliseconds = np.array(seconds) * 1000
        median, p90, p99 = np.percentile(milliseconds, [50, 90, 99])
        return (
            f"{label:<18}{len(seconds):>9,}{median:>10.1f}{p90:>10.1f}{p99:>10.1f}{milliseconds.max():>10.1f}"
            f"{np.mean(sizes) / 1000:>12,.1f}"
        )

    every_latency = [value for values in result["latencies"].values() for value in values]
    every_size = [value for values in result["bytes"].values() for value in values]
    print(
        f"\nGET /ctr, one local day ({API_DAY:%Y-%m-%d}) at {AGGREGATION_MINUTES}-minute buckets, one keep-alive "
        f"client process -> one uvicorn process on 127.0.0.1:{result['port']}"
    )
    print(f"{'kind':<18}{'requests':>9}{'median ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}{'mean KB':>12}")
    for kind, seconds in result["latencies"].items():
        print(row(kind, seconds, result["bytes"][kind]))
    print(row("all", every_latency, every_size))
    server_peak = f"{result['server_peak_mb']:,.0f} MB" if result["server_peak_mb"] else "unknown"
    print(
        f"{len(every_latency):,} requests in {result['elapsed']:.1f} s = {len(every_latency) / result['elapsed']:.1f} "
        f"requests/s; statuses {result['statuses']}; bodies verified per kind {result['checked']}; "
        f"server peak {server_peak}, client peak {result['peak_mb']:,.0f} MB"
    )
    for kind, message in result["refused"].items():
        print(f"{kind}: not timed, the API refuses it at this volume (HTTP 422, its MAX_RESULT_ROWS limit): {message}")
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")


# -- main ---------------------------------------------------------------------------------------------------------------


def _data_arguments(args: argparse.Namespace) -> list[str]:
    return [
        "--seed",
        str(args.seed),
        "--days",
        str(args.days),
        "--views-per-day",
        str(args.views_per_day),
        "--workdir",
        str(args.workdir),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--views-per-day", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path, default=Path(".bench/ctr"))
    parser.add_argument("--repeats", type=int, default=3, help="ingestion runs per way; the best counts")
    parser.add_argument("--only", default=",".join(INGESTION), help=f"comma-separated subset of {','.join(INGESTION)}")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--requests", type=int, default=3000, help="at most this many timed API requests ...")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="... or as many as fit in this time")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--products", help=argparse.SUPPRESS)
    args = parser.parse_args()
    paths = Paths(args.workdir, args.seed, args.days, args.views_per_day)
    if args.child == "serve":
        api.serve(paths.snapshot, host="127.0.0.1", port=args.port)
        return
    if args.child == "client":
        _client_child(args.port, args.requests, args.max_seconds, args.products.split(","))
        return
    if args.child:
        _ingestion_child(args.child, paths, args.repeats)
        return

    prepare(paths, args.seed, args.days, args.views_per_day)
    files = paths.files()
    every_file = transforms.list_product_view_files(paths.views)
    megabytes = sum(os.path.getsize(path) for path in files) / 1e6
    per_platform_day: dict[tuple[str, str], int] = {}
    for path in files:
        key = (path.parent.name, path.name[:10])
        per_platform_day[key] = per_platform_day.get(key, 0) + path.stat().st_size
    sizes = sorted(per_platform_day.values())
    orders_mb = sum((paths.amaro / name).stat().st_size for name in ("orders.csv", "order_items.csv")) / 1e6
    print(
        f"landing: {paths.landing}\n  {len(files)} of {len(every_file)} view files ({len(every_file) - len(files)} "
        f"rejected whole by the parse), {megabytes:,.1f} MB; per platform and UTC day {sizes[0] / 1e6:.1f}-"
        f"{sizes[-1] / 1e6:.1f} MB; orders + items CSV {orders_mb:.1f} MB (read by `pipeline` only)"
    )

    results = {}
    for way in [w for w in args.only.split(",") if w]:
        if way not in INGESTION:
            parser.error(f"unknown way {way!r}; choose from {', '.join(INGESTION)}")
        try:
            results[way] = measure_in_child(__file__, [*_data_arguments(args), "--repeats", str(args.repeats)], way)
        except ChildFailed as failure:
            print(failure)
            continue
        timings = ", ".join(f"{seconds:.2f}" for seconds in results[way]["timings"])
        print(
            f"  {way:<14} best {results[way]['seconds']:7.2f} s of [{timings}]  {results[way]['peak_mb']:8,.0f} MB",
            flush=True,
        )

    if results:
        reference = results.get(REFERENCE)
        print(f"\n{'way':<15}{'best s':>8}{'MB/s':>9}{'peak MB':>9}{'rows':>12}{'x duckdb MB/s':>15}")
        for way, result in results.items():
            ratio = f"{reference['seconds'] / result['seconds']:.2f}" if reference else "-"
            print(
                f"{way:<15}{result['seconds']:>8.2f}{megabytes / result['seconds']:>9.1f}{result['peak_mb']:>9,.0f}"
                f"{result['rows']:>12,}{ratio:>15}"
            )
        print(
            "(x duckdb MB/s: the way's throughput over read_json's; rows: events for parse and duckdb-unnest, "
            "batches for duckdb, gold minute rows for pipeline)"
        )
        if "parse" in results and "duckdb-unnest" in results:
            ratio = results["duckdb-unnest"]["seconds"] / results["parse"]["seconds"]
            print(f"parse vs read_json + unnest, both one row per event: {ratio:.2f}x its throughput")

    if not args.skip_api:
        api_result = measure_api(paths, args)
        _print_api(api_result)
        if api_result["problems"] or set(api_result["statuses"]) != {"200"}:
            raise SystemExit("the API answered with errors or unexpected bodies: the latencies above are not valid")


if __name__ == "__main__":
    main()
