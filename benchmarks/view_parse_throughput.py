"""Ingestion throughput of the product-view bronze parse, measured against DuckDB's own `read_json`.

Belongs here: the measurement behind the MB/s figures quoted for ingestion, runnable on any landing folder:
`.venv/bin/python benchmarks/view_parse_throughput.py data/landing/amaro/product_views`.
Both sides read the same files (those the parse does not reject whole, since `read_json` aborts on them;
`ignore_errors` lets it null values of an unexpected type instead of failing) and materialize their result as
a Polars frame; the best of `repeats` runs counts, to damp noise from other load.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from custpipe_assets.product_views.transforms import list_product_view_files, parse_product_view_files
from custpipe_assets.product_views.view_files import default_landing_root, source_name


@dataclass(frozen=True)
class Throughput:
    label: str
    seconds: float
    rows: int
    megabytes: float

    @property
    def megabytes_per_second(self) -> float:
        return self.megabytes / self.seconds

    def __str__(self) -> str:
        return (
            f"{self.label}: {self.megabytes:.1f} MB in {self.seconds:.2f} s = "
            f"{self.megabytes_per_second:.0f} MB/s ({self.rows:,} rows)"
        )


def measure_view_parse_throughput(product_views_dir: Path, repeats: int = 3) -> list[Throughput]:
    """Best-of-`repeats` timings: our bronze parse, then read_json (batches), then read_json unnested to events."""
    product_views_dir = Path(product_views_dir)
    all_files = list_product_view_files(product_views_dir)
    quarantine = parse_product_view_files(all_files, product_views_dir).quarantine
    rejected = set(
        quarantine.filter(pl.col("line_number").is_null() & pl.col("position").is_null())["source_file"].to_list()
    )
    files = [path for path in all_files if source_name(path, default_landing_root(product_views_dir)) not in rejected]
    sources = [str(path) for path in files]
    megabytes = sum(os.path.getsize(source) for source in sources) / 1e6

    reader = "read_json($paths, format='array', ignore_errors=true)"

    def read_json(sql: str) -> Callable[[], int]:
        def run() -> int:
            with duckdb.connect() as connection:
                return connection.execute(sql, {"paths": sources}).pl().height

        return run

    candidates: list[tuple[str, Callable[[], int]]] = [
        (
            "parse_product_view_files (rows per event)",
            lambda: parse_product_view_files(files, product_views_dir).rows.height,
        ),
        ("duckdb read_json (rows per batch)", read_json(f"SELECT * FROM {reader}")),
        (
            "duckdb read_json + unnest (rows per event)",
            read_json(f"SELECT unnest(events, recursive := true) FROM {reader}"),
        ),
    ]
    results = []
    for label, run in candidates:
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            rows = run()
            timings.append(time.perf_counter() - started)
        results.append(Throughput(label, min(timings), rows, megabytes))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("product_views_dir", type=Path, help="the amaro/product_views folder")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    for result in measure_view_parse_throughput(arguments.product_views_dir, arguments.repeats):
        print(result)


if __name__ == "__main__":
    main()
