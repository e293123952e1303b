"""The sample product catalogue (`products.csv`): categories, names and prices, and each persona's preference
over the products (what a basket line draws from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from custpipe_assets.sample.customers_personas import PERSONAS, IdFormat, persona_array

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


@dataclass(frozen=True)
class Catalogue:
    frame: pl.DataFrame  # products.csv
    price_cents: np.ndarray
    decimal_priced: np.ndarray  # False: whole-number price like 506, True: 2-decimal price like 12.99
    choice_cdf: np.ndarray  # per-persona product CDFs, row p shifted by +p and flattened (see pick)

    def pick(self, rng: np.random.Generator, persona: np.ndarray) -> np.ndarray:
        """A product index per basket line, drawn from that customer's persona preferences in one searchsorted."""
        products = len(self.price_cents)
        found = np.searchsorted(self.choice_cdf, rng.random(len(persona)) + persona, side="right")
        return np.minimum(found - persona.astype(np.int64) * products, products - 1)


def make_catalogue(rng: np.random.Generator, count: int, ids: IdFormat) -> Catalogue:
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

    weights = price_cents[None, :] ** persona_array("price_exponent")[:, None]
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    frame = pl.DataFrame(
        {"index": np.arange(count), "description": descriptions, "category": [names[c] for c in category]}
    ).select(product_id=ids.product_expr("index"), product_description="description", product_category="category")
    return Catalogue(frame, price_cents, decimal_priced, (cdf + np.arange(len(PERSONAS))[:, None]).ravel())
