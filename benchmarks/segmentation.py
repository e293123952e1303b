"""Benchmark: customer features, segments and metrics at 1M customers, and what one weekly update costs.

  full      features + segments + metrics from the existing 104 weeks of silver.customer_weekly_rollups, as the
            assets compute them: aggregate in DuckDB (`aggregate_rollups_sql`), `customer_features`,
            `fit_segments`, `assign_segments`, `segment_metrics`, and the three gold tables written (target: < 60 s
            at 1M customers on 2 cores);
  week-52   one weekly update over 52 weeks of history: the new week's rollup from its silver lines and matched
            store purchases (`weekly_rollup`), written with `Warehouse.replace_week`, then features + segments +
            metrics recomputed and written;
  week-104  the same update over 104 weeks of history. The ratio week-104 / week-52 says whether an update's cost
            grows with the length of the history (target: about 1).

The inputs are synthetic and deterministic (numpy seed), built once under `.bench/segmentation/` and reused:
the customers (ids, loyalty scores), their profiles (age, income, gender, joined_at; a few customers have none),
and 105 weeks of silver lines and store purchases at the large-scale weekly volume (per 1M customers: ~290k online
lines, ~70k store purchases). Buyers are drawn each week in proportion to a heavy-tailed per-customer propensity,
among customers who have joined and not lapsed, so 15-20% of customers buy in a given week. Weeks 1-104 are rolled
up with `weekly_rollup` and written week by week (`Warehouse.replace_weeks`), then copied in week order into two
warehouses, the last 52 weeks and all 104 (why copied: see `build_inputs`); week 105 is the update.
Building the 1M inputs takes a few minutes the first time.

Each measurement runs in its own process, on a scratch copy of the cached warehouse (copied before the clock
starts), so its peak memory (max RSS) is its own and the cache stays as built. `--repeats` rounds of all the
measurements run one after the other and each one's fastest run is shown (the machine may be shared). Reading the
profiles, customers and the new week's lines from Parquet is timed (the assets read them from the warehouse);
imports are not. Prints wall time, peak memory and the time of each stage.

  .venv/bin/python benchmarks/segmentation.py                                  # 1M customers, 3 rounds
  .venv/bin/python benchmarks/segmentation.py --customers 100000 --repeats 1   # a quick run
  .venv/bin/python benchmarks/segmentation.py --only week-52,week-104
"""

import argparse
import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from harness import ChildFailed, measure_in_child  # benchmarks/harness.py
from peak_memory import peak_mb  # benchmarks/peak_memory.py

from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.purchases.transactions import LINES_SCHEMA
from custpipe_assets.segmentation import features, segments
from custpipe_assets.segmentation.store_purchases import MATCHED_SCHEMA

MEASUREMENTS = ("full", "week-52", "week-104")
ROLLUPS_TABLE = "silver.customer_weekly_rollups"
HISTORY_START = date(2018, 9, 3)  # the project's default first weekly partition (a Monday)
HISTORY_WEEKS = 104
NEW_WEEK = HISTORY_START + timedelta(weeks=HISTORY_WEEKS)
ONLINE_LINES_PER_CUSTOMER_WEEK = 0.29  # 290k basket lines a week per 1M customers (the large-scale volume)
STORE_PURCHASES_PER_CUSTOMER_WEEK = 0.07  # 70k store purchases a week per 1M customers
BASKET_SIZES = (1, 2, 3, 4, 5)
BASKET_SIZE_WEIGHTS = (0.35, 0.30, 0.20, 0.10, 0.05)
LAPSING_SHARE = 0.25  # customers who stop buying at some point (the dormant segment's raw material)
N_CLUSTERS, RANDOM_STATE = 4, 42  # the launchpad defaults of SegmentationConfig
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
STAGE_ORDER = ("read inputs", "rollup", "write week", "aggregate", "features", "fit", "assign", "metrics", "write gold")


# -- synthetic inputs -----------------------------------------------------------------------------------------------


class Population:
    """Every customer's ids, dates and buying habits, drawn from the seed (the same customers for every week)."""

    def __init__(self, customers: int, seed: int) -> None:
        rng = np.random.default_rng([seed, 0])
        self.size = customers
        self.width = len(str(customers))
        new_week_day = NEW_WEEK.toordinal()
        # joined over the four years before the update week, so about half joined before the history starts
        self.joined_day = new_week_day - rng.integers(0, 4 * 365, customers)
        lapses = rng.random(customers) < LAPSING_SHARE
        lapse_day = self.joined_day + (rng.random(customers) * (new_week_day - self.joined_day)).astype(np.int64)
        self.lapse_day = np.where(lapses, lapse_day, np.iinfo(np.int64).max)
        self.propensity = rng.lognormal(0.0, 1.0, customers)
        self.store_affinity = rng.beta(1.2, 2.5, customers)
        self.item_price_scale = rng.lognormal(np.log(25.0), 0.5, customers)
        self.age = np.clip(rng.normal(42, 14, customers), 18, 90).astype(np.int64)
        self.income = np.round(rng.lognormal(np.log(42_000), 0.5, customers), 2)
        self.gender_female = (rng.random(customers) < 0.52).astype(np.int8)
        self.has_profile = rng.random(customers) >= 0.02
        self.loyalty_score = np.round(rng.uniform(0, 10, customers), 1)
        self.loyalty_missing = rng.random(customers) < 0.01

    def ids(self, indices: np.ndarray) -> pl.Series:
        """`C0000001`-style ids of customer indices (0-based), zero-padded so they sort like the indices."""
        return ("C" + pl.Series(indices + 1).cast(pl.String).str.zfill(self.width)).alias("customer_id")

    def profiles(self) -> pl.DataFrame:
        """The silver.customer_profiles columns `customer_features` reads, for the customers who have a profile."""
        rows = np.flatnonzero(self.has_profile)
        return pl.DataFrame(
            {
                "customer_id": self.ids(rows),
                "age": self.age[rows],
                "income": self.income[rows],
                "gender_female": self.gender_female[rows],
                "joined_at": pl.Series(self.joined_day[rows] - EPOCH_ORDINAL).cast(pl.Date),
            }
        )

    def customers(self) -> pl.DataFrame:
        """silver.customers' id and loyalty score (null where the landed score was not a number)."""
        return pl.DataFrame(
            {
                "customer_id": self.ids(np.arange(self.size)),
                "loyalty_score": pl.Series(self.loyalty_score).set(pl.Series(self.loyalty_missing), None),
            }
        )

    def week(self, week_index: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """One week's silver.transaction_lines and silver.store_purchases (matched), drawn from its own seed."""
        rng = np.random.default_rng([seed, 1 + week_index])
        week_start = HISTORY_START + timedelta(weeks=week_index)
        first_day = week_start.toordinal()
        buying = (self.joined_day <= first_day + 6) & (self.lapse_day > first_day)
        online_weight = self.propensity * (1 - self.store_affinity) * buying
        store_weight = self.propensity * self.store_affinity * buying
        mean_basket = float(np.dot(BASKET_SIZES, BASKET_SIZE_WEIGHTS))
        transactions = round(self.size * ONLINE_LINES_PER_CUSTOMER_WEEK / mean_basket)
        store_records = round(self.size * STORE_PURCHASES_PER_CUSTOMER_WEEK)

        buyer = rng.choice(self.size, transactions, p=online_weight / online_weight.sum())
        second = np.sort(rng.integers(0, 7 * 86_400, transactions))  # sorted: line numbers follow purchase time
        basket_size = rng.choice(BASKET_SIZES, transactions, p=BASKET_SIZE_WEIGHTS)
        transaction_of_line = np.repeat(np.arange(transactions), basket_size)
        line_count = len(transaction_of_line)
        week_start_us = (first_day - EPOCH_ORDINAL) * 86_400 * 1_000_000
        day_files = pl.Series(
            [f"transactions/d={week_start + timedelta(days=day)}/transactions.json" for day in range(7)]
        )
        per_transaction = pl.DataFrame(
            {
                "purchased_at": pl.Series(week_start_us + second * 1_000_000).cast(pl.Datetime("us")),
                "customer_id": self.ids(buyer),
                "source_file": day_files.gather(second // 86_400),
                "day": second // 86_400,
            }
        ).with_columns((pl.int_range(pl.len()).over("day") + 1).alias("line_number"))
        price = self.item_price_scale[buyer[transaction_of_line]] * rng.lognormal(0.0, 0.4, line_count)
        lines = (
            per_transaction.select(pl.all().gather(transaction_of_line))
            .with_columns(
                pl.lit(week_start).alias("week_start"),
                ("P" + pl.Series(rng.integers(1, 500, line_count)).cast(pl.String).str.zfill(3)).alias("product_id"),
                pl.Series("price", np.clip(np.round(price, 2), 0.5, None)),
                pl.Series(
                    "basket_position",
                    np.arange(line_count) - np.repeat(np.cumsum(basket_size) - basket_size, basket_size),
                ),
            )
            .select(LINES_SCHEMA.names())
            .cast(dict(LINES_SCHEMA))
        )

        store_buyer = rng.choice(self.size, store_records, p=store_weight / store_weight.sum())
        store = (
            pl.DataFrame(
                {
                    "week_start": pl.Series([week_start] * store_records, dtype=pl.Date),
                    "purchased_at": pl.Series(
                        week_start_us + rng.integers(0, 7 * 86_400, store_records) * 1_000_000
                    ).cast(pl.Datetime("us")),
                    "customer_id": self.ids(store_buyer),
                    "mobile_e164": "+447" + pl.Series(store_buyer).cast(pl.String).str.zfill(9),
                    "amount": np.clip(np.round(rng.lognormal(np.log(45.0), 0.7, store_records), 2), 0.5, None),
                    "store": pl.Series([f"Store {number:02d}" for number in range(1, 21)]).gather(
                        rng.integers(0, 20, store_records)
                    ),
                    "page": np.arange(store_records) // 500 + 1,
                    "record_number": np.arange(1, store_records + 1),
                }
            )
            .select(MATCHED_SCHEMA.names())
            .cast(dict(MATCHED_SCHEMA))
        )
        return lines, store


def build_inputs(cache: Path, customers: int, seed: int) -> None:
    """Write the cached inputs: Parquet frames, the rollups week by week, then the 52- and 104-week warehouses."""
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    population = Population(customers, seed)
    population.profiles().write_parquet(cache / "profiles.parquet")
    population.customers().write_parquet(cache / "customers.parquet")
    new_lines, new_store = population.week(HISTORY_WEEKS, seed)
    new_lines.write_parquet(cache / "new_week_lines.parquet")
    new_store.write_parquet(cache / "new_week_store.parquet")

    def history() -> Iterator[tuple[date, pl.DataFrame]]:
        started = time.perf_counter()
        for week_index in range(HISTORY_WEEKS):
            week = HISTORY_START + timedelta(weeks=week_index)
            lines, store = population.week(week_index, seed)
            if week_index % 13 == 12:
                print(f"  week {week_index + 1}/{HISTORY_WEEKS} ({time.perf_counter() - started:.0f} s)", flush=True)
            yield week, features.weekly_rollup(lines, store, week)

    written_weekly = cache / "rollups-written-weekly.duckdb"
    Warehouse(written_weekly).replace_weeks(ROLLUPS_TABLE, history())
    # The warehouses measured are copies in week order, not the file the weeks were written into: a table written
    # one week per transaction holds a partly filled row group per week, which the next checkpoints merge (seen at
    # 1M customers x 104 weeks: ~10 s paid once, then ~0.1 s). A warehouse that has run for a while has paid that
    # already; the copies have that settled layout, the same for 52 and 104 weeks.
    for weeks in (52, HISTORY_WEEKS):
        with duckdb.connect(str(_warehouse_path(cache, weeks))) as connection:
            connection.execute(f"attach '{written_weekly}' as written_weekly (read_only)")
            connection.execute("create schema silver")
            connection.execute(
                f"create table {ROLLUPS_TABLE} as select * from written_weekly.{ROLLUPS_TABLE} "
                "where week_start >= ? order by week_start, customer_id",
                [NEW_WEEK - timedelta(weeks=weeks)],
            )
    written_weekly.unlink()
    (cache / "complete").write_text("built\n")


def _warehouse_path(cache: Path, weeks: int) -> Path:
    return cache / f"rollups-{weeks}w.duckdb"


# -- measurements (each in its own process) -------------------------------------------------------------------------


class Stages:
    """Wall time per named stage, in the order they ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def recompute_gold(warehouse: Warehouse, profiles: pl.DataFrame, customers: pl.DataFrame, stages: Stages) -> dict:
    """The gold assets' work, as `segmentation_assets` does it: features, model, segments, metrics, then writes."""
    with stages("aggregate"):
        aggregated = warehouse.query(features.aggregate_rollups_sql(ROLLUPS_TABLE))
        history_start, last_week = warehouse.query(features.rollup_weeks_sql(ROLLUPS_TABLE)).row(0)
    with stages("features"):
        as_of = last_week + timedelta(days=6)
        customer_features = features.customer_features(
            aggregated, profiles, customers, as_of, history_start=history_start
        )
    with stages("fit"):
        model = segments.fit_segments(customer_features, n_clusters=N_CLUSTERS, random_state=RANDOM_STATE)
    with stages("assign"):
        customer_segments = segments.assign_segments(model, customer_features)
    with stages("metrics"):
        segment_metrics = segments.segment_metrics(customer_segments, customer_features)
    with stages("write gold"):
        warehouse.replace_table("gold.customer_features", customer_features)
        warehouse.replace_table("gold.customer_segments", customer_segments)
        warehouse.replace_table("gold.segment_metrics", segment_metrics)
    return {
        "weeks": (last_week - history_start).days // 7 + 1,
        "customers": customer_features.height,
        "segmented": int(segment_metrics["customers"].sum()),
        "segments": dict(zip(segment_metrics["segment_name"], segment_metrics["customers"].to_list(), strict=True)),
        "silhouette": model.silhouette,
    }


def _read_reference(cache: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    return pl.read_parquet(cache / "profiles.parquet"), pl.read_parquet(cache / "customers.parquet")


def run_full(warehouse: Warehouse, cache: Path, stages: Stages) -> dict:
    with stages("read inputs"):
        profiles, customers = _read_reference(cache)
    return recompute_gold(warehouse, profiles, customers, stages)


def run_update(warehouse: Warehouse, cache: Path, stages: Stages) -> dict:
    """One weekly update: the new week's rollup (from its lines and store purchases) replaces that week, then gold."""
    with stages("read inputs"):
        profiles, customers = _read_reference(cache)
        lines = pl.read_parquet(cache / "new_week_lines.parquet")
        store = pl.read_parquet(cache / "new_week_store.parquet")
    with stages("rollup"):
        rollup = features.weekly_rollup(lines, store, NEW_WEEK)
    with stages("write week"):
        warehouse.replace_week(ROLLUPS_TABLE, NEW_WEEK, rollup)
    return {
        **recompute_gold(warehouse, profiles, customers, stages),
        "lines": lines.height,
        "store_purchases": store.height,
        "rollup_rows": rollup.height,
    }


def _child(measurement: str, cache: Path) -> None:
    weeks = 52 if measurement == "week-52" else HISTORY_WEEKS
    scratch = cache / "scratch" / f"{measurement}.duckdb"
    scratch.parent.mkdir(exist_ok=True)
    shutil.copyfile(_warehouse_path(cache, weeks), scratch)
    try:
        stages = Stages()
        started = time.perf_counter()
        run = run_full if measurement == "full" else run_update
        digest = run(Warehouse(scratch), cache, stages)
        seconds = time.perf_counter() - started
    finally:
        scratch.unlink(missing_ok=True)
        scratch.with_name(scratch.name + ".wal").unlink(missing_ok=True)
    print(
        json.dumps(
            {"measurement": measurement, "seconds": seconds, "peak_mb": peak_mb(), "stages": stages.seconds, **digest}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path(".bench/segmentation"))
    parser.add_argument(
        "--only", default=",".join(MEASUREMENTS), help=f"comma-separated subset of {','.join(MEASUREMENTS)}"
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every measurement; the fastest run counts")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cache = (args.workdir / f"customers{args.customers}-seed{args.seed}").absolute()
    if args.child:
        _child(args.child, cache)
        return

    if not (cache / "complete").exists():
        print(
            f"building {args.customers:,} customers and {HISTORY_WEEKS} weeks of rollups into {cache} ...", flush=True
        )
        started = time.perf_counter()
        build_inputs(cache, args.customers, args.seed)
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    sizes = {weeks: _warehouse_path(cache, weeks).stat().st_size / 1e6 for weeks in (52, HISTORY_WEEKS)}
    print(
        f"inputs: {cache} ({args.customers:,} customers; rollup warehouses 52 weeks {sizes[52]:,.0f} MB, "
        f"104 weeks {sizes[HISTORY_WEEKS]:,.0f} MB)"
    )

    measurements = [m for m in args.only.split(",") if m]
    for measurement in measurements:
        if measurement not in MEASUREMENTS:
            parser.error(f"unknown measurement {measurement!r}; choose from {', '.join(MEASUREMENTS)}")
    results, timings = {}, {}
    for round_number in range(1, args.repeats + 1):  # rounds, not runs in a row: load from others spreads evenly
        for measurement in measurements:
            arguments = ["--customers", str(args.customers), "--seed", str(args.seed), "--workdir", str(args.workdir)]
            try:
                result = measure_in_child(__file__, arguments, measurement)
            except ChildFailed as failure:
                raise SystemExit(str(failure)) from None
            timings.setdefault(measurement, []).append(result["seconds"])
            if measurement not in results or result["seconds"] < results[measurement]["seconds"]:
                results[measurement] = result
            print(
                f"  round {round_number}: {measurement:<9} {result['seconds']:8.2f} s  {result['peak_mb']:9,.0f} MB",
                flush=True,
            )
    runs = "; ".join(f"{measurement} {' / '.join(f'{t:.1f}' for t in ts)} s" for measurement, ts in timings.items())
    print(f"\nfastest of {args.repeats} run(s) each (all runs: {runs})")

    stages = [stage for stage in STAGE_ORDER if any(stage in result["stages"] for result in results.values())]
    print(f"{'measurement':<12}{'weeks':>6}{'wall s':>9}{'peak MB':>9}" + "".join(f"{stage:>12}" for stage in stages))
    for measurement, result in results.items():
        cells = "".join(
            f"{result['stages'][stage]:>12.2f}" if stage in result["stages"] else f"{'-':>12}" for stage in stages
        )
        print(f"{measurement:<12}{result['weeks']:>6}{result['seconds']:>9.2f}{result['peak_mb']:>9,.0f}{cells}")
    print()
    for measurement, result in results.items():
        extra = (
            (
                f"; new week: {result['lines']:,} lines + {result['store_purchases']:,} store purchases -> "
                f"{result['rollup_rows']:,} rollup rows"
            )
            if "rollup_rows" in result
            else ""
        )
        agrees = "ok" if result["segmented"] == result["customers"] == args.customers else "MISMATCH"
        print(
            f"{measurement}: {result['customers']:,} customers with features, {result['segmented']:,} in segments "
            f"({agrees}); segments {result['segments']}; silhouette {result['silhouette']:.3f}{extra}"
        )
    if "full" in results:
        print(f"\nfull at {args.customers:,} customers: {results['full']['seconds']:.1f} s (target < 60 s)")
    if "week-52" in results and "week-104" in results:
        one_year, two_years = results["week-52"], results["week-104"]
        print(
            f"weekly update, 104 / 52 weeks of history: {two_years['seconds'] / one_year['seconds']:.2f} "
            f"(target about 1)"
        )
        for stage in ("rollup", "write week", "aggregate"):
            print(
                f"  {stage:<11} {one_year['stages'][stage]:6.2f} s -> {two_years['stages'][stage]:6.2f} s "
                f"({two_years['stages'][stage] / one_year['stages'][stage]:.2f}x)"
            )


if __name__ == "__main__":
    main()
