"""The core CSV reader on one large export: the record-by-record exact path against read_csv_export's fast path.

Belongs here: the measurement behind the reader's fast path, on a generated customers-like file (customer_id,
loyalty_score and a few text columns, `--quoted-share` of the records with a quoted field holding the separator,
which the fast path hands to the exact one) or on a landed file given by path, read with `--columns`:

  .venv/bin/python benchmarks/csv_reader.py                                  # 100,000 generated rows
  .venv/bin/python benchmarks/csv_reader.py --quoted-share 0.05
  .venv/bin/python benchmarks/csv_reader.py /tmp/med/landing/customers.csv   # columns: customer_id,loyalty_score

Both paths read the same bytes; the best of `--repeats` runs counts, to damp noise from other load. The results
are checked equal (rows and file report) before any time is printed.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from polars.testing import assert_frame_equal

from custpipe_assets.core.csv_reader import CsvRead, _read_csv_export_exact, read_csv_export
from custpipe_assets.purchases.reference import CUSTOMER_COLUMNS

GENERATED_COLUMNS = ("customer_id", "loyalty_score", "first_name", "city", "email")
_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Elena", "Fabio", "Gisele", "Hugo")
_CITIES = ("Sao Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Recife")


def write_customers_csv(path: Path, rows: int, quoted_share: float, seed: int = 7) -> Path:
    """A customers export: CRLF line ends (as the real one lands), unquoted fields but for `quoted_share` of the
    records, whose city is quoted and holds a comma."""
    generator = random.Random(seed)
    lines = [",".join(GENERATED_COLUMNS)]
    for number in range(1, rows + 1):
        name, city = generator.choice(_NAMES), generator.choice(_CITIES)
        if generator.random() < quoted_share:
            city = f'"{city}, Brazil"'
        score = generator.randint(1, 10)
        lines.append(f"C{number:06d},{score},{name},{city},{name.lower()}{number}@example.com")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def best_of(repeats: int, read: Callable[[], CsvRead]) -> tuple[float, CsvRead]:
    """The shortest of `repeats` timed reads, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = read()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def compare(path: Path, columns: tuple[str, ...], repeats: int) -> None:
    """Time both paths on one file, check they agree, print the times side by side."""
    arguments = {"source_file": path.name, "columns": columns, "separator": ","}
    exact_seconds, exact = best_of(repeats, lambda: _read_csv_export_exact(path, **arguments))
    fast_seconds, fast = best_of(repeats, lambda: read_csv_export(path, **arguments))
    assert_frame_equal(fast.rows, exact.rows)
    assert_frame_equal(fast.file, exact.file)
    megabytes = path.stat().st_size / 1e6
    issues = fast.rows["read_issue"].drop_nulls().len()
    print(f"{path}: {megabytes:.1f} MB, {fast.rows.height:,} records ({issues:,} with a read_issue), same result")
    print(f"  exact (record by record): {exact_seconds:7.3f} s")
    print(f"  read_csv_export (fast):   {fast_seconds:7.3f} s")
    print(f"  ratio: {exact_seconds / fast_seconds:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, nargs="?", help="a landed CSV export (default: generate one)")
    parser.add_argument("--columns", default=",".join(CUSTOMER_COLUMNS), help="columns read from a given path")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the generated file")
    parser.add_argument("--quoted-share", type=float, default=0.0, help="share of generated records with a quote")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.path is not None:
        compare(args.path, tuple(args.columns.split(",")), args.repeats)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = write_customers_csv(Path(folder) / "customers.csv", args.rows, args.quoted_share)
        compare(path, GENERATED_COLUMNS, args.repeats)


if __name__ == "__main__":
    main()
