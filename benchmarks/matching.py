"""Benchmark: conversion -> registration matching against the planted truth, our rule vs a nearest-in-time baseline.

  .venv/bin/python benchmarks/matching.py [--seed 7] [--weeks 8] [--conversions-per-week 400]

Generates the conversions sample (deterministic per seed) under .bench/matching/, cleans it with the pipeline's
transforms, matches it week by week as the assets do, and prints precision, recall and time for both matchers.
"""

import argparse
import shutil
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from custpipe_assets.conversions import matching, transforms
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
    conversions = transforms.clean_conversions(transforms.read_conversions(landing).rows, mapping).rows
    registrations = transforms.clean_broker_registrations(transforms.read_broker_registrations(landing).rows).rows
    truth = read_planted_truth(landing)
    weeks = sorted(conversions["week_start"].unique())
    print(f"{summary.conversions:,} conversions, {summary.registrations:,} registrations, "
          f"{truth.height:,} planted matches, {len(weeks)} weeks")

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
