"""The purchases domain's tables as the UI shows them before any run: each asset key's columns, read from the
transforms' schema constants (`transactions.py`, `reference.py`), and what each column means. Columns that mean
the same everywhere (lineage, quarantine, week) are described in `core.columns`."""

import polars as pl

from custpipe_assets.core.columns import table_schema
from custpipe_assets.core.csv_reader import bronze_csv_schema
from custpipe_assets.purchases import assets, reference, transaction_files, transactions

DESCRIPTIONS = {
    # bronze
    "day": "The day folder (`d=YYYY-MM-DD`) the line landed in.",
    "parse_error": "Why the line is not a JSON record (blank_line, malformed_json, not_a_json_object); null when "
    "it parsed.",
    "date_of_purchase": "The purchase time as landed (text, `YYYY-MM-DD HH:MM:SS`).",
    "basket": "The basket as landed: product ids and prices (prices still JSON text).",
    "loyalty_score_raw": "loyalty_score as landed, before typing.",
    "product_description": "The product's name, as landed.",
    "product_category": "The product's category.",
    # silver
    "loyalty_score": "Loyalty score, a whole number 1..10; null when the landed value is not one "
    "(see loyalty_score_issue).",
    "loyalty_score_issue": "Why loyalty_score is null (missing, not_a_number, not_a_whole_number, out_of_range); "
    "null when it is usable.",
    "purchased_at": "When the basket was bought (date_of_purchase, typed).",
    "price": "The item's price, positive.",
    "basket_position": "The item's 0-based index in its basket.",
    # gold
    "purchase_count": "How many basket lines of the week are this product bought by this customer (at least 1).",
}


def bronze_reference_schema(columns: tuple[str, ...]) -> pl.Schema:
    """The bronze rows of a reference CSV (`reference.read_reference_csv`, which segmentation reads its profiles
    with too): the core reader's columns, line numbers as Int32."""
    return pl.Schema({**bronze_csv_schema(columns), "line_number": pl.Int32()})


COLUMNS = {
    assets.BRONZE_CUSTOMERS: table_schema(
        bronze_reference_schema(reference.CUSTOMER_COLUMNS), {"loyalty_score": "loyalty_score as landed (text)."}
    ),
    assets.BRONZE_PRODUCTS: table_schema(bronze_reference_schema(reference.PRODUCT_COLUMNS), DESCRIPTIONS),
    assets.BRONZE_TRANSACTIONS: table_schema(
        transaction_files.BRONZE_SCHEMA,
        {
            **DESCRIPTIONS,
            "raw_line": "The line as landed when it did not parse; null when it did (file and line find it).",
        },
    ),
    assets.SILVER_CUSTOMERS: table_schema(reference.SILVER_CUSTOMERS_SCHEMA, DESCRIPTIONS),
    assets.SILVER_PRODUCTS: table_schema(reference.SILVER_PRODUCTS_SCHEMA, DESCRIPTIONS),
    assets.REFERENCE_QUARANTINE: table_schema(reference.REFERENCE_QUARANTINE_SCHEMA),
    assets.TRANSACTION_LINES: table_schema(
        transactions.LINES_SCHEMA, {**DESCRIPTIONS, "line_number": "The basket's line in its day file."}
    ),
    assets.TRANSACTION_QUARANTINE: table_schema(transactions.QUARANTINE_SCHEMA),
    assets.CUSTOMER_PRODUCT_PURCHASES: table_schema(
        transactions.COUNTS_SCHEMA,
        {**DESCRIPTIONS, "loyalty_score": "The customer's loyalty score (silver/customers); null when unusable."},
    ),
}
