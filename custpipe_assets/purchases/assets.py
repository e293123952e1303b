"""Dagster wiring for the customers domain's online purchases: bronze, silver and gold assets.

Thin wrappers: read inputs, call the pure transforms in `reference.py` and `transactions.py`, attach metadata.
Weekly assets take and return `WeeklyBatches`, so a backfill over the whole history holds one week in memory.
"""

from collections import Counter
from collections.abc import Iterator

import dagster as dg
import polars as pl

from custpipe_assets.core.arrivals import LandedFiles
from custpipe_assets.core.checks import weekly_row_count_sql
from custpipe_assets.core.conventions import POOL, table_asset, table_out, weekly_asset_args
from custpipe_assets.core.landed_versions import record_landed_fingerprints
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.metadata import counts_by
from custpipe_assets.core.partitions import weeks_of
from custpipe_assets.core.sql_steps import reasons_per_week, rewrite_in_batches
from custpipe_assets.core.warehouse import WarehouseResource, table_name
from custpipe_assets.purchases import reference, transaction_files, transactions

BRONZE_CUSTOMERS = dg.AssetKey(["bronze", "customers"])
BRONZE_PRODUCTS = dg.AssetKey(["bronze", "products"])
BRONZE_TRANSACTIONS = dg.AssetKey(["bronze", "transactions"])
SILVER_CUSTOMERS = dg.AssetKey(["silver", "customers"])
SILVER_PRODUCTS = dg.AssetKey(["silver", "products"])
REFERENCE_QUARANTINE = dg.AssetKey(["silver", "reference_quarantine"])
TRANSACTION_LINES = dg.AssetKey(["silver", "transaction_lines"])
TRANSACTION_QUARANTINE = dg.AssetKey(["silver", "transaction_quarantine"])
CUSTOMER_PRODUCT_PURCHASES = dg.AssetKey(["gold", "customer_product_purchases"])


def _bronze_reference(
    key: dg.AssetKey, file_name: str, columns: tuple[str, ...], description: str
) -> dg.AssetsDefinition:
    @table_asset(key, description, "csv")
    def _asset(context: dg.AssetExecutionContext, landing: LandingResource) -> pl.DataFrame:
        root = landing.root()
        if not (root / file_name).is_file():
            context.log.warning(f"{root / file_name} is absent: {key.to_user_string()} is empty this run")
        return reference.read_reference_csv(root, file_name, columns)

    return _asset


bronze_customers = _bronze_reference(
    BRONZE_CUSTOMERS,
    reference.CUSTOMERS_FILE,
    reference.CUSTOMER_COLUMNS,
    "customers.csv as landed: every row as text, with its file and line.",
)
bronze_products = _bronze_reference(
    BRONZE_PRODUCTS,
    reference.PRODUCTS_FILE,
    reference.PRODUCT_COLUMNS,
    "products.csv as landed: every row as text, with its file and line.",
)


@dg.multi_asset(
    outs={
        "customers": table_out(
            SILVER_CUSTOMERS,
            "One row per customer, loyalty_score typed (null unless a whole number 1..10, as the source scores).",
        ),
        "products": table_out(SILVER_PRODUCTS, "One row per product with its category."),
        "quarantine": table_out(
            REFERENCE_QUARANTINE, "Customer and product rows rejected, with file, line, raw row and reason."
        ),
    },
    ins={"bronze_customers": dg.AssetIn(BRONZE_CUSTOMERS), "bronze_products": dg.AssetIn(BRONZE_PRODUCTS)},
    pool=POOL,
)
def silver_reference(bronze_customers: pl.DataFrame, bronze_products: pl.DataFrame) -> Iterator[dg.Output]:
    customers, rejected_customers = reference.clean_customers(bronze_customers)
    products, rejected_products = reference.clean_products(bronze_products)
    quarantine = pl.concat([rejected_customers, rejected_products])
    yield dg.Output(
        customers,
        output_name="customers",
        metadata={
            "rows_read": bronze_customers.height,
            "loyalty_score_unusable": dg.MetadataValue.json(
                counts_by(customers.drop_nulls("loyalty_score_issue"), "loyalty_score_issue")
            ),
        },
    )
    yield dg.Output(products, output_name="products", metadata={"rows_read": bronze_products.height})
    yield dg.Output(
        quarantine,
        output_name="quarantine",
        metadata={
            "quarantined_by_reason": dg.MetadataValue.json(counts_by(quarantine, "reason")),
        },
    )


# The weekly transaction path computes where its tables live, in DuckDB SQL (see transactions.py for why).
SQL_KINDS = {"duckdb", "sql"}
# Weeks written per batch of SQL statements (one per writer), bounded so memory stays flat over a long history:
# landed bytes for bronze, rows read for silver (bronze records) and gold (silver lines). Measured at 3M lines
# (502 MB, 6.4M records, each step in one batch): peaks of 0.7 GB (bronze), 0.75 GB (silver) and 0.9 GB (gold).
BRONZE_BYTES_PER_BATCH = 1_000_000_000
LINES_PER_BATCH = 8_000_000


def build_transaction_assets(partitions_def: dg.PartitionsDefinition, landed: LandedFiles) -> list[dg.AssetsDefinition]:
    """The weekly transaction assets for one partitions definition (it depends on CUSTPIPE_FIRST_WEEK); bronze
    records, on each week it materializes, the fingerprint of that week's `landed` day files (what the arrival
    sensor compares with). Each step replaces its weeks in the warehouse with one SQL statement per batch of weeks
    (`Warehouse.rewrite_weeks`): no rows travel through Python."""
    weekly = weekly_asset_args(partitions_def)

    @dg.asset(
        key=BRONZE_TRANSACTIONS,
        description="The week's seven day files of online transactions, one row per line as landed, with file and line.",
        kinds=SQL_KINDS | {"json"},
        **weekly,
    )
    def bronze_transactions(
        context: dg.AssetExecutionContext, landing: LandingResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        root, weeks = landing.root(), weeks_of(context)
        record_landed_fingerprints(context, landed, root, weeks)
        files = transaction_files.landed_day_files(root, weeks)
        landed_bytes = Counter()
        for file in files:
            landed_bytes[file.week_start] += file.path.stat().st_size
        table = table_name(BRONZE_TRANSACTIONS)
        written = rewrite_in_batches(
            context,
            warehouse.get(),
            {table: transaction_files.BRONZE_SCHEMA},
            landed_bytes,
            BRONZE_BYTES_PER_BATCH,
            lambda connection, group: transaction_files.insert_bronze(
                connection, table, [file for file in files if file.week_start in group]
            ),
        )
        rows = written.rows[table]
        for week in weeks:
            missing = transaction_files.missing_transaction_days(root, [week])
            if missing:
                context.log.warning(
                    f"week {week}: {len(missing)} day file(s) absent, e.g. {missing[0]}; those days are empty"
                )
            context.add_asset_metadata(
                {
                    "dagster/row_count": rows[week],
                    "missing_day_files": len(missing),
                    "missing_day_files_list": dg.MetadataValue.json(missing),
                },
                partition_key=week.isoformat(),
            )
        return dg.MaterializeResult(metadata=written.metadata(table))

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                TRANSACTION_LINES,
                kinds=SQL_KINDS,
                description="Transaction basket lines: typed, exploded from baskets, deduplicated, known customers and "
                "products only.",
                deps=[BRONZE_TRANSACTIONS, SILVER_CUSTOMERS, SILVER_PRODUCTS],
            ),
            dg.AssetSpec(
                TRANSACTION_QUARANTINE,
                kinds=SQL_KINDS,
                description="Every rejected transaction record with file, line, basket position, raw line and reason.",
                deps=[BRONZE_TRANSACTIONS, SILVER_CUSTOMERS, SILVER_PRODUCTS],
            ),
        ],
        **weekly,
    )
    def silver_transactions(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator:
        weeks = weeks_of(context)
        store = warehouse.get()
        lines, quarantine = table_name(TRANSACTION_LINES), table_name(TRANSACTION_QUARANTINE)
        bronze_records = dict(
            store.query(
                transactions.records_per_week_sql(table_name(BRONZE_TRANSACTIONS)), {"weeks": weeks}
            ).iter_rows()
        )
        written = rewrite_in_batches(
            context,
            store,
            {lines: transactions.LINES_SCHEMA, quarantine: transactions.QUARANTINE_SCHEMA},
            bronze_records,
            LINES_PER_BATCH,
            lambda connection, group: transactions.insert_silver(
                connection,
                bronze=table_name(BRONZE_TRANSACTIONS),
                customers=table_name(SILVER_CUSTOMERS),
                products=table_name(SILVER_PRODUCTS),
                lines=lines,
                quarantine=quarantine,
                weeks=group,
            ),
        )
        rows = written.rows
        reasons = reasons_per_week(store, quarantine, weeks)
        for week in weeks:  # per week, so the UI plots data quality across partitions
            week_reasons = reasons.get(week, {})
            context.add_asset_metadata(
                {
                    "dagster/row_count": rows[lines][week],
                    "records_read": bronze_records.get(week, 0),
                    "rows_written": rows[lines][week],
                    "duplicates_removed": week_reasons.get("duplicate_transaction", 0),
                    "records_quarantined": rows[quarantine][week],
                },
                asset_key=TRANSACTION_LINES,
                partition_key=week.isoformat(),
            )
            context.add_asset_metadata(
                {
                    "dagster/row_count": rows[quarantine][week],
                    **{f"quarantined_{code}": count for code, count in week_reasons.items()},
                },
                asset_key=TRANSACTION_QUARANTINE,
                partition_key=week.isoformat(),
            )
        yield dg.MaterializeResult(asset_key=TRANSACTION_LINES, metadata=written.metadata(lines))
        yield dg.MaterializeResult(asset_key=TRANSACTION_QUARANTINE, metadata=written.metadata(quarantine))

    @dg.asset(
        key=CUSTOMER_PRODUCT_PURCHASES,
        description="How many times each customer bought each product each week (basket lines), for next-purchase models.",
        kinds=SQL_KINDS,
        deps=[TRANSACTION_LINES, SILVER_CUSTOMERS, SILVER_PRODUCTS],
        **weekly,
    )
    def customer_product_purchases(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        weeks = weeks_of(context)
        store = warehouse.get()
        counts, lines = table_name(CUSTOMER_PRODUCT_PURCHASES), table_name(TRANSACTION_LINES)
        lines_per_week = dict(store.query(weekly_row_count_sql(lines), {"weeks": weeks}).iter_rows())
        written = rewrite_in_batches(
            context,
            store,
            {counts: transactions.COUNTS_SCHEMA},
            lines_per_week,
            LINES_PER_BATCH,
            lambda connection, group: transactions.insert_counts(
                connection,
                lines=lines,
                customers=table_name(SILVER_CUSTOMERS),
                products=table_name(SILVER_PRODUCTS),
                counts=counts,
                weeks=group,
            ),
        )
        rows = written.rows[counts]
        for week in weeks:
            context.add_asset_metadata({"dagster/row_count": rows[week]}, partition_key=week.isoformat())
        return dg.MaterializeResult(metadata=written.metadata(counts))

    return [bronze_transactions, silver_transactions, customer_product_purchases]


REFERENCE_ASSETS = [bronze_customers, bronze_products, silver_reference]
