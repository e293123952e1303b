"""The conversions domain's tables as the UI shows them before any run: each asset key's columns and what each
column means. transforms.py declares no pl.Schema for these tables: each is what the function writing the table
returns for no input (`transforms.py`, `matching.py`), so the columns shown cannot drift from the code. Columns that
mean the same everywhere (lineage, quarantine, week) are described in `core.columns`."""

import polars as pl

from custpipe_assets.conversions import assets, matching, transforms
from custpipe_assets.conversions.formats import BROKER_COLUMNS, CONVERSION_COLUMNS, MAPPING_COLUMNS
from custpipe_assets.core.columns import table_schema, weekly
from custpipe_assets.core.quarantine import QUARANTINE_SCHEMA, WEEKLY_QUARANTINE_SCHEMA


def _bronze_lines(columns: tuple[str, ...]) -> pl.Schema:
    return weekly(transforms.bronze_schema(columns))


_BRONZE_MAPPING = pl.Schema(transforms.bronze_schema(MAPPING_COLUMNS))
_SILVER_MAPPING = transforms.clean_page_category_mapping(_BRONZE_MAPPING.to_frame()).rows.schema
_SILVER_CONVERSIONS = transforms.clean_conversions(
    _bronze_lines(CONVERSION_COLUMNS).to_frame(), _SILVER_MAPPING.to_frame()
).rows.schema
_SILVER_REGISTRATIONS = transforms.clean_broker_registrations(_bronze_lines(BROKER_COLUMNS).to_frame()).rows.schema
_NO_FILES = transforms.BronzeRead(_bronze_lines(()).to_frame(), pl.DataFrame(schema=transforms.FILES_SCHEMA))
_SOURCE_FILES = pl.Schema({"source": pl.String(), **transforms.file_inventory(_NO_FILES).schema})
_MATCHED = matching.conversions_with_matches(
    _SILVER_CONVERSIONS.to_frame(), _SILVER_REGISTRATIONS.to_frame(), pl.DataFrame(schema=matching.MATCH_SCHEMA)
).schema

# what each field of the exports means; bronze has it as landed text, silver typed
_FIELDS = {
    "id": "The conversion's id on the site.",
    "session_id": "The visitor's session on the site.",
    "country_name": "The visitor's country, as the site names it.",
    "is_mobile": "Whether the visitor was on a mobile device.",
    "ui_element": "The page element the visitor clicked.",
    "created_at": "When the conversion happened (UTC).",
    "measurement_category": "The page's category as the site's measurement names it.",
    "page_category": "The page category the measurement category maps to.",
    "timestamp": "When the broker registered the customer (unix seconds).",
    "country_residency": "The customer's country of residency, as the broker names it.",
    "ip_country": "The country of the customer's IP address, as the broker names it.",
    "important_score": "The broker's score of the registration.",
}
_AS_LANDED = {name: f"{text[:-1]}: as landed (text)." for name, text in _FIELDS.items()}
_SILVER = {
    **_FIELDS,
    "conversion_id": "The conversion's id on the site (one row per id).",
    "country_code": "ISO 3166 alpha-2 code of country_name; null when it could not be resolved (never guessed).",
    "is_mobile": "Whether the visitor was on a mobile device; null when blank.",
    "page_category": "The page category of measurement_category (silver/page_category_mapping); null when unmapped.",
    "registration_key": "The registration's key: `source_file:line_number` of its line.",
    "registered_at": "When the broker registered the customer (UTC).",
    "residency_code": "ISO 3166 alpha-2 code of country_residency; null when it could not be resolved.",
    "ip_country_code": "ISO 3166 alpha-2 code of ip_country; null when it could not be resolved.",
    "important_score": "The broker's score of the registration, an integer; null when the landed value is not one.",
    "important_score_issue": "What was landed when important_score is not an integer; null otherwise.",
}
_MATCHES = {
    **_SILVER,
    "conversion_id": "The matched conversion.",
    "registration_key": "The registration it was matched to (`source_file:line_number`).",
    "created_at": "When the conversion happened (UTC).",
    "delay_seconds": "Seconds from the conversion to the registration.",
    "rule": "What the pair agreed on: residency_country, ip_country, or time_only (a country unknown).",
    "confidence": "The pair's posterior probability (0..1), from the week's learned delay.",
}
_FILES = {
    "source": "Which export the file is: conversions, registrations or mapping.",
    "data_lines": "Data lines in the file (the header not counted).",
    "status": "What the file looked like: ok, empty_file, header_only or wrong_header (e.g. the wrong separator).",
    "first_week": "The first week its lines belong to; null for the mapping (not weekly) or a file without lines.",
    "last_week": "The last week its lines belong to; null for the mapping (not weekly) or a file without lines.",
    "landed_week": "The week the file was last modified: the week of its lines that carry no time.",
}
_MATCHED_DESCRIPTIONS = {
    **_MATCHES,
    "conversion_id": "The conversion's id on the site.",
    "registration_key": "The matched registration (`source_file:line_number`); null when unmatched.",
    **{
        f"registration_{name}": f"The matched registration's {name}; null when unmatched."
        for name in _SILVER_REGISTRATIONS.names()
    },
}

COLUMNS = {
    assets.BRONZE_MAPPING: table_schema(_BRONZE_MAPPING, _AS_LANDED),
    assets.SILVER_MAPPING: table_schema(_SILVER_MAPPING, _FIELDS),
    assets.MAPPING_QUARANTINE: table_schema(QUARANTINE_SCHEMA),
    assets.BRONZE_FILES: table_schema(_SOURCE_FILES, _FILES),
    assets.BRONZE_CONVERSIONS: table_schema(_bronze_lines(CONVERSION_COLUMNS), _AS_LANDED),
    assets.BRONZE_REGISTRATIONS: table_schema(_bronze_lines(BROKER_COLUMNS), _AS_LANDED),
    assets.SILVER_CONVERSIONS: table_schema(_SILVER_CONVERSIONS, _SILVER),
    assets.SILVER_REGISTRATIONS: table_schema(_SILVER_REGISTRATIONS, _SILVER),
    assets.CONVERSION_QUARANTINE: table_schema(WEEKLY_QUARANTINE_SCHEMA),
    assets.CONVERSION_MATCHES: table_schema(weekly(matching.MATCH_SCHEMA), _MATCHES),
    assets.CONVERSIONS_MATCHED: table_schema(_MATCHED, _MATCHED_DESCRIPTIONS),
}
