"""Deterministic sample data for the customers domain, written in the real landing formats of DESIGN.md.

What belongs here: inventing the customers-domain landing files (`customers.csv`, `products.csv`,
`customer_profiles.csv` and the daily `transactions/d=YYYY-MM-DD/transactions.json` JSON Lines files) with
the dirt real feeds carry, plus the ground truth written beside them in `_truth/` (planted personas, clean
profiles and mobiles, a manifest of every planted transaction dirt line) so tests can check the pipeline
finds what was planted. Pure NumPy/Polars, no Dagster: the asset that calls this lives elsewhere.

Purchases are generated vectorised, one day at a time, so the "large" scale (30M purchases) stays within a
few hundred MB. The same seed, scale and first week give byte-identical files.

Run it by hand with `python -m custpipe_assets.sample.customers LANDING_DIR --scale medium`.
"""

from __future__ import annotations

import argparse
import codecs
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from phonenumbers import PhoneMetadata

from custpipe_assets.purchases.reference import LOYALTY_SCORE_RANGE


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
_HIGH_VALUE, _DORMANT = PERSONAS.index("high_value"), PERSONAS.index("dormant")
DORMANT_WEEKS = 2  # dormant customers buy only in the first two weeks

# Whole-file dirt sits on fixed day offsets from first_week (all inside the first two weeks).
CRLF_DAY, BOM_DAY, MISSING_DAY, EMPTY_DAY = 1, 2, 4, 9
LINE_DIRT_DAYS = 14  # line dirt lands in the first two weeks, so even the small sample holds every kind
COPIES_PER_RECIPE = 3

# Each recipe plants one line; several recipes share a manifest `kind`.
_RECIPE_KIND: dict[str, str] = {
    "malformed_json": "malformed_json",
    "missing_customer_id": "missing_field",
    "missing_price": "missing_field",
    "wrong_type": "wrong_type",
    "duplicate_same_day": "duplicate",
    "duplicate_previous_day": "duplicate",
    "unknown_product": "unknown_product",
    "unknown_customer": "unknown_customer",
    "zero_price": "zero_price",
    "negative_price": "negative_price",
    "blank_line": "blank_line",
    "empty_basket": "empty_basket",
}
# Recipes that spoil a freshly generated purchase (a "carrier") rather than copying or inserting a blank line.
_SPOILING_RECIPES = frozenset(_RECIPE_KIND) - {"duplicate_same_day", "duplicate_previous_day", "blank_line"}

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

CATEGORIES: dict[str, tuple[tuple[float, float], tuple[str, ...], tuple[str, ...]]] = {
    # category: ((lowest, highest) list price, adjectives, nouns)
    "grocery": (
        (1, 15),
        ("Organic", "Fresh", "Free Range", "Wholegrain", "Smoked", "Sparkling", "Classic", "Roasted"),
        (
            "Coffee Beans",
            "Olive Oil",
            "Pasta",
            "Granola",
            "Cheddar",
            "Orange Juice",
            "Dark Chocolate",
            "Green Tea",
            "Honey",
            "Rice",
        ),
    ),
    "beauty": (
        (3, 60),
        ("Hydrating", "Vitamin C", "Matte", "Gentle", "Nourishing", "Sheer", "Charcoal", "Rose"),
        (
            "Face Cream",
            "Shampoo",
            "Lipstick",
            "Serum",
            "Body Lotion",
            "Cleanser",
            "Sunscreen",
            "Hand Soap",
            "Face Mask",
            "Conditioner",
        ),
    ),
    "books": (
        (5, 40),
        ("Illustrated", "Paperback", "Hardback", "Pocket", "Collector's", "Revised", "Annotated", "Complete"),
        (
            "Cookbook",
            "Thriller",
            "Atlas",
            "Biography",
            "Poetry Collection",
            "Travel Guide",
            "History",
            "Science Fiction Novel",
            "Children's Story",
            "Garden Handbook",
        ),
    ),
    "toys": (
        (5, 120),
        ("Wooden", "Magnetic", "Remote Control", "Plush", "Glow-in-the-Dark", "Educational", "Mini", "Giant"),
        (
            "Puzzle",
            "Building Blocks",
            "Car",
            "Teddy Bear",
            "Board Game",
            "Train Set",
            "Kite",
            "Doll",
            "Robot",
            "Art Kit",
        ),
    ),
    "clothing": (
        (8, 150),
        ("Cotton", "Linen", "Wool", "Slim Fit", "Waterproof", "Denim", "Striped", "Hooded"),
        ("T-Shirt", "Jacket", "Jeans", "Jumper", "Shirt", "Dress", "Socks", "Scarf", "Shorts", "Coat"),
    ),
    "sports": (
        (8, 300),
        ("Pro", "Lightweight", "Adjustable", "Training", "Trail", "Yoga", "Carbon", "Grip"),
        (
            "Running Shoes",
            "Dumbbell Set",
            "Yoga Mat",
            "Water Bottle",
            "Bike Helmet",
            "Tennis Racket",
            "Football",
            "Resistance Bands",
            "Gym Bag",
            "Skipping Rope",
        ),
    ),
    "home": (
        (6, 250),
        ("Ceramic", "Bamboo", "Cast Iron", "Glass", "Scented", "Velvet", "Oak", "Stainless Steel"),
        (
            "Mug",
            "Frying Pan",
            "Candle",
            "Cushion",
            "Vase",
            "Lamp",
            "Storage Box",
            "Towel Set",
            "Cutting Board",
            "Kettle",
        ),
    ),
    "electronics": (
        (15, 1200),
        ("Wireless", "Bluetooth", "Smart", "Portable", "4K", "Noise Cancelling", "Compact", "USB-C"),
        (
            "Headphones",
            "Speaker",
            "Charger",
            "Monitor",
            "Keyboard",
            "Mouse",
            "Webcam",
            "Power Bank",
            "Tablet",
            "Smartwatch",
        ),
    ),
}

FIRST_NAMES = (
    "Oliver",
    "Amelia",
    "George",
    "Isla",
    "Harry",
    "Ava",
    "Noah",
    "Mia",
    "Jack",
    "Ivy",
    "Leo",
    "Lily",
    "Arthur",
    "Freya",
    "Muhammad",
    "Grace",
    "Oscar",
    "Sophia",
    "Charlie",
    "Florence",
    "Jacob",
    "Emily",
    "Thomas",
    "Ella",
    "Alfie",
    "Poppy",
    "Henry",
    "Evie",
    "William",
    "Isabella",
    "Aarav",
    "Priya",
    "Chloe",
    "Samuel",
    "Zara",
    "Daniel",
    "Ruby",
    "Joseph",
    "Hannah",
    "Ethan",
)
LAST_NAMES = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Thomas",
    "Clarke",
    "Jackson",
    "Wood",
    "Harris",
    "Edwards",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Hughes",
    "Moore",
    "Clark",
    "King",
    "Harrison",
    "Lewis",
    "Baker",
    "Lee",
    "Allen",
    "Morris",
    "Khan",
)
GENDER_SPELLINGS = {"M": ("M", "male", "Male", "man"), "F": ("F", "female", "f", "Woman")}
JOINED_AT_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%-d %b %Y", "%Y%m%d", "%Y-%m-%dT%H:%M:%S")
JOINED_AT_FORMAT_SHARE = (0.40, 0.20, 0.15, 0.10, 0.15)
MOBILE_STYLES = 4  # "+44 7700 900123", "07700900123", "0044 7700 900123", "(07700) 900-123"
PROFILE_DUPLICATE_SHARE, PROFILE_GAP_SHARE = 0.03, 0.05  # duplicated customers; blank ages, blank incomes
BLANK_GENDER_SHARE = 0.03
JOINED_WITHIN_DAYS = 5 * 365  # customers joined up to five years before the first week

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

    ids = _IdFormat(chosen)
    personas = _assign_personas(_rng(seed, "personas"), chosen.customers)
    catalogue = _make_catalogue(_rng(seed, "products"), chosen.products, ids)
    _write_revolve_csv(catalogue.frame, landing_dir / "products.csv")
    customer_rows = _write_customers(landing_dir, _rng(seed, "customers"), personas, ids)
    profile_rows = _write_profiles(landing_dir, _rng(seed, "profiles"), personas, ids, first_week)
    purchases, lines, folders, dirt = _write_transactions(
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


_STREAMS = ("personas", "products", "customers", "profiles", "shopping", "dirt", "day")


def _rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    """One independent random stream per concern, so changing one file's recipe leaves the others' bytes alone."""
    return np.random.default_rng([seed, _STREAMS.index(stream), *extra])


class _IdFormat:
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


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split an integer total in proportion to weights, exactly (largest remainder), so counts add up."""
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    shortfall = int(total - counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:shortfall]] += 1
    return counts


def _assign_personas(rng: np.random.Generator, customers: int) -> np.ndarray:
    """Persona code per customer (index into PERSONAS), in exactly the planned shares."""
    counts = _apportion(customers, np.array([traits.share for traits in PERSONA_TRAITS.values()]))
    personas = np.repeat(np.arange(len(PERSONAS), dtype=np.int8), counts)
    rng.shuffle(personas)
    return personas


def _persona_array(field: str) -> np.ndarray:
    """One PersonaTraits field as an array indexed by persona code, for vectorised lookups."""
    return np.array([getattr(traits, field) for traits in PERSONA_TRAITS.values()])


@dataclass(frozen=True)
class _Catalogue:
    frame: pl.DataFrame  # products.csv
    price_cents: np.ndarray
    decimal_priced: np.ndarray  # False: whole-number price like 506, True: 2-decimal price like 12.99
    choice_cdf: np.ndarray  # per-persona product CDFs, row p shifted by +p and flattened (see pick)

    def pick(self, rng: np.random.Generator, persona: np.ndarray) -> np.ndarray:
        """A product index per basket line, drawn from that customer's persona preferences in one searchsorted."""
        products = len(self.price_cents)
        found = np.searchsorted(self.choice_cdf, rng.random(len(persona)) + persona, side="right")
        return np.minimum(found - persona.astype(np.int64) * products, products - 1)


def _make_catalogue(rng: np.random.Generator, count: int, ids: _IdFormat) -> _Catalogue:
    names = list(CATEGORIES)
    category = np.arange(count) % len(names)
    rng.shuffle(category)
    adjective = rng.integers(0, 8, count)
    noun = rng.integers(0, 10, count)
    descriptions = [
        f"{CATEGORIES[names[c]][1][a]} {CATEGORIES[names[c]][2][n]}"
        for c, a, n in zip(category, adjective, noun, strict=False)
    ]
    low, high = (np.array([CATEGORIES[name][0][end] for name in names], dtype=float)[category] for end in (0, 1))
    price = np.exp(rng.uniform(np.log(low), np.log(high)))
    decimal_priced = rng.random(count) < 0.6
    ends_in_99 = rng.random(count) < 0.5
    price_cents = np.where(
        decimal_priced,
        np.where(ends_in_99, np.floor(price) * 100 + 99, np.rint(price * 100)),
        np.maximum(np.rint(price), 1) * 100,
    ).astype(np.int64)

    weights = price_cents[None, :] ** _persona_array("price_exponent")[:, None]
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    frame = pl.DataFrame(
        {"index": np.arange(count), "description": descriptions, "category": [names[c] for c in category]}
    ).select(product_id=ids.product_expr("index"), product_description="description", product_category="category")
    return _Catalogue(frame, price_cents, decimal_priced, (cdf + np.arange(len(PERSONAS))[:, None]).ravel())


def _write_customers(landing_dir: Path, rng: np.random.Generator, personas: np.ndarray, ids: _IdFormat) -> int:
    """customers.csv as the real Revolve export writes it: `\\r\\r\\n` line ends, whole-number loyalty scores 1..10.

    Planted dirt: one `n/a` score, one score in the old generator's 0..1 shape (`0.734`), one out of range (`11`)
    and one exact duplicate row; returns data lines written.
    """
    count = len(personas)
    alpha, beta = (np.array([t.loyalty_beta[i] for t in PERSONA_TRAITS.values()])[personas] for i in (0, 1))
    low, high = LOYALTY_SCORE_RANGE
    steps = high - low + 1  # equal-width bins of the persona's beta draw, so both ends are as likely as the rest
    scores = low + np.minimum((rng.beta(alpha, beta) * steps).astype(np.int64), steps - 1)
    frame = pl.DataFrame({"index": np.arange(count), "loyalty": scores}).select(
        customer_id=ids.customer_expr("index"), loyalty_score=pl.col("loyalty").cast(pl.String)
    )
    not_a_number, old_shape, out_of_range, duplicated = (int(i) for i in rng.choice(count, size=4, replace=False))
    row = pl.int_range(pl.len())
    frame = frame.with_columns(
        loyalty_score=pl.when(row == not_a_number)
        .then(pl.lit("n/a"))
        .when(row == old_shape)
        .then(pl.lit("0.734"))
        .when(row == out_of_range)
        .then(pl.lit(str(high + 1)))
        .otherwise("loyalty_score")
    )
    copy_at = int(rng.integers(duplicated + 1, count + 1))
    frame = pl.concat([frame[:copy_at], frame[duplicated : duplicated + 1], frame[copy_at:]])
    _write_revolve_csv(frame, landing_dir / "customers.csv")
    return frame.height


def _write_revolve_csv(frame: pl.DataFrame, path: Path) -> None:
    """A CSV with the real Revolve starter files' line ends, `\\r\\r\\n` after every line, the header included."""
    path.write_bytes(frame.write_csv(line_terminator="\r\r\n").encode("utf-8"))


def _unique_gb_mobiles(rng: np.random.Generator, count: int) -> np.ndarray:
    """Distinct national numbers (10 digits, leading 7) that libphonenumber's own metadata calls GB mobiles."""
    pattern = "^(?:" + PhoneMetadata.metadata_for_region("GB").mobile.national_number_pattern + ")$"
    found = np.empty(0, dtype=np.int64)
    while len(found) < count:
        candidates = 7_000_000_000 + rng.integers(0, 1_000_000_000, size=2 * (count - len(found)) + 64)
        valid = candidates[pl.Series(candidates).cast(pl.String).str.contains(pattern).to_numpy()]
        pooled = np.concatenate([found, valid])
        _, first_seen = np.unique(pooled, return_index=True)
        found = pooled[np.sort(first_seen)]
    return found[:count]


def _pick(rng: np.random.Generator, population: int, share: float) -> np.ndarray:
    """A mask choosing round(share * population) rows (at least one), so tiny scales still get the dirt."""
    mask = np.zeros(population, dtype=bool)
    mask[rng.choice(population, size=max(1, round(share * population)), replace=False)] = True
    return mask


def _a_few(population: int) -> int:
    """How many rows get a rare kind of dirt (impossible age, `12k` income, unparseable mobile)."""
    return max(2, population // 1000)


def _profile_text(
    truth: pl.DataFrame, mobile_style: np.ndarray, date_style: np.ndarray, name_style: np.ndarray, gender: np.ndarray
) -> pl.DataFrame:
    """customer_profiles.csv columns for the given true values, each field written in the given style."""
    number = pl.col("mobile").cast(pl.String)
    head, tail = number.str.slice(0, 4), number.str.slice(4)
    mobile = (
        pl.when(pl.col("mobile_style") == 0)
        .then(pl.concat_str(pl.lit("+44 "), head, pl.lit(" "), tail))
        .when(pl.col("mobile_style") == 1)
        .then(pl.concat_str(pl.lit("0"), number))
        .when(pl.col("mobile_style") == 2)
        .then(pl.concat_str(pl.lit("0044 "), head, pl.lit(" "), tail))
        .otherwise(
            pl.concat_str(pl.lit("(0"), head, pl.lit(") "), number.str.slice(4, 3), pl.lit("-"), number.str.slice(7))
        )
    )
    joined_at = pl.when(pl.col("date_style") == 0).then(pl.col("joined").dt.strftime(JOINED_AT_FORMATS[0]))
    for style, form in enumerate(JOINED_AT_FORMATS[1:], start=1):
        joined_at = joined_at.when(pl.col("date_style") == style).then(pl.col("joined").dt.strftime(form))
    full_name = pl.concat_str(pl.col("first"), pl.lit(" "), pl.col("last"))
    name = (
        pl.when(pl.col("name_style") == 1)
        .then(full_name.str.to_uppercase())
        .when(pl.col("name_style") == 2)
        .then(pl.concat_str(pl.col("last"), pl.lit(", "), pl.col("first")))
        .otherwise(full_name)
    )
    return truth.with_columns(
        mobile_style=pl.Series(mobile_style),
        date_style=pl.Series(date_style),
        name_style=pl.Series(name_style),
    ).select(
        "customer_id",
        name=name,
        age=pl.col("age").cast(pl.String),
        income=pl.col("income").cast(pl.String),
        mobile=mobile,
        gender=pl.Series(gender.tolist(), dtype=pl.String),
        joined_at=joined_at,
    )


def _blank_where(column: str, mask: np.ndarray) -> pl.Expr:
    """Blank (null, written as an empty CSV field) the masked rows of a column."""
    return pl.when(pl.lit(pl.Series(mask))).then(pl.lit(None, pl.String)).otherwise(pl.col(column)).alias(column)


def _replace_where(column: str, rows: np.ndarray, replacements: tuple[str, ...]) -> pl.Expr:
    """Overwrite the given rows of a text column, cycling through the replacement values."""
    value = np.full(len(rows), None, dtype=object)
    chosen = np.flatnonzero(rows)
    value[chosen] = [replacements[i % len(replacements)] for i in range(len(chosen))]
    return pl.coalesce(pl.lit(pl.Series(value.tolist(), dtype=pl.String)), pl.col(column)).alias(column)


def _spell_gender(rng: np.random.Generator, gender: np.ndarray) -> np.ndarray:
    """The true M/F written the many ways exports spell it, or left blank."""
    spelling = rng.integers(0, 4, len(gender))
    spelled = np.where(
        gender == "M",
        np.array(GENDER_SPELLINGS["M"], dtype=object)[spelling],
        np.array(GENDER_SPELLINGS["F"], dtype=object)[spelling],
    )
    spelled[(gender == "") | (rng.random(len(gender)) < BLANK_GENDER_SHARE)] = None
    return spelled


def _write_profiles(
    landing_dir: Path, rng: np.random.Generator, personas: np.ndarray, ids: _IdFormat, first_week: date
) -> int:
    """customer_profiles.csv with duplicates, gaps and mixed formats, plus the clean truth; returns data lines."""
    count = len(personas)
    age = np.clip(np.rint(rng.normal(_persona_array("age_mean")[personas], _persona_array("age_sd")[personas])), 18, 90)
    income = np.rint(rng.lognormal(np.log(_persona_array("income_median")[personas]), 0.35) / 500) * 500
    joined_seconds = (
        (first_week - date(1970, 1, 1)).days * 86_400
        - rng.integers(1, JOINED_WITHIN_DAYS + 1, count) * 86_400
        + rng.integers(7 * 3600, 22 * 3600, count)
    )
    truth = pl.DataFrame(
        {
            "index": np.arange(count),
            "first": np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), count)],
            "last": np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), count)],
            "age": age.astype(np.int64),
            "income": income.astype(np.int64),
            "gender": rng.choice(np.array(["M", "F", ""]), p=[0.49, 0.49, 0.02], size=count),
            "joined": joined_seconds * 1_000_000,
            "mobile": _unique_gb_mobiles(rng, count),
            "persona": np.array(PERSONAS)[personas],
        }
    ).with_columns(customer_id=ids.customer_expr("index"), joined=pl.col("joined").cast(pl.Datetime("us")))
    truth = truth.with_columns(
        # the datetime above is only for joined_at's "2019-03-01T10:22:00" style; the true join date is its day
        joined_on=pl.col("joined").dt.date(),
        mobile_e164=pl.concat_str(pl.lit("+44"), pl.col("mobile").cast(pl.String)),
    )

    date_style = rng.choice(len(JOINED_AT_FORMATS), p=JOINED_AT_FORMAT_SHARE, size=count)
    mobile_style = rng.integers(0, MOBILE_STYLES, count)
    gender = truth["gender"].to_numpy()
    plain_names = np.zeros(count, dtype=np.int64)
    primary = _profile_text(truth, mobile_style, date_style, plain_names, _spell_gender(rng, gender))
    primary = primary.with_columns(
        _blank_where("age", _pick(rng, count, PROFILE_GAP_SHARE)),
        _blank_where("income", _pick(rng, count, PROFILE_GAP_SHARE)),
    ).with_columns(
        _replace_where("age", _pick(rng, count, _a_few(count) / count), ("-3", "250")),
        _replace_where("income", _pick(rng, count, _a_few(count) / count), ("n/a", "12k")),
        _replace_where("mobile", _pick(rng, count, _a_few(count) / count), ("12", "call me")),
    )

    # A second record for some customers: same person, other formats, and every other one with a field blank.
    twice = np.flatnonzero(_pick(rng, count, PROFILE_DUPLICATE_SHARE))
    again = _profile_text(
        truth[twice],
        (mobile_style[twice] + rng.integers(1, MOBILE_STYLES, len(twice))) % MOBILE_STYLES,
        (date_style[twice] + rng.integers(1, len(JOINED_AT_FORMATS), len(twice))) % len(JOINED_AT_FORMATS),
        rng.integers(0, 3, len(twice)),
        _spell_gender(rng, gender[twice]),
    )
    fields = ("name", "age", "income", "mobile", "gender", "joined_at")
    blank_field = rng.choice(np.array(fields), size=len(twice))
    has_blank = np.arange(len(twice)) % 2 == 0
    again = again.with_columns(_blank_where(field, has_blank & (blank_field == field)) for field in fields)
    position = np.concatenate([np.arange(count, dtype=float), rng.integers(0, count, len(twice)) + 0.5])
    profiles = pl.concat([primary, again])[np.argsort(position, kind="stable")]
    profiles.write_csv(landing_dir / "customer_profiles.csv")

    truth_dir = landing_dir / "_truth"
    truth.select("customer_id", "persona").write_csv(truth_dir / "personas.csv")
    truth.select("customer_id", "mobile_e164", "persona").write_csv(truth_dir / "store_customers.csv")
    # the stand-in store system's own state (what its API serves from), apart from the answer key
    (truth_dir.parent / "_stand_in").mkdir(exist_ok=True)
    truth.select("customer_id", "mobile_e164", "persona").write_csv(
        truth_dir.parent / "_stand_in" / "store_customers.csv"
    )
    truth.select(
        "customer_id",
        name=pl.concat_str(pl.col("first"), pl.lit(" "), pl.col("last")),
        age="age",
        income="income",
        gender=pl.when(pl.col("gender") == "").then(None).otherwise("gender"),
        joined_at="joined_on",
        mobile_e164="mobile_e164",
    ).write_csv(truth_dir / "profiles.csv")
    return profiles.height


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
    rate = _persona_array("purchases_per_active_week")[personas] * rng.lognormal(0.0, 0.35, len(personas))
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
        random_purchases=_apportion(scale.transactions - len(personas), day_weight),
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
    catalogue: _Catalogue,
    ids: _IdFormat,
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


def _spoil(recipe: str, carrier: str, unknown_customer: str, unknown_product: str) -> str:
    """Turn a realistic purchase line into the dirt the recipe names."""
    if recipe == "malformed_json":
        return carrier[: len(carrier) * 2 // 3]
    purchase = json.loads(carrier)
    first_item = purchase["basket"][0]
    match recipe:
        case "missing_customer_id":
            del purchase["customer_id"]
        case "missing_price":
            del first_item["price"]
        case "wrong_type":
            first_item["price"] = "abc"
        case "unknown_product":
            first_item["product_id"] = unknown_product
        case "unknown_customer":
            purchase["customer_id"] = unknown_customer
        case "zero_price":
            first_item["price"] = 0
        case "negative_price":
            first_item["price"] = -first_item["price"]
        case "empty_basket":
            purchase["basket"] = []
    return json.dumps(purchase)


def _plan_line_dirt(rng: np.random.Generator, days: int) -> dict[int, list[str]]:
    """Which recipes land on which day: COPIES_PER_RECIPE of each, spread over the first two weeks."""
    dirt_days = [d for d in range(min(LINE_DIRT_DAYS, days)) if d not in (MISSING_DAY, EMPTY_DAY)]
    # a copy from "the previous day" must stay in the same week and find purchases there
    follows_a_dirt_day = [d for d in dirt_days if d % 7 != 0 and d - 1 in dirt_days]
    plan: dict[int, list[str]] = {}
    for recipe in _RECIPE_KIND:
        candidates = follows_a_dirt_day if recipe == "duplicate_previous_day" else dirt_days
        for day in rng.choice(candidates, size=COPIES_PER_RECIPE):
            plan.setdefault(int(day), []).append(recipe)
    return plan


def _plant_line_dirt(
    rng: np.random.Generator,
    clean: list[str],
    carriers: list[str],
    recipes: list[str],
    previous_day_clean: list[str],
    unknown_ids: list[tuple[str, str]],
) -> tuple[list[str], list[tuple[int, str]]]:
    """Insert the day's dirt lines among its clean lines; returns all lines and (1-based line, kind) per dirt line.

    Each dirt line goes before clean line `slot`; a same-day duplicate always lands after the line it copies
    and a blank line never first or last.
    """
    placed: list[tuple[int, int, str, str]] = []
    for order, recipe in enumerate(recipes):
        if recipe == "blank_line":
            slot, text = int(rng.integers(1, len(clean))), ""
        elif recipe == "duplicate_same_day":
            source = int(rng.integers(0, len(clean)))
            slot, text = int(rng.integers(source + 1, len(clean) + 1)), clean[source]
        elif recipe == "duplicate_previous_day":
            slot = int(rng.integers(0, len(clean) + 1))
            text = previous_day_clean[int(rng.integers(0, len(previous_day_clean)))]
        else:
            unknown_customer, unknown_product = unknown_ids.pop(0)
            slot = int(rng.integers(0, len(clean) + 1))
            text = _spoil(recipe, carriers.pop(0), unknown_customer, unknown_product)
        placed.append((slot, order, text, _RECIPE_KIND[recipe]))
    lines: list[str] = []
    planted: list[tuple[int, str]] = []
    taken = 0
    for slot, _, text, kind in sorted(placed):
        lines.extend(clean[taken:slot])
        taken = slot
        lines.append(text)
        planted.append((len(lines), kind))
    lines.extend(clean[taken:])
    return lines, planted


def _write_transactions(
    landing_dir: Path,
    seed: int,
    scale: Scale,
    first_week: date,
    personas: np.ndarray,
    catalogue: _Catalogue,
    ids: _IdFormat,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int, int, int]:
    """The daily JSON Lines files plus _truth/transaction_dirt.csv; returns (purchases, lines, folders, dirt rows)."""
    plan = _plan_shopping(_rng(seed, "shopping"), scale, personas)
    dirt_plan = _plan_line_dirt(_rng(seed, "dirt"), scale.days)
    minute_weight = np.repeat(HOUR_WEIGHT / HOUR_WEIGHT.sum() / 60, 60)
    unknown_serial = iter(range(1, len(_RECIPE_KIND) * COPIES_PER_RECIPE + 1))
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

        rng = _rng(seed, "day", day_index)
        recipes = dirt_plan.get(day_index, [])
        spoiled = [recipe for recipe in recipes if recipe in _SPOILING_RECIPES]
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
        all_lines, planted = _plant_line_dirt(rng, clean, carriers, recipes, previous_day_clean, unknown_ids)

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
