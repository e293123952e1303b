"""Customer profiles, pure transforms: bronze `customer_profiles.csv` rows -> one clean profile per customer + issues.

What belongs here: typing and standardising the profile fields (age, income, mobile, gender, join date, name),
merging duplicate records of a customer, imputing missing ages and incomes, and the mobile-number normaliser the
store purchases reuse. No Dagster.

A bad value never costs a customer their row: it becomes null (then imputed where a rule says so) and leaves an
issue row naming file, line, field, raw value and reason. Only a row without a customer_id is dropped, and it
is logged whole in the issues with reason `missing_customer_id`, and a record the CSV reader could not split is
logged whole under its read issue (field `record`).

Rules, each decided once here:
- Merging duplicates: per customer and field, the first usable value in file order wins (a blank or invalid value
  is not usable, so a later record fills a gap an earlier one left). Later usable values that differ are logged
  as `conflicting_duplicate`; every later record of a customer is logged once as `duplicate_record_merged`.
- Age: a whole number in 16..110, else missing. A missing age is imputed as the median known age of customers in
  the same income band (INCOME_BAND_EDGES), or the overall median when the income or the band's ages are unknown;
  rounded to whole years, flagged by `age_imputed`.
- Income: a finite number >= 0, else missing. A missing income is imputed as the overall median known income,
  flagged by `income_imputed`.
- Gender: `F`/`female`/`woman`/`w` -> `F`, `M`/`male`/`man` -> `M` (any case), blank -> null; anything else ->
  null plus an issue. `gender_female` is 1 for a known female and 0 otherwise: unknown gender counts as
  not-female (the `gender` column keeps the null, so "unknown" stays distinguishable).
- joined_at: the formats of JOINED_AT_FORMATS (day first for `01/03/2019`), as an ISO date; a time is dropped.
- Mobile: parsed by `phonenumbers` with default region GB and kept as E.164 when libphonenumber calls it a valid
  number; otherwise null plus an issue.
- Name: whitespace collapsed, `Last, First` turned into `First Last`, an all-capitals name title-cased.
"""

from __future__ import annotations

import phonenumbers
import polars as pl

from custpipe_assets.core.csv_reader import READ_ISSUES
from custpipe_assets.purchases.reference import raw_row

PROFILES_FILE = "customer_profiles.csv"
PROFILE_COLUMNS = ("customer_id", "name", "age", "income", "mobile", "gender", "joined_at")
DEFAULT_MOBILE_REGION = "GB"
AGE_RANGE = (16, 110)
INCOME_BAND_EDGES = (20_000, 35_000, 50_000, 75_000)  # bands: <20k, 20-35k, 35-50k, 50-75k, >=75k
JOINED_AT_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d %b %Y", "%Y%m%d", "%Y-%m-%dT%H:%M:%S")
GENDER_SPELLINGS = {"f": "F", "female": "F", "woman": "F", "w": "F", "m": "M", "male": "M", "man": "M"}

SILVER_PROFILES_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String,
        "name": pl.String,
        "age": pl.Int64,
        "age_imputed": pl.Boolean,
        "income": pl.Float64,
        "income_imputed": pl.Boolean,
        "gender": pl.String,
        "gender_female": pl.Int8,
        "mobile_e164": pl.String,
        "joined_at": pl.Date,
        "source_file": pl.String,  # the customer's earliest record
        "line_number": pl.Int32,
        "merged_records": pl.Int32,  # how many records of the file were merged into this row
    }
)
PROFILE_ISSUES_SCHEMA = pl.Schema(
    {
        "source_file": pl.String,
        "line_number": pl.Int32,
        "customer_id": pl.String,
        "field": pl.String,
        "raw_value": pl.String,
        "reason": pl.String,
    }
)
PROFILE_ISSUE_REASONS = (
    *READ_ISSUES,
    "missing_customer_id",
    "age_not_an_integer",
    "age_out_of_range",
    "income_not_a_number",
    "income_negative",
    "invalid_mobile",
    "gender_unrecognised",
    "joined_at_unparseable",
    "conflicting_duplicate",
    "duplicate_record_merged",
)
# Fields typed per record into `<field>_value` with a `<field>_reason` when a non-blank text is unusable.
_PARSED_FIELDS = ("name", "age", "income", "mobile", "gender", "joined_at")


def normalize_mobiles(raw: pl.Series, region: str = DEFAULT_MOBILE_REGION) -> pl.Series:
    """E.164 text per raw phone number; null when blank, unparseable or not a valid number.

    Each distinct text is parsed once (libphonenumber costs ~50 us a call), so repeats are free.
    """
    lookup = {text: _e164_or_none(text, region) for text in raw.drop_nulls().unique().to_list()}
    return raw.replace_strict(lookup, default=None, return_dtype=pl.String).alias(raw.name)


def _e164_or_none(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_profiles(bronze: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """silver.customer_profiles (one row per customer) and the profile issues log; see the module rules."""
    missing = [column for column in (*PROFILE_COLUMNS, "source_file", "line_number") if column not in bronze.columns]
    if missing:
        raise ValueError(f"bronze profiles lack column(s) {', '.join(missing)}")
    bronze = bronze.with_columns(  # frames built by hand (tests) may lack the reader's lineage columns
        pl.lit(None, pl.String).alias(column) for column in ("raw_line", "read_issue") if column not in bronze.columns
    )
    unreadable = bronze.filter(pl.col("read_issue").is_not_null())
    text = (
        bronze.filter(pl.col("read_issue").is_null())
        .select(
            *(_blank_to_null(column) for column in PROFILE_COLUMNS),
            pl.col("source_file").cast(pl.String),
            pl.col("line_number").cast(pl.Int32),
        )
        .sort("source_file", "line_number")
    )
    without_id = text.filter(pl.col("customer_id").is_null())
    records = _typed_records(text.filter(pl.col("customer_id").is_not_null()))
    merged = _merge_duplicates(records)
    issues = pl.concat(
        [
            _issue_rows(unreadable, "record", pl.col("raw_line"), pl.col("read_issue")),
            _missing_id_issues(without_id),
            _value_issues(records),
            _conflict_issues(records, merged),
            _merge_issues(records),
        ]
    )
    profiles = _impute(merged).select(SILVER_PROFILES_SCHEMA.names()).cast(dict(SILVER_PROFILES_SCHEMA))
    issues = issues.cast(dict(PROFILE_ISSUES_SCHEMA)).sort("source_file", "line_number", "field", "reason")
    return profiles.sort("customer_id"), issues


def _blank_to_null(column: str) -> pl.Expr:
    stripped = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped).alias(column)


def _typed_records(text: pl.DataFrame) -> pl.DataFrame:
    """Each record with `<field>_value` (typed, null when unusable) and `<field>_reason` (why, when not blank)."""
    age_value = pl.col("age").str.to_integer(strict=False)
    income_value = pl.col("income").cast(pl.Float64, strict=False)
    gender_value = pl.col("gender").str.to_lowercase().replace_strict(GENDER_SPELLINGS, default=None)
    joined_value = pl.coalesce(
        pl.col("joined_at").str.strptime(pl.Datetime("us"), form, strict=False).dt.date() for form in JOINED_AT_FORMATS
    )
    low, high = AGE_RANGE
    typed = text.with_columns(
        normalize_mobiles(text.get_column("mobile")).alias("mobile_value"),
        _standard_name(pl.col("name")).alias("name_value"),
        age_value.alias("age_parsed"),
        income_value.alias("income_parsed"),
        gender_value.alias("gender_value"),
        joined_value.alias("joined_at_value"),
    )
    return typed.with_columns(
        pl.when(pl.col("age").is_null())
        .then(None)
        .when(pl.col("age_parsed").is_null())
        .then(pl.lit("age_not_an_integer"))
        .when(~pl.col("age_parsed").is_between(low, high))
        .then(pl.lit("age_out_of_range"))
        .alias("age_reason"),
        pl.when(pl.col("income").is_null())
        .then(None)
        .when(pl.col("income_parsed").is_null() | ~pl.col("income_parsed").is_finite())
        .then(pl.lit("income_not_a_number"))
        .when(pl.col("income_parsed") < 0)
        .then(pl.lit("income_negative"))
        .alias("income_reason"),
        _reason_when_unusable("mobile", "invalid_mobile"),
        _reason_when_unusable("gender", "gender_unrecognised"),
        _reason_when_unusable("joined_at", "joined_at_unparseable"),
        pl.lit(None, pl.String).alias("name_reason"),
    ).with_columns(
        pl.when(pl.col("age_reason").is_null()).then(pl.col("age_parsed")).alias("age_value"),
        pl.when(pl.col("income_reason").is_null()).then(pl.col("income_parsed")).alias("income_value"),
    )


def _reason_when_unusable(field: str, reason: str) -> pl.Expr:
    """`<field>_reason`: the reason when the raw text is there but gave no `<field>_value`."""
    unusable = pl.col(field).is_not_null() & pl.col(f"{field}_value").is_null()
    return pl.when(unusable).then(pl.lit(reason)).alias(f"{field}_reason")


def _standard_name(name: pl.Expr) -> pl.Expr:
    """`SMITH, JOHN` and `Smith, John` -> `John Smith`; an all-capitals name is title-cased."""
    collapsed = name.str.replace_all(r"\s+", " ")
    reordered = (
        pl.when(collapsed.str.contains(","))
        .then(pl.concat_str(collapsed.str.extract(r",\s*(.*)$"), pl.lit(" "), collapsed.str.extract(r"^(.*?)\s*,")))
        .otherwise(collapsed)
        .str.strip_chars()
    )
    return pl.when(reordered == reordered.str.to_uppercase()).then(reordered.str.to_titlecase()).otherwise(reordered)


def _merge_duplicates(records: pl.DataFrame) -> pl.DataFrame:
    """One row per customer: per field the first usable value in file order (records arrive sorted by line)."""
    return records.group_by("customer_id", maintain_order=True).agg(
        *(pl.col(f"{field}_value").drop_nulls().first().alias(field) for field in _PARSED_FIELDS),
        pl.col("source_file").first(),
        pl.col("line_number").first(),
        pl.len().cast(pl.Int32).alias("merged_records"),
    )


def _issue_rows(frame: pl.DataFrame, field: str, raw_value: pl.Expr, reason: str | pl.Expr) -> pl.DataFrame:
    return frame.select(
        "source_file",
        "line_number",
        "customer_id",
        pl.lit(field).alias("field"),
        raw_value.alias("raw_value"),
        (pl.lit(reason) if isinstance(reason, str) else reason).alias("reason"),
    ).cast(dict(PROFILE_ISSUES_SCHEMA))


def _missing_id_issues(without_id: pl.DataFrame) -> pl.DataFrame:
    return _issue_rows(without_id, "customer_id", raw_row(PROFILE_COLUMNS), "missing_customer_id")


def _value_issues(records: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(
        _issue_rows(
            records.filter(pl.col(f"{field}_reason").is_not_null()), field, pl.col(field), pl.col(f"{field}_reason")
        )
        for field in _PARSED_FIELDS
    )


def _conflict_issues(records: pl.DataFrame, merged: pl.DataFrame) -> pl.DataFrame:
    """Usable values of later records that disagree with the value the merge kept."""
    kept = merged.select("customer_id", *(pl.col(field).alias(f"{field}_kept") for field in _PARSED_FIELDS))
    joined = records.join(kept, on="customer_id", how="left")
    return pl.concat(
        _issue_rows(
            # an unusable value is null, and null != anything is null: filtered out, no conflict
            joined.filter(pl.col(f"{field}_value") != pl.col(f"{field}_kept")),
            field,
            pl.col(field),
            "conflicting_duplicate",
        )
        for field in _PARSED_FIELDS
    )


def _merge_issues(records: pl.DataFrame) -> pl.DataFrame:
    later = records.filter(~pl.col("customer_id").is_first_distinct())
    return _issue_rows(later, "customer_id", pl.col("customer_id"), "duplicate_record_merged")


def _impute(merged: pl.DataFrame) -> pl.DataFrame:
    """Fill missing ages (income-band median, else overall) and incomes (overall median), flagging both."""
    band = pl.col("income").cut(list(INCOME_BAND_EDGES), left_closed=True)
    band_median_age = pl.when(pl.col("income").is_not_null()).then(pl.col("age").median().over(band))
    imputed_age = pl.coalesce(band_median_age, pl.col("age").median()).round(0).cast(pl.Int64)
    return merged.rename({"mobile": "mobile_e164"}).with_columns(
        pl.col("age").is_null().alias("age_imputed"),
        pl.coalesce(pl.col("age"), imputed_age).alias("age"),
        pl.col("income").is_null().alias("income_imputed"),
        pl.coalesce(pl.col("income"), pl.col("income").median()).alias("income"),
        pl.when(pl.col("gender") == "F").then(1).otherwise(0).cast(pl.Int8).alias("gender_female"),
    )
