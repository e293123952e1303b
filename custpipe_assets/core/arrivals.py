"""Arrival detection for micro-batch ingestion, with no Dagster import: which weeks did new or changed files touch?

A sensor lists landing files, fingerprints each week's file set (path, size, modification time) and asks for a run
of exactly the weeks whose fingerprint changed since its cursor. A file modified within the last `settle_seconds`
may still be being copied: its week waits for a later tick rather than ingesting half a file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_of_iso_date(text: str) -> list[date]:
    """[the Monday of the ISO date `text`], or [] when it is not one: a stray file name is ignored, not a crash."""
    try:
        return [monday_of(date.fromisoformat(text))]
    except ValueError:
        return []


@dataclass(frozen=True)
class LandedFiles:
    """Where a domain's files land (a glob under the landing folder) and which weeks one such file holds."""

    pattern: str
    weeks_of_file: Callable[[Path], Iterable[date]]

    def weeks(self, landing_dir: Path) -> set[date]:
        return {week for path in landing_dir.glob(self.pattern) for week in self.weeks_of_file(path)}


@dataclass(frozen=True)
class WeekArrivals:
    """Weeks to run now (with a run key naming their file set), weeks still settling, and the next cursor."""

    ready: dict[date, str]
    settling: list[date]
    cursor: str


def fingerprint(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def detect_week_arrivals(
    files: Iterable[Path],
    weeks_of_file: Callable[[Path], Iterable[date]],
    cursor: str | None,
    *,
    settle_seconds: float = 60.0,
    now: float | None = None,
) -> WeekArrivals:
    """Compare this tick's files, grouped by week, with the fingerprints in `cursor` (JSON `{week: fingerprint}`)."""
    now = time.time() if now is None else now
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    by_week: dict[date, list[Path]] = {}
    for path in files:
        for week in weeks_of_file(path):  # a batch file can hold several weeks
            by_week.setdefault(week, []).append(path)
    ready, settling = {}, []
    for week, paths in sorted(by_week.items()):
        if any(now - path.stat().st_mtime < settle_seconds for path in paths):
            settling.append(week)
            continue
        current = fingerprint(paths)
        if seen.get(week.isoformat()) != current:
            ready[week] = current
            seen[week.isoformat()] = current
    return WeekArrivals(ready, settling, json.dumps(seen, sort_keys=True))
