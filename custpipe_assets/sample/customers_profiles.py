"""`customers.csv` (loyalty scores) and `customer_profiles.csv` (names, ages, incomes, mobiles, genders, join
dates), each with the dirt the real exports carry, plus their clean truth in `_truth/` and the stand-in store
system's customer table in `_stand_in/`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from phonenumbers import PhoneMetadata

from custpipe_assets.purchases.reference import LOYALTY_SCORE_RANGE
from custpipe_assets.sample.customers_personas import PERSONA_TRAITS, PERSONAS, IdFormat, persona_array

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


def write_customers(landing_dir: Path, rng: np.random.Generator, personas: np.ndarray, ids: IdFormat) -> int:
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
    write_revolve_csv(frame, landing_dir / "customers.csv")
    return frame.height


def write_revolve_csv(frame: pl.DataFrame, path: Path) -> None:
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


def write_profiles(
    landing_dir: Path, rng: np.random.Generator, personas: np.ndarray, ids: IdFormat, first_week: date
) -> int:
    """customer_profiles.csv with duplicates, gaps and mixed formats, plus the clean truth; returns data lines."""
    count = len(personas)
    age = np.clip(np.rint(rng.normal(persona_array("age_mean")[personas], persona_array("age_sd")[personas])), 18, 90)
    income = np.rint(rng.lognormal(np.log(persona_array("income_median")[personas]), 0.35) / 500) * 500
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
