"""The daily transaction files (`transactions/d=YYYY-MM-DD/transactions.json`): who buys on which day, at what
minute, which baskets, written one day at a time (vectorised, so the large scale stays within a few hundred MB)
with the dirt of `customers_dirt.py` planted among the clean lines.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from custpipe_assets.sample.customers_catalogue import Catalogue
from custpipe_assets.sample.customers_dirt import (
    BOM_DAY,
    COPIES_PER_RECIPE,
    CRLF_DAY,
    EMPTY_DAY,
    MISSING_DAY,
    RECIPE_KIND,
    SPOILING_RECIPES,
    plan_line_dirt,
    plant_line_dirt,
)
from custpipe_assets.sample.customers_personas import (
    DORMANT_WEEKS,
    PERSONA_TRAITS,
    PERSONAS,
    IdFormat,
    apportion,
    persona_array,
    random_stream,
)

if TYPE_CHECKING:
    from custpipe_assets.sample.customers import Scale

_HIGH_VALUE, _DORMANT = PERSONAS.index("high_value"), PERSONAS.index("dormant")

WEEKDAY_FACTOR = np.array([0.90, 0.92, 0.95, 1.00, 1.10, 1.20, 0.93])  # Monday..Sunday purchase volume
HOUR_WEIGHT = np.array(  # purchases by hour of day, 00h..23h
    [
        1.0,
        0.6,
        0.4,
        0.3,
        0.3,
        0.5,
        1.2,
        2.5,
        3.5,
        4.0,
        4.5,
        5.0,
        6.0,
        5.5,
        5.0,
        4.8,
        5.0,
        5.5,
        6.5,
        7.0,
        7.0,
        6.0,
        4.0,
        2.0,
    ]
)
DISCOUNT_SHARE, DISCOUNT_FACTOR = 0.1, 0.9  # some basket lines of decimal-priced products are on promotion


@dataclass(frozen=True)
class _ShoppingPlan:
    """Who buys on which day: every customer's guaranteed "anchor" purchase plus weighted random purchases."""

    cdf_with_dormant: np.ndarray  # cumulative purchase weight per customer while dormant customers still buy
    cdf_without_dormant: np.ndarray
    anchor_customers: np.ndarray  # customers ordered by anchor day
    anchor_bounds: np.ndarray  # anchor_customers[anchor_bounds[d]:anchor_bounds[d + 1]] buy on day d
    random_purchases: np.ndarray  # per day

    def customers_on(self, rng: np.random.Generator, day: int, extra: int) -> tuple[np.ndarray, np.ndarray]:
        """Buying customers for the day: anchors and random draws, then `extra` more draws (dirt carriers)."""
        cdf = self.cdf_with_dormant if day < 7 * DORMANT_WEEKS else self.cdf_without_dormant
        drawn = np.searchsorted(cdf, rng.random(self.random_purchases[day] + extra) * cdf[-1], side="right")
        anchored = self.anchor_customers[self.anchor_bounds[day] : self.anchor_bounds[day + 1]]
        customers = np.concatenate([anchored, drawn])
        is_carrier = np.arange(len(customers)) >= len(customers) - extra
        return np.minimum(customers, len(cdf) - 1), is_carrier


def _plan_shopping(rng: np.random.Generator, scale: Scale, personas: np.ndarray) -> _ShoppingPlan:
    """Anchors make every customer buy at least once (high_value in the last week, dormant in the first two)."""
    days = scale.days
    open_days = np.array([d for d in range(days) if d not in (MISSING_DAY, EMPTY_DAY)])
    rate = persona_array("purchases_per_active_week")[personas] * rng.lognormal(0.0, 0.35, len(personas))
    cdf_with = np.cumsum(rate)
    cdf_without = np.cumsum(np.where(personas == _DORMANT, 0.0, rate))
    day_weight = np.array(
        [
            (cdf_with[-1] if d < 7 * DORMANT_WEEKS else cdf_without[-1]) * WEEKDAY_FACTOR[d % 7]
            if d in open_days
            else 0.0
            for d in range(days)
        ]
    )
    anchor_pool = {
        _HIGH_VALUE: open_days[open_days >= days - 7],
        _DORMANT: open_days[open_days < 7 * DORMANT_WEEKS],
    }
    anchor_day = np.empty(len(personas), dtype=np.int64)
    for code in range(len(PERSONAS)):
        members = personas == code
        anchor_day[members] = rng.choice(anchor_pool.get(code, open_days), size=int(members.sum()))
    anchor_customers = np.argsort(anchor_day, kind="stable")
    return _ShoppingPlan(
        cdf_with_dormant=cdf_with,
        cdf_without_dormant=cdf_without,
        anchor_customers=anchor_customers,
        anchor_bounds=np.searchsorted(anchor_day[anchor_customers], np.arange(days + 1)),
        random_purchases=apportion(scale.transactions - len(personas), day_weight),
    )


def _spread_same_minute(customer: np.ndarray, minute: np.ndarray) -> np.ndarray:
    """Move a customer's second purchase in the same minute on a minute, so no clean line repeats by chance."""
    minute = minute.copy()
    while True:
        order = np.lexsort((minute, customer))
        same_customer = customer[order][1:] == customer[order][:-1]
        clash = same_customer & (minute[order][1:] == minute[order][:-1])
        if not clash.any():
            return minute
        moved = order[1:][clash]
        minute[moved] = (minute[moved] + 1) % 1440


def _purchase_lines(
    rng: np.random.Generator,
    customer: np.ndarray,
    minute: np.ndarray,
    day: date,
    personas: np.ndarray,
    catalogue: Catalogue,
    ids: IdFormat,
) -> list[str]:
    """One JSON line per purchase (in the given order), baskets drawn from each customer's persona."""
    persona = personas[customer]
    low, high = (np.array([t.basket_items[i] for t in PERSONA_TRAITS.values()])[persona] for i in (0, 1))
    item_purchase = np.repeat(np.arange(len(customer)), rng.integers(low, high + 1))
    product = catalogue.pick(rng, persona[item_purchase])
    decimal = catalogue.decimal_priced[product]
    on_promotion = decimal & (rng.random(len(product)) < DISCOUNT_SHARE)
    cents = catalogue.price_cents[product]
    cents = np.where(on_promotion, np.rint(cents * DISCOUNT_FACTOR).astype(np.int64), cents)
    baskets = (
        # NumPy's true division gives the float nearest to cents/100, whose shortest text is what json.dumps writes
        pl.DataFrame({"purchase": item_purchase, "product": product, "cents": cents, "units": cents / 100})
        .select(
            "purchase",
            item=pl.concat_str(
                pl.lit('{"product_id": "'),
                ids.product_expr("product"),
                pl.lit('", "price": '),
                pl.when(pl.lit(pl.Series(decimal)))
                .then(pl.col("units").cast(pl.String))
                .otherwise((pl.col("cents") // 100).cast(pl.String)),
                pl.lit("}"),
            ),
        )
        .group_by("purchase", maintain_order=True)
        .agg(pl.col("item").str.join(", "))
    )
    lines = pl.DataFrame({"customer": customer, "minute": minute, "basket": baskets["item"]}).select(
        pl.concat_str(
            pl.lit('{"customer_id": "'),
            ids.customer_expr("customer"),
            pl.lit('", "basket": ['),
            pl.col("basket"),
            pl.lit(f'], "date_of_purchase": "{day.isoformat()} '),
            (pl.col("minute") // 60).cast(pl.String).str.zfill(2),
            pl.lit(":"),
            (pl.col("minute") % 60).cast(pl.String).str.zfill(2),
            pl.lit(':00"}'),
        )
    )
    return lines.to_series().to_list()


def write_transactions(
    landing_dir: Path,
    seed: int,
    scale: Scale,
    first_week: date,
    personas: np.ndarray,
    catalogue: Catalogue,
    ids: IdFormat,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int, int, int]:
    """The daily JSON Lines files plus _truth/transaction_dirt.csv; returns (purchases, lines, folders, dirt rows)."""
    plan = _plan_shopping(random_stream(seed, "shopping"), scale, personas)
    dirt_plan = plan_line_dirt(random_stream(seed, "dirt"), scale.days)
    minute_weight = np.repeat(HOUR_WEIGHT / HOUR_WEIGHT.sum() / 60, 60)
    unknown_serial = iter(range(1, len(RECIPE_KIND) * COPIES_PER_RECIPE + 1))
    manifest: list[tuple[str, str, int, str]] = []
    purchases = lines_written = folders = 0
    previous_day_clean: list[str] = []
    for day_index in range(scale.days):
        if progress is not None and day_index:
            progress(day_index, scale.days)
        day = first_week + timedelta(days=day_index)
        source_file = f"transactions/d={day.isoformat()}/transactions.json"
        if day_index == MISSING_DAY:
            manifest.append((day.isoformat(), source_file, 0, "missing_day_folder"))
            previous_day_clean = []
            continue
        path = landing_dir / source_file
        path.parent.mkdir(parents=True)
        folders += 1
        if day_index == EMPTY_DAY:
            path.write_bytes(b"")
            manifest.append((day.isoformat(), source_file, 0, "empty_day_folder"))
            previous_day_clean = []
            continue

        rng = random_stream(seed, "day", day_index)
        recipes = dirt_plan.get(day_index, [])
        spoiled = [recipe for recipe in recipes if recipe in SPOILING_RECIPES]
        customer, is_carrier = plan.customers_on(rng, day_index, extra=len(spoiled))
        minute = _spread_same_minute(customer, rng.choice(1440, size=len(customer), p=minute_weight))
        in_time_order = np.argsort(minute, kind="stable")
        day_lines = _purchase_lines(rng, customer[in_time_order], minute[in_time_order], day, personas, catalogue, ids)
        carrier_at = set(np.flatnonzero(is_carrier[in_time_order]).tolist())
        clean = [line for i, line in enumerate(day_lines) if i not in carrier_at] if carrier_at else day_lines
        carriers = [day_lines[i] for i in sorted(carrier_at)]
        unknown_ids = [
            (ids.customer(scale.customers + serial), ids.product(scale.products + serial))
            for serial in (next(unknown_serial) for _ in spoiled)
        ]
        all_lines, planted = plant_line_dirt(rng, clean, carriers, recipes, previous_day_clean, unknown_ids)

        for whole_file_kind, dirt_day in (("crlf_file", CRLF_DAY), ("bom_file", BOM_DAY)):
            if day_index == dirt_day:
                manifest.append((day.isoformat(), source_file, 0, whole_file_kind))
        manifest.extend((day.isoformat(), source_file, line_number, kind) for line_number, kind in planted)
        newline = "\r\n" if day_index == CRLF_DAY else "\n"
        content = (newline.join(all_lines) + newline).encode("utf-8")
        path.write_bytes(codecs.BOM_UTF8 + content if day_index == BOM_DAY else content)
        purchases += len(clean)
        lines_written += len(all_lines)
        previous_day_clean = clean

    pl.DataFrame(manifest, schema=["day", "source_file", "line_number", "kind"], orient="row").write_csv(
        landing_dir / "_truth" / "transaction_dirt.csv"
    )
    if progress is not None:
        progress(scale.days, scale.days)
    return purchases, lines_written, folders, len(manifest)
