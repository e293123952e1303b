"""The sample data set of every domain, written together into one landing folder (`custpipe generate`)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from custpipe_assets.sample.conversions import SAMPLE_CONVERSIONS_PER_WEEK, generate_conversions_landing
from custpipe_assets.sample.customers import GenerationSummary, generate_customers_landing
from custpipe_assets.sample.product_views import generate_product_views_landing


@dataclass(frozen=True)
class SampleSummary:
    customers: GenerationSummary
    conversions: object
    product_views: object


def generate_sample(
    landing_dir: Path,
    *,
    seed: int = 7,
    scale: str = "small",
    first_week: date = date(2018, 9, 3),
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    delay_regime: str = "minutes",
    conversions_density: int = 1,
) -> SampleSummary:
    """Every domain's sources; refuses a landing folder that holds files unless `overwrite` (then each domain
    replaces only its own files). Only the customers domain grows with `scale`; the others stay sample-sized.
    `progress(days_written, days)` follows the customers' transaction days, the long part at a large scale.
    `delay_regime` (seconds, minutes, mixed) and `conversions_density` (a multiple of the sample's conversions a
    week) shape the conversions' planted truth; the defaults are the sample's."""
    landing_dir = Path(landing_dir)
    if not overwrite and landing_dir.exists() and any(p.name != ".gitkeep" for p in landing_dir.iterdir()):
        raise FileExistsError(f"{landing_dir} already holds files; pass --overwrite to replace the sample files in it")
    customers = generate_customers_landing(
        landing_dir, seed=seed, scale=scale, first_week=first_week, overwrite=True, progress=progress
    )
    conversions = generate_conversions_landing(
        landing_dir,
        seed=seed,
        first_week=first_week,
        overwrite=True,
        delay_regime=delay_regime,
        conversions_per_week=SAMPLE_CONVERSIONS_PER_WEEK * conversions_density,
    )
    product_views = generate_product_views_landing(landing_dir, seed=seed, start=first_week, overwrite=True)
    return SampleSummary(customers, conversions, product_views)
