"""Benchmark: conversion -> registration matching against the planted truth, our rule vs a nearest-in-time baseline.

  .venv/bin/python benchmarks/matching.py [--seed 7] [--weeks 8] [--conversions-per-week 400]
  .venv/bin/python benchmarks/matching.py --weeks 104 --conversions-per-week 4000   # two years, ten times busier

Generates the conversions sample (deterministic per seed) under .bench/matching/, cleans it with the pipeline's
transforms, matches it week by week as the assets do, and prints precision, recall and time for both matchers, and
the time to read and clean every batch file (as each run does) and for the arrival sensor to learn their weeks.
"""

import argparse
import shutil
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from custpipe_assets.conversions import matching, transforms
from custpipe_assets.conversions.automation import LANDED_FILES, weeks_in_batch_file
from custpipe_assets.conversions.generate import generate_conversions_landing, read_planted_truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--conversions-per-week", type=int, default=400)
    parser.add_argument("--workdir", type=Path, default=Path(".bench/matching"))
    args = parser.parse_args()
    landing = args.workdir / f"seed{args.seed}-weeks{args.weeks}-per{args.conversions_per_week}"
    shutil.rmtree(landing, ignore_errors=True)
    summary = generate_conversions_landing(landing, seed=args.seed, weeks=args.weeks,
                                           conversions_per_week=args.conversions_per_week)
    mapping = transforms.clean_page_category_mapping(transforms.read_page_category_mapping(landing).rows).rows
    started = time.perf_counter()
    bronze_conversions, bronze_registrations = transforms.read_conversions(landing), transforms.read_broker_registrations(landing)
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    conversions = transforms.clean_conversions(bronze_conversions.rows, mapping).rows
    registrations = transforms.clean_broker_registrations(bronze_registrations.rows).rows
    clean_seconds = time.perf_counter() - started
    batch_files = sorted(landing.glob(LANDED_FILES.pattern))
    sensor_seconds = []
    for _ in range(2):  # the sensor's first tick reads every file, later ticks only new versions
        started = time.perf_counter()
        for path in batch_files:
            weeks_in_batch_file(path)
        sensor_seconds.append(time.perf_counter() - started)
    truth = read_planted_truth(landing)
    weeks = sorted(conversions["week_start"].unique())
    landed_lines = bronze_conversions.rows.height + bronze_registrations.rows.height
    print(f"{summary.conversions:,} conversions, {summary.registrations:,} registrations, "
          f"{truth.height:,} planted matches, {len(weeks)} weeks")
    print(f"bronze: read {len(batch_files)} batch files ({landed_lines:,} landed lines) in {read_seconds:.2f} s; "
          f"silver: cleaned in {clean_seconds:.2f} s; sensor: weeks of every file {sensor_seconds[0]:.2f} s on the "
          f"first tick, {sensor_seconds[1]:.3f} s on the next")

    started = time.perf_counter()
    ours = pl.concat([matching.match_week(conversions, registrations, week) for week in weeks])
    ours_seconds = time.perf_counter() - started
    started = time.perf_counter()
    baseline = matching.match_nearest_in_time(conversions, registrations, max_delay=timedelta(minutes=60))
    baseline_seconds = time.perf_counter() - started

    print(f"{'matcher':<34}{'precision':>10}{'recall':>8}{'matches':>9}{'seconds':>9}")
    for name, found, seconds in (("country + time (weekly, as run)", ours, ours_seconds),
                                 ("nearest in time, no country", baseline, baseline_seconds)):
        quality = matching.match_quality(found, truth)
        print(f"{name:<34}{quality.precision:>10.4f}{quality.recall:>8.4f}{found.height:>9,}{seconds:>9.2f}")
    print("targets: precision >= 0.98, recall >= 0.95, and better than the baseline")


if __name__ == "__main__":
    main()
