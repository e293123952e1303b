"""Deterministic sample data for the customers domain, written in the real landing formats of DESIGN.md.

What belongs here: inventing the customers-domain landing files (`customers.csv`, `products.csv`,
`customer_profiles.csv` and the daily `transactions/d=YYYY-MM-DD/transactions.json` JSON Lines files) with
the dirt real feeds carry, plus the ground truth written beside them in `_truth/` (planted personas, clean
profiles and mobiles, a manifest of every planted transaction dirt line) so tests can check the pipeline
finds what was planted. Pure NumPy/Polars, no Dagster: the asset that calls this lives elsewhere.

This module is the entry point (scales, the summary, which files the generator owns); the parts live beside it:
`customers_personas.py` (personas, random streams, ids), `customers_catalogue.py` (products.csv),
`customers_profiles.py` (customers.csv, customer_profiles.csv), `customers_transactions.py` (the daily purchase
files) and `customers_dirt.py` (the dirt planted in them).

Purchases are generated vectorised, one day at a time, so the "large" scale (30M purchases) stays within a
few hundred MB. The same seed, scale and first week give byte-identical files.

Run it by hand with `python -m custpipe_assets.sample.customers LANDING_DIR --scale medium`.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from custpipe_assets.sample.customers_catalogue import CATEGORIES, make_catalogue
from custpipe_assets.sample.customers_personas import (
    DORMANT_WEEKS,
    PERSONAS,
    IdFormat,
    assign_personas,
    random_stream,
)
from custpipe_assets.sample.customers_profiles import write_customers, write_profiles, write_revolve_csv
from custpipe_assets.sample.customers_transactions import write_transactions

MIN_CUSTOMERS, MIN_PURCHASES_PER_DAY, MIN_WEEKS = 20, 20, 3

# Files this generator owns; overwrite=True removes exactly these, leaving other domains' landing data alone.
OWNED_FILES = (
    "customers.csv",
    "products.csv",
    "customer_profiles.csv",
    "_truth/personas.csv",
    "_truth/store_customers.csv",
    "_truth/profiles.csv",
    "_truth/transaction_dirt.csv",
    "_stand_in/store_customers.csv",
)
OWNED_FOLDERS = ("transactions",)


@dataclass(frozen=True)
class Scale:
    """How much data to generate; the lower bounds keep every persona and every planted dirt kind present."""

    customers: int
    products: int
    weeks: int
    transactions: int

    def __post_init__(self) -> None:
        problems = []
        if self.customers < MIN_CUSTOMERS:
            problems.append(f"customers must be >= {MIN_CUSTOMERS} so every persona and dirt kind appears")
        if self.products < len(CATEGORIES):
            problems.append(f"products must be >= {len(CATEGORIES)}, one per category")
        if self.weeks < MIN_WEEKS:
            problems.append(
                f"weeks must be >= {MIN_WEEKS} so dormant customers (first {DORMANT_WEEKS} weeks only) stand out"
            )
        needed = max(self.customers, MIN_PURCHASES_PER_DAY * 7 * self.weeks)
        if self.transactions < needed:
            problems.append(
                f"transactions must be >= {needed}: every customer buys at least once and every day needs "
                f"{MIN_PURCHASES_PER_DAY} purchases to hide dirt among"
            )
        if problems:
            raise ValueError(f"invalid {self}: " + "; ".join(problems))

    @property
    def days(self) -> int:
        return 7 * self.weeks


SCALES: dict[str, Scale] = {
    "small": Scale(customers=400, products=60, weeks=8, transactions=5_000),
    "medium": Scale(customers=100_000, products=500, weeks=52, transactions=3_000_000),
    "large": Scale(customers=1_000_000, products=1_000, weeks=104, transactions=30_000_000),
}


@dataclass(frozen=True)
class GenerationSummary:
    """What was written, for logs and asset metadata."""

    landing_dir: Path
    seed: int
    scale: Scale
    first_day: date
    last_day: date
    customer_rows: int  # data lines in customers.csv, dirt included
    profile_rows: int  # data lines in customer_profiles.csv, duplicates included
    product_rows: int
    purchases: int  # clean purchase lines (always scale.transactions)
    transaction_lines: int  # every line in the transactions files, dirt included
    day_folders: int
    planted_dirt: int  # rows of _truth/transaction_dirt.csv
    persona_counts: dict[str, int]


def generate_customers_landing(
    landing_dir: Path,
    *,
    seed: int = 7,
    scale: str | Scale = "small",
    first_week: date = date(2018, 9, 3),
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Write the customers-domain landing files and their `_truth/` into landing_dir.

    Refuses a landing dir that already holds any file unless overwrite=True (then only this generator's own
    files are replaced), so real data is never overwritten by accident. `progress(days_written, days)` is called
    after each day of transactions (the long part: minutes at the large scale).
    """
    landing_dir = Path(landing_dir)
    chosen = _resolve_scale(scale)
    if isinstance(first_week, datetime) or first_week.weekday() != 0:
        raise ValueError(f"first_week must be a Monday date, got {first_week!r}")
    _prepare_landing_dir(landing_dir, overwrite=overwrite)
    (landing_dir / "_truth").mkdir(exist_ok=True)

    ids = IdFormat(chosen)
    personas = assign_personas(random_stream(seed, "personas"), chosen.customers)
    catalogue = make_catalogue(random_stream(seed, "products"), chosen.products, ids)
    write_revolve_csv(catalogue.frame, landing_dir / "products.csv")
    customer_rows = write_customers(landing_dir, random_stream(seed, "customers"), personas, ids)
    profile_rows = write_profiles(landing_dir, random_stream(seed, "profiles"), personas, ids, first_week)
    purchases, lines, folders, dirt = write_transactions(
        landing_dir, seed, chosen, first_week, personas, catalogue, ids, progress
    )
    return GenerationSummary(
        landing_dir=landing_dir,
        seed=seed,
        scale=chosen,
        first_day=first_week,
        last_day=first_week + timedelta(days=chosen.days - 1),
        customer_rows=customer_rows,
        profile_rows=profile_rows,
        product_rows=chosen.products,
        purchases=purchases,
        transaction_lines=lines,
        day_folders=folders,
        planted_dirt=dirt,
        persona_counts={name: int((personas == code).sum()) for code, name in enumerate(PERSONAS)},
    )


def _resolve_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {sorted(SCALES)} or pass a Scale")
    return SCALES[scale]


def _prepare_landing_dir(landing_dir: Path, *, overwrite: bool) -> None:
    existing = next((p for p in landing_dir.rglob("*") if p.is_file()), None) if landing_dir.is_dir() else None
    if existing is not None:
        if not overwrite:
            raise FileExistsError(
                f"landing dir {landing_dir} already holds files (e.g. {existing}); refusing to write sample data "
                "over possibly real data. Pass overwrite=True to replace the customers sample files."
            )
        for name in OWNED_FILES:
            (landing_dir / name).unlink(missing_ok=True)
        for name in OWNED_FOLDERS:
            shutil.rmtree(landing_dir / name, ignore_errors=True)
    landing_dir.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> None:
    """Command line entry: generate into a landing dir and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing_dir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--first-week", type=date.fromisoformat, default=date(2018, 9, 3))
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    summary = generate_customers_landing(
        args.landing_dir, seed=args.seed, scale=args.scale, first_week=args.first_week, overwrite=args.overwrite
    )
    print(summary)


if __name__ == "__main__":
    main()
