"""The BrokerChooser landing layout: folder and file names, separators and column names.

What belongs here: facts about the real export formats that both the generator (which writes them) and the
readers (which parse them) rely on, so the two cannot drift apart. No logic.
"""

from __future__ import annotations

SOURCE_DIR = "brokerchooser"

CONVERSIONS_DIR = "conversions"
CONVERSIONS_SEPARATOR = ";"
CONVERSION_COLUMNS: tuple[str, ...] = (
    "id",
    "session_id",
    "country_name",
    "is_mobile",
    "ui_element",
    "created_at",
    "measurement_category",
)
CREATED_AT_FORMAT = "%Y-%m-%d %H:%M:%S"

BROKER_DIR = "broker_data"
BROKER_SEPARATOR = ","
BROKER_COLUMNS: tuple[str, ...] = ("timestamp", "country_residency", "ip_country", "important_score")

MAPPING_FILE = "page_category_mapping.csv"
MAPPING_SEPARATOR = ";"
MAPPING_COLUMNS: tuple[str, ...] = ("page_category", "measurement_category")

TRUTH_FILE = "_truth/matches.csv"
TRUTH_COLUMNS: tuple[str, ...] = ("conversion_id", "registration_key")
