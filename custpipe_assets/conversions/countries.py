"""Country names from either side to ISO 3166-1 alpha-2 codes.

What belongs here: the name -> code normalization both sources share. pycountry does the work (exact lookup of
names, official names, common names and codes, then its fuzzy search); the alias table only holds spellings
pycountry cannot resolve. A name that is not resolved with certainty gives None, never a guess: a fuzzy result
is accepted only for names of at least four letters that start a word in exactly one country's own names, which
keeps "Russia" -> RU but refuses "Kosovo" (a subdivision of Serbia in pycountry), "Korea" (two countries) and
"UK" (fuzzy search would pick Ukraine).
"""

from __future__ import annotations

import re
from functools import lru_cache

import polars as pl
import pycountry

# Spellings pycountry's lookup and fuzzy search both miss (a test keeps this table honest).
COUNTRY_ALIASES: dict[str, str] = {
    "taiwan (province of china)": "TW",
    "turkey": "TR",
    "ivory coast": "CI",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "uae": "AE",
    "democratic republic of the congo": "CD",
}


@lru_cache(maxsize=4096)
def country_code(name: str | None) -> str | None:
    """ISO alpha-2 code for a country name or code, or None when it cannot be resolved with certainty."""
    if name is None:
        return None
    cleaned = " ".join(name.split())
    if not cleaned:
        return None
    alias = COUNTRY_ALIASES.get(cleaned.casefold())
    if alias:
        return alias
    try:
        return pycountry.countries.lookup(cleaned).alpha_2
    except LookupError:
        return _unambiguous_fuzzy_match(cleaned)


FUZZY_MIN_LENGTH = 4


def _unambiguous_fuzzy_match(name: str) -> str | None:
    if len(name) < FUZZY_MIN_LENGTH:
        return None
    try:
        candidates = pycountry.countries.search_fuzzy(name)
    except LookupError:
        return None
    word = re.compile(rf"\b{re.escape(name.casefold())}")
    containing = [
        country
        for country in candidates
        if any(
            word.search(getattr(country, attribute, "").casefold())
            for attribute in ("name", "official_name", "common_name")
        )
    ]
    return containing[0].alpha_2 if len(containing) == 1 else None


def with_country_code(frame: pl.DataFrame, name_column: str, code_column: str) -> pl.DataFrame:
    """Add code_column next to the raw name column (resolved once per distinct name)."""
    names = frame.get_column(name_column).unique().drop_nulls().sort().to_list()
    lookup = pl.DataFrame(
        {name_column: names, code_column: [country_code(name) for name in names]},
        schema={name_column: pl.String, code_column: pl.String},
    )
    return frame.join(lookup, on=name_column, how="left", maintain_order="left")


def unresolved_country_names(frame: pl.DataFrame, name_column: str, code_column: str) -> pl.DataFrame:
    """Raw names that did not resolve, with how many rows carry each: what a data check reports."""
    return (
        frame.filter(pl.col(name_column).is_not_null() & pl.col(code_column).is_null())
        .group_by(pl.col(name_column).alias("country_name"))
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .sort(["rows", "country_name"], descending=[True, False])
    )
