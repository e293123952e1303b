"""Who the sample customers are, and what every part of the customers generator shares: the personas and their
traits (the gaps segmentation must find), one independent random stream per concern, the id formats, and
splitting a total exactly in proportion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from custpipe_assets.sample.customers import Scale


@dataclass(frozen=True)
class PersonaTraits:
    """How a persona shops and who they tend to be; the gaps between personas are what segmentation must find."""

    share: float  # of all customers
    purchases_per_active_week: float  # relative; all rates are scaled so purchases add up to Scale.transactions
    basket_items: tuple[int, int]  # inclusive range of basket lines
    price_exponent: float  # product weights ~ price ** exponent: > 0 favours expensive products
    loyalty_beta: tuple[float, float]
    age_mean: float
    age_sd: float
    income_median: int


PERSONA_TRAITS: dict[str, PersonaTraits] = {
    "high_value": PersonaTraits(0.15, 1.6, (3, 6), 1.0, (8.0, 2.0), 46, 9, 85_000),
    "frequent": PersonaTraits(0.35, 3.0, (1, 2), -0.8, (6.0, 3.0), 33, 9, 38_000),
    "occasional": PersonaTraits(0.30, 0.4, (2, 4), 0.0, (3.0, 4.0), 41, 13, 45_000),
    "dormant": PersonaTraits(0.20, 0.5, (1, 3), 0.0, (2.0, 6.0), 57, 13, 30_000),
}
PERSONAS = tuple(PERSONA_TRAITS)

DORMANT_WEEKS = 2  # dormant customers buy only in the first two weeks

STREAMS = ("personas", "products", "customers", "profiles", "shopping", "dirt", "day")


def random_stream(seed: int, stream: str, *extra: int) -> np.random.Generator:
    """One independent random stream per concern, so changing one file's recipe leaves the others' bytes alone."""
    return np.random.default_rng([seed, STREAMS.index(stream), *extra])


class IdFormat:
    """Customer ids `C000123` and product ids `P0042`, widened only when the count needs more digits."""

    def __init__(self, scale: Scale) -> None:
        self.customer_width = max(6, len(str(scale.customers)))
        self.product_width = max(4, len(str(scale.products)))

    def customer(self, number: int) -> str:
        return f"C{number:0{self.customer_width}d}"

    def product(self, number: int) -> str:
        return f"P{number:0{self.product_width}d}"

    def customer_expr(self, index_column: str) -> pl.Expr:
        """Id text from a 0-based customer index column."""
        return pl.concat_str(pl.lit("C"), (pl.col(index_column) + 1).cast(pl.String).str.zfill(self.customer_width))

    def product_expr(self, index_column: str) -> pl.Expr:
        return pl.concat_str(pl.lit("P"), (pl.col(index_column) + 1).cast(pl.String).str.zfill(self.product_width))


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split an integer total in proportion to weights, exactly (largest remainder), so counts add up."""
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    shortfall = int(total - counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:shortfall]] += 1
    return counts


def assign_personas(rng: np.random.Generator, customers: int) -> np.ndarray:
    """Persona code per customer (index into PERSONAS), in exactly the planned shares."""
    counts = apportion(customers, np.array([traits.share for traits in PERSONA_TRAITS.values()]))
    personas = np.repeat(np.arange(len(PERSONAS), dtype=np.int8), counts)
    rng.shuffle(personas)
    return personas


def persona_array(field: str) -> np.ndarray:
    """One PersonaTraits field as an array indexed by persona code, for vectorised lookups."""
    return np.array([getattr(traits, field) for traits in PERSONA_TRAITS.values()])
