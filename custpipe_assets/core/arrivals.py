"""Arrival detection for micro-batch ingestion, with no Dagster import: which weeks did new or changed files touch?

A week's landed files are fingerprinted together (each file's path under the landing folder, size and modification
time). Every weekly bronze materialization records the fingerprint of the files it read for each of its weeks
(`core/landed_versions.py`), and a sensor asks for a run of exactly the weeks whose files today differ from what the
latest materialization of that week read: what ran is the memory, not the sensor's own cursor, so after `make run`
no sensor asks for anything. A file modified within the last `settle_seconds` may still be being copied: its week
waits for a later tick rather than ingesting half a file.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

SETTLE_SECONDS = 60.0


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

    def by_week(self, landing_dir: Path) -> dict[date, list[Path]]:
        """Every week some landed file holds, with those files (a file spanning weeks is in each of them)."""
        files: dict[date, list[Path]] = {}
        for path in Path(landing_dir).glob(self.pattern):
            for week in self.weeks_of_file(path):
                files.setdefault(week, []).append(path)
        return files

    def weeks(self, landing_dir: Path) -> set[date]:
        return set(self.by_week(landing_dir))

    def fingerprints(self, landing_dir: Path, weeks: Iterable[date]) -> dict[date, str]:
        """The fingerprint of each of `weeks`' file sets as they are now (a week with no file: the empty set's)."""
        files = self.by_week(landing_dir)
        return {week: fingerprint(files.get(week, []), landing_dir) for week in weeks}


def fingerprint(paths: Iterable[Path], landing_dir: Path) -> str:
    """One short hash of a file set: each file's path relative to the landing folder, size and modification time
    (so a file copied again, even with the same content, counts as changed; moving the landing folder does not)."""
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        stat = path.stat()
        digest.update(f"{path.relative_to(landing_dir).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class WeekArrivals:
    """Weeks to run now (with the fingerprint of their file set, for the run key) and weeks still settling."""

    ready: dict[date, str]
    settling: list[date]


def detect_week_arrivals(
    files_by_week: Mapping[date, list[Path]],
    recorded: Callable[[date], str | None],
    landing_dir: Path,
    *,
    settle_seconds: float = SETTLE_SECONDS,
    now: float | None = None,
) -> WeekArrivals:
    """The weeks whose file set differs from `recorded(week)`, the fingerprint the latest materialization of that
    week read (None: never materialized); weeks holding a file modified in the last `settle_seconds` wait."""
    now = time.time() if now is None else now
    ready, settling = {}, []
    for week, paths in sorted(files_by_week.items()):
        if any(now - path.stat().st_mtime < settle_seconds for path in paths):
            settling.append(week)
            continue
        current = fingerprint(paths, landing_dir)
        if recorded(week) != current:
            ready[week] = current
    return WeekArrivals(ready, settling)
