"""Data checks for the customers domain's online purchases: one Pandera schema per table, plus reconciliation.

The schemas say what a consumer may rely on; `core.checks` turns each into a Dagster asset check.
"""

import dagster as dg
import pandera.polars as pa
import polars as pl

from custpipe_assets.core.checks import (
    files_readable_check,
    pandera_schema,
    quarantine_check,
    reconciliation_check,
    schema_check,
    source_present_check,
    weekly_row_count_sql,
)
from custpipe_assets.purchases import assets, reference, transaction_files, transactions

BRONZE_TRANSACTIONS = pandera_schema(
    transaction_files.BRONZE_SCHEMA,
    checks={"source_file": pa.Check.str_startswith("transactions/d="), "line_number": pa.Check.ge(1)},
    nullable=("raw_line", "parse_error", "customer_id", "date_of_purchase", "basket"),
    unique=["source_file", "line_number"],
    strict=False,
    description="Every landed line kept once with its file and line number (its text when it did not parse).",
)
TRANSACTION_LINES = pandera_schema(
    transactions.LINES_SCHEMA,
    checks={"price": pa.Check.gt(0), "line_number": pa.Check.ge(1), "basket_position": pa.Check.ge(0)},
    unique=["source_file", "line_number", "basket_position"],
    description="Typed basket lines: positive prices, no nulls, each source record at most once.",
)
CUSTOMER_PRODUCT_PURCHASES = pandera_schema(
    transactions.COUNTS_SCHEMA,
    checks={"loyalty_score": pa.Check.in_range(*reference.LOYALTY_SCORE_RANGE), "purchase_count": pa.Check.ge(1)},
    nullable=("loyalty_score",),
    unique=["week_start", "customer_id", "product_id"],
    description="The contract: one row per week, customer and product, purchase_count >= 1, columns in order.",
)
SILVER_CUSTOMERS = pandera_schema(
    reference.SILVER_CUSTOMERS_SCHEMA,
    nullable=("loyalty_score", "loyalty_score_raw", "loyalty_score_issue"),
    unique=["customer_id"],
    description="One row per customer.",
)
LOYALTY_SCORE_VALID = pa.DataFrameSchema(
    {
        "loyalty_score": pa.Column(pl.Float64, pa.Check.in_range(*reference.LOYALTY_SCORE_RANGE), nullable=False),
        "loyalty_score_issue": pa.Column(pl.String, pa.Check.isin(reference.LOYALTY_SCORE_ISSUES), nullable=True),
    },
    description="Warns about customers whose landed loyalty_score is not a whole number 1..10 (kept, score null, "
    "raw text and loyalty_score_issue beside it).",
)
SILVER_PRODUCTS = pandera_schema(
    reference.SILVER_PRODUCTS_SCHEMA,
    nullable=("product_description",),
    unique=["product_id"],
    description="One row per product, each with a category.",
)

# Independent counts for reconciliation, straight from the warehouse tables.
_BRONZE_RECORDS = transactions.records_per_week_sql("bronze.transactions")
_LINES = weekly_row_count_sql("silver.transaction_lines")
_QUARANTINED = weekly_row_count_sql("silver.transaction_quarantine")
_GOLD_LINES = "select week_start, sum(purchase_count) as rows from gold.customer_product_purchases where week_start = any($weeks) group by 1"


def _reference_reconciliation(key: dg.AssetKey, file_name: str, bronze: str, silver: str) -> dg.AssetChecksDefinition:
    return reconciliation_check(
        key,
        description=f"Rows of {file_name} = rows in {silver} + rows quarantined from it.",
        rows_in_sql=f"select count(*) as rows from {bronze}",
        rows_out_sql=f"select count(*) as rows from {silver}",
        rows_quarantined_sql=f"select count(*) as rows from silver.reference_quarantine where source_file = '{file_name}'",
        additional_deps=[assets.REFERENCE_QUARANTINE],
    )


def build_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    weekly = {"partitions_def": partitions_def}
    return [
        schema_check(assets.BRONZE_TRANSACTIONS, BRONZE_TRANSACTIONS, **weekly),
        schema_check(assets.TRANSACTION_LINES, TRANSACTION_LINES, **weekly),
        quarantine_check(
            assets.TRANSACTION_QUARANTINE,
            transactions.QUARANTINE_REASONS,
            description="Every rejected record names its file, line, basket position and a known reason.",
            **weekly,
        ),
        schema_check(assets.CUSTOMER_PRODUCT_PURCHASES, CUSTOMER_PRODUCT_PURCHASES, **weekly),
        schema_check(assets.SILVER_CUSTOMERS, SILVER_CUSTOMERS),
        schema_check(
            assets.SILVER_CUSTOMERS,
            LOYALTY_SCORE_VALID,
            name="loyalty_score_valid",
            severity=dg.AssetCheckSeverity.WARN,
        ),
        schema_check(assets.SILVER_PRODUCTS, SILVER_PRODUCTS),
        quarantine_check(
            assets.REFERENCE_QUARANTINE,
            reference.REFERENCE_QUARANTINE_REASONS,
            description="Every rejected reference row names its file, line and reason.",
        ),
        reconciliation_check(
            assets.TRANSACTION_LINES,
            description="Per week: bronze records (basket items, or whole unusable lines) = silver lines + quarantined.",
            rows_in_sql=_BRONZE_RECORDS,
            rows_out_sql=_LINES,
            rows_quarantined_sql=_QUARANTINED,
            additional_deps=[assets.BRONZE_TRANSACTIONS, assets.TRANSACTION_QUARANTINE],
            **weekly,
        ),
        reconciliation_check(
            assets.CUSTOMER_PRODUCT_PURCHASES,
            description="Per week: silver lines = sum of purchase_count (every line counted once, none dropped).",
            rows_in_sql=_LINES,
            rows_out_sql=_GOLD_LINES,
            rows_quarantined_sql=None,
            additional_deps=[assets.TRANSACTION_LINES],
            **weekly,
        ),
        _reference_reconciliation(
            assets.SILVER_CUSTOMERS, reference.CUSTOMERS_FILE, "bronze.customers", "silver.customers"
        ),
        _reference_reconciliation(
            assets.SILVER_PRODUCTS, reference.PRODUCTS_FILE, "bronze.products", "silver.products"
        ),
        source_present_check(
            assets.BRONZE_TRANSACTIONS,
            description="Warns when a day of the week has no transactions file (a missing or empty day folder).",
            find_missing=lambda root, weeks: transaction_files.missing_transaction_days(root, weeks),
            **weekly,
        ),
        *(
            files_readable_check(
                key,
                description=f"Warns when {file_name} is empty, header only or lacks a column (its lines quarantined).",
                file_reports=lambda root, file_name=file_name, columns=columns: [
                    reference.reference_file_status(root, file_name, columns)
                ],
            )
            for key, file_name, columns in (
                (assets.BRONZE_CUSTOMERS, reference.CUSTOMERS_FILE, reference.CUSTOMER_COLUMNS),
                (assets.BRONZE_PRODUCTS, reference.PRODUCTS_FILE, reference.PRODUCT_COLUMNS),
            )
        ),
        source_present_check(
            assets.BRONZE_CUSTOMERS,
            description="Warns when customers.csv is absent.",
            find_missing=lambda root, _: (
                [] if (root / reference.CUSTOMERS_FILE).is_file() else [reference.CUSTOMERS_FILE]
            ),
        ),
        source_present_check(
            assets.BRONZE_PRODUCTS,
            description="Warns when products.csv is absent.",
            find_missing=lambda root, _: (
                [] if (root / reference.PRODUCTS_FILE).is_file() else [reference.PRODUCTS_FILE]
            ),
        ),
    ]
