"""Customer profile cleaning: hand-made records with known answers, and the generator's independent truth.

The truth test reads `customer_profiles.csv` back with the csv module to decide, on its own, which customers
had a usable raw value, then compares the silver profile with `_truth/profiles.csv`.
"""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path
from statistics import median

import polars as pl
import pytest

from custpipe_assets.purchases import reference
from custpipe_assets.sample.customers import generate_customers_landing
from custpipe_assets.segmentation.profiles import (
    PROFILE_COLUMNS,
    PROFILE_ISSUE_REASONS,
    PROFILE_ISSUES_SCHEMA,
    PROFILES_FILE,
    SILVER_PROFILES_SCHEMA,
    clean_profiles,
    normalize_mobiles,
)

# Valid GB mobiles (libphonenumber's own patterns) written the ways the landing file writes them.
MOBILE_A, MOBILE_C = "+447852722458", "+447905754782"


def bronze(*rows: dict[str, str | None]) -> pl.DataFrame:
    """Bronze profile rows as text, lines numbered from 2 (line 1 is the header)."""
    filled = [{column: row.get(column) for column in PROFILE_COLUMNS} for row in rows]
    frame = pl.DataFrame(filled, schema=dict.fromkeys(PROFILE_COLUMNS, pl.String), orient="row")
    return frame.with_columns(
        pl.lit(PROFILES_FILE).alias("source_file"),
        pl.int_range(2, len(rows) + 2, dtype=pl.Int32).alias("line_number"),
    )


def person(customer_id: str, **fields: str | None) -> dict[str, str | None]:
    defaults = {
        "name": "Ada Lovelace",
        "age": "40",
        "income": "40000",
        "mobile": MOBILE_A,
        "gender": "F",
        "joined_at": "2019-03-01",
    }
    return {"customer_id": customer_id, **defaults, **fields}


def issues_of(issues: pl.DataFrame) -> list[tuple[int, str, str | None, str]]:
    return issues.select("line_number", "field", "raw_value", "reason").rows()


def test_every_documented_format_is_standardised() -> None:
    joined = ["2019-03-01", "01/03/2019", "1 Mar 2019", "20190301", "2019-03-01T10:22:00"]
    mobiles = ["+44 7852 722458", "07852722458", "0044 7852 722458", "(07852) 722-458", "+447852722458"]
    genders = ["F", "female", "Woman", "M", "man"]
    rows = [
        person(f"C{index}", joined_at=when, mobile=mobile, gender=gender)
        for index, (when, mobile, gender) in enumerate(zip(joined, mobiles, genders, strict=True))
    ]
    profiles, issues = clean_profiles(bronze(*rows))
    assert issues.is_empty()
    assert profiles.schema == SILVER_PROFILES_SCHEMA
    assert profiles["joined_at"].to_list() == [date(2019, 3, 1)] * 5
    assert profiles["mobile_e164"].to_list() == [MOBILE_A] * 5
    assert profiles.select("gender", "gender_female").rows() == [("F", 1), ("F", 1), ("F", 1), ("M", 0), ("M", 0)]


def test_bad_values_become_missing_with_an_issue_and_the_customer_is_kept() -> None:
    profiles, issues = clean_profiles(
        bronze(
            person("C1", age="-3", income="n/a", mobile="12"),
            person("C2", age="250", income="12k", mobile="call me", gender="robot", joined_at="yesterday"),
            person("C3", age="15", income="-5", gender=None, mobile=None),
            person("C4", age="thirty", income="nan"),
            person("C5", age="110", income="0"),
        )
    )
    assert profiles["customer_id"].to_list() == ["C1", "C2", "C3", "C4", "C5"]
    assert issues_of(issues) == [
        (2, "age", "-3", "age_out_of_range"),
        (2, "income", "n/a", "income_not_a_number"),
        (2, "mobile", "12", "invalid_mobile"),
        (3, "age", "250", "age_out_of_range"),
        (3, "gender", "robot", "gender_unrecognised"),
        (3, "income", "12k", "income_not_a_number"),
        (3, "joined_at", "yesterday", "joined_at_unparseable"),
        (3, "mobile", "call me", "invalid_mobile"),
        (4, "age", "15", "age_out_of_range"),
        (4, "income", "-5", "income_negative"),
        (5, "age", "thirty", "age_not_an_integer"),
        (5, "income", "nan", "income_not_a_number"),
    ]
    assert set(issues["reason"]) <= set(PROFILE_ISSUE_REASONS)
    assert issues.schema == PROFILE_ISSUES_SCHEMA
    by_id = {row["customer_id"]: row for row in profiles.to_dicts()}
    assert [by_id[c]["age_imputed"] for c in ("C1", "C2", "C3", "C4", "C5")] == [True, True, True, True, False]
    assert by_id["C5"]["age"] == 110 and by_id["C5"]["income"] == 0.0
    assert by_id["C2"]["mobile_e164"] is None and by_id["C2"]["joined_at"] is None and by_id["C2"]["gender"] is None
    # a blank gender is unknown without being an issue; unknown counts as not-female
    assert by_id["C3"]["gender"] is None and by_id["C3"]["gender_female"] == 0


def test_duplicates_merge_to_the_first_usable_value_and_every_extra_record_is_logged() -> None:
    profiles, issues = clean_profiles(
        bronze(
            person("C1", age=None, mobile="(07852) 722-458", joined_at="01/03/2019"),
            person("C2", name="Grace Hopper", age="50", mobile=MOBILE_C),
            person("C1", age="250", mobile="0044 7363 230310", joined_at="2019-03-01T08:00:00"),  # 250 is not usable
            person("C1", name="LOVELACE, ADA", age="41", gender="female", joined_at="20190301"),
            person("C1", age="42", gender=None),
        )
    )
    assert profiles["customer_id"].to_list() == ["C1", "C2"]
    merged = profiles.row(0, named=True)
    assert merged["age"] == 41 and not merged["age_imputed"]  # the first *usable* age, from line 5
    assert merged["mobile_e164"] == MOBILE_A  # the earliest line wins among usable values
    assert merged["name"] == "Ada Lovelace" and merged["joined_at"] == date(2019, 3, 1)
    assert (merged["line_number"], merged["merged_records"]) == (2, 4)
    assert issues_of(issues) == [
        (4, "age", "250", "age_out_of_range"),
        (4, "customer_id", "C1", "duplicate_record_merged"),
        (4, "mobile", "0044 7363 230310", "conflicting_duplicate"),
        (5, "customer_id", "C1", "duplicate_record_merged"),
        (6, "age", "42", "conflicting_duplicate"),
        (6, "customer_id", "C1", "duplicate_record_merged"),
    ]


def test_a_row_without_customer_id_is_logged_whole_and_not_kept() -> None:
    profiles, issues = clean_profiles(bronze(person("C1"), person("  ", name="Nobody", age="30")))
    assert profiles["customer_id"].to_list() == ["C1"]
    assert issues_of(issues) == [
        (3, "customer_id", f",Nobody,30,40000,{MOBILE_A},F,2019-03-01", "missing_customer_id"),
    ]


def test_missing_age_is_the_median_of_the_income_band_and_missing_income_the_overall_median() -> None:
    profiles, _ = clean_profiles(
        bronze(
            person("L1", age="20", income="10000"),
            person("L2", age="30", income="15000"),
            person("L3", age=None, income="12000"),  # band < 20k: median(20, 30) = 25
            person("H1", age="60", income="90000"),
            person("H2", age="70", income="100000"),
            person("H3", age="", income="80000"),  # band >= 75k: median(60, 70) = 65
            person("M1", age="44", income="40000"),
            person("X1", age=None, income=None),  # no band: overall median age
        )
    )
    by_id = {row["customer_id"]: row for row in profiles.to_dicts()}
    known_ages = [20, 30, 60, 70, 44]
    known_incomes = [10000, 15000, 12000, 90000, 100000, 80000, 40000]
    assert (by_id["L3"]["age"], by_id["H3"]["age"], by_id["X1"]["age"]) == (25, 65, round(median(known_ages)))
    assert by_id["X1"]["income"] == median(known_incomes) and by_id["X1"]["income_imputed"]
    assert [c for c, row in by_id.items() if row["age_imputed"]] == ["H3", "L3", "X1"]


def test_normalize_mobiles_keeps_nulls_and_foreign_numbers_and_rejects_invalid_ones() -> None:
    raw = pl.Series("mobile", ["07905 754782", None, "+33 6 12 34 56 78", "0044 7905 754782", "07700 900123", "7"])
    # 07700 900123 is in the range Ofcom keeps for drama, which libphonenumber calls invalid
    assert normalize_mobiles(raw).to_list() == [MOBILE_C, None, "+33612345678", MOBILE_C, None, None]


# --- against the generator's truth ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    landing = tmp_path_factory.mktemp("landing")
    generate_customers_landing(landing, seed=7, scale="small")
    return landing


def raw_records(landing: Path) -> dict[str, list[tuple[int, dict[str, str]]]]:
    """Raw profile records per customer with their line numbers, read by the csv module."""
    records: dict[str, list[tuple[int, dict[str, str]]]] = {}
    with (landing / PROFILES_FILE).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            records.setdefault(row["customer_id"], []).append((reader.line_num, row))
    return records


def test_clean_profiles_match_the_generators_truth(sample: Path) -> None:
    bronze_rows = reference.read_reference_csv(sample, PROFILES_FILE, PROFILE_COLUMNS)
    profiles, issues = clean_profiles(bronze_rows)
    truth = {row["customer_id"]: row for row in csv.DictReader((sample / "_truth" / "profiles.csv").open())}
    raw = raw_records(sample)
    assert sorted(profiles["customer_id"]) == sorted(raw) == sorted(truth)
    assert profiles["merged_records"].sum() == sum(len(records) for records in raw.values())

    for row in profiles.iter_rows(named=True):
        customer, records = truth[row["customer_id"]], [fields for _, fields in raw[row["customer_id"]]]

        def given(field: str) -> list[str]:
            return [fields[field] for fields in records if fields[field].strip()]  # noqa: B023  used in the loop

        mobiles = [text for text in given("mobile") if len(re.sub(r"\D", "", text)) >= 10]
        assert row["mobile_e164"] == (customer["mobile_e164"] if mobiles else None), row
        assert row["joined_at"] == (date.fromisoformat(customer["joined_at"]) if given("joined_at") else None), row
        assert row["gender"] == ((customer["gender"] or None) if given("gender") else None), row
        assert row["name"] == customer["name"], row
        usable_ages = [text for text in given("age") if text.isdigit() and 16 <= int(text) <= 110]
        assert row["age_imputed"] == (not usable_ages), row
        if usable_ages:
            assert row["age"] == int(customer["age"]), row
        usable_incomes = [text for text in given("income") if re.fullmatch(r"\d+(\.\d+)?", text)]
        assert row["income_imputed"] == (not usable_incomes), row
        if usable_incomes:
            assert row["income"] == float(customer["income"]), row

    # every issue points at a real line whose raw text it quotes
    lines = {line: fields for records in raw.values() for line, fields in records}
    for issue in issues.iter_rows(named=True):
        assert lines[issue["line_number"]][issue["field"]] == issue["raw_value"], issue
    planted = {"-3", "250", "n/a", "12k", "12", "call me"}
    assert planted <= set(issues.filter(pl.col("reason") != "duplicate_record_merged")["raw_value"])
