"""Synthetic BrokerChooser landing files with planted ground truth.

What belongs here: writing `brokerchooser/` under a landing folder in the real export formats (conversions,
broker registrations, page-category mapping) with the dirt real exports carry, and `_truth/matches.csv`, the
planted conversion -> registration pairs that the matcher is scored against. Reading the files back belongs in
`transforms.py`.

The story the data tells: a conversion on the affiliate site is followed by a registration at the broker in the
same country (residency when the broker knows it, else the IP country). About 70% of conversions register; the
broker also has registrations that no conversion explains (noise); and some conversions are planted next to a
conversion from another country so that only the country tells them apart. How long after its conversion a
registration comes is the delay regime (`DELAY_REGIMES`): `minutes` (the default: median 5 minutes, 1 to 50),
`seconds` (redirect-and-register, 0 to 5 seconds) or `mixed` (half of each), so that the matcher, which must
learn the delay from the data, is tried on more than one shape. Density is `conversions_per_week`.

This module is the entry point; the story is planned in `conversions_plan.py` (conversions, their registrations,
the noise) and written in the export formats, with their dirt, by `conversions_files.py`.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from custpipe_assets.conversions.formats import MAPPING_FILE, SOURCE_DIR, TRUTH_FILE
from custpipe_assets.sample.conversions_files import broker_files, conversion_files, mapping_file, truth_file
from custpipe_assets.sample.conversions_plan import (
    make_broker_rows_unique,
    plan_conversions,
    plan_noise,
    plan_registrations,
)

SAMPLE_CONVERSIONS_PER_WEEK = 400  # the default sample's density (1x)
DELAY_REGIMES = ("minutes", "seconds", "mixed")


@dataclass(frozen=True)
class LandingSummary:
    """What `generate_conversions_landing` wrote, for logs and tests."""

    root: Path
    files: tuple[str, ...]
    conversions: int
    registrations: int
    planted_matches: int
    noise_registrations: int


def generate_conversions_landing(
    landing_dir: Path,
    *,
    seed: int = 7,
    first_week: date = date(2018, 9, 3),
    weeks: int = 8,
    conversions_per_week: int = SAMPLE_CONVERSIONS_PER_WEEK,
    delay_regime: str = "minutes",
    overwrite: bool = False,
) -> LandingSummary:
    """Write `brokerchooser/` (conversions, broker_data, mapping, _truth) under landing_dir; byte-identical per seed."""
    if first_week.weekday() != 0:
        raise ValueError(f"first_week must be a Monday, got {first_week} ({first_week:%A})")
    if weeks < 1 or conversions_per_week < 20:
        raise ValueError("need at least 1 week and 20 conversions per week")
    if delay_regime not in DELAY_REGIMES:
        raise ValueError(f"delay_regime must be one of {', '.join(DELAY_REGIMES)}, got {delay_regime!r}")
    root = Path(landing_dir) / SOURCE_DIR
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; pass overwrite=True to replace it")
        shutil.rmtree(root)
    rng = random.Random(seed)
    start = datetime(first_week.year, first_week.month, first_week.day, tzinfo=UTC)

    conversions = plan_conversions(rng, start, weeks, conversions_per_week, delay_regime)
    registrations = plan_registrations(rng, conversions)
    noise = plan_noise(rng, start, weeks, sum(r.conversion is not None for r in registrations))
    registrations = sorted(registrations + noise, key=lambda r: (r.timestamp, r.row()))
    make_broker_rows_unique(registrations)

    files: dict[str, bytes] = {}
    files.update(conversion_files(rng, start, weeks, conversions))
    files.update(broker_files(rng, start, weeks, registrations))
    files[MAPPING_FILE] = mapping_file()
    files[TRUTH_FILE] = truth_file(registrations)

    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return LandingSummary(
        root=root,
        files=tuple(sorted(files)),
        conversions=len(conversions),
        registrations=len(registrations),
        planted_matches=sum(r.conversion is not None for r in registrations),
        noise_registrations=len(noise),
    )


def read_planted_truth(landing_dir: Path) -> pl.DataFrame:
    """The planted pairs as a frame (conversion_id Int64, registration_key String) for `match_quality`."""
    path = Path(landing_dir) / SOURCE_DIR / TRUTH_FILE
    return pl.read_csv(path, schema={"conversion_id": pl.Int64, "registration_key": pl.String})
