"""Dagster wiring for the customers domain's online purchases: bronze, silver and gold assets.

Thin wrappers: read inputs, call the pure transforms in `reference.py` and `transactions.py`, attach metadata.
Weekly assets take and return `WeeklyBatches`, so a backfill over the whole history holds one week in memory.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
import polars as pl

from custpipe_assets.core.arrivals import LandedFiles
from custpipe_assets.core.conventions import KINDS, POOL
from custpipe_assets.core.landed_versions import record_landed_fingerprints
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.metadata import counts_by
from custpipe_assets.core.partitions import HISTORY_BACKFILL
from custpipe_assets.core.warehouse import SetAsidePerWeek, WeeklyBatches, weeks_of
from custpipe_assets.purchases import reference, transactions

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
    @dg.asset(key=key, description=description, kinds=KINDS | {"csv"}, pool=POOL)
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
        "customers": dg.AssetOut(
            key=SILVER_CUSTOMERS,
            kinds=KINDS,
            description="One row per customer, loyalty_score typed (null unless a whole number 1..10, as the source scores).",
        ),
        "products": dg.AssetOut(key=SILVER_PRODUCTS, kinds=KINDS, description="One row per product with its category."),
        "quarantine": dg.AssetOut(
            key=REFERENCE_QUARANTINE,
            kinds=KINDS,
            description="Customer and product rows rejected, with file, line, raw row and reason.",
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


def build_transaction_assets(partitions_def: dg.PartitionsDefinition, landed: LandedFiles) -> list[dg.AssetsDefinition]:
    """The weekly transaction assets for one partitions definition (it depends on CUSTPIPE_FIRST_WEEK); bronze
    records, on each week it materializes, the fingerprint of that week's `landed` day files (what the arrival
    sensor compares with)."""

    @dg.asset(
        key=BRONZE_TRANSACTIONS,
        description="The week's seven day files of online transactions, one row per line as landed, with file and line.",
        kinds=KINDS | {"json"},
        partitions_def=partitions_def,
        backfill_policy=HISTORY_BACKFILL,
        pool=POOL,
    )
    def bronze_transactions(context: dg.AssetExecutionContext, landing: LandingResource) -> dg.Output[WeeklyBatches]:
        root, weeks = landing.root(), weeks_of(context)
        record_landed_fingerprints(context, landed, root, weeks)

        def read_week(week: date) -> pl.DataFrame:
            missing = transactions.missing_transaction_days(root, [week])
            if missing:
                context.log.warning(
                    f"week {week}: {len(missing)} day file(s) absent, e.g. {missing[0]}; those days are empty"
                )
            context.add_asset_metadata(
                {"missing_day_files": len(missing), "missing_day_files_list": dg.MetadataValue.json(missing)},
                partition_key=week.isoformat(),
            )
            return transactions.read_transactions_week(root, week)

        return dg.Output(WeeklyBatches(weeks, read_week))

    @dg.multi_asset(
        outs={
            "lines": dg.AssetOut(
                key=TRANSACTION_LINES,
                kinds=KINDS,
                description="Transaction basket lines: typed, exploded from baskets, deduplicated, known customers and products only.",
            ),
            "quarantine": dg.AssetOut(
                key=TRANSACTION_QUARANTINE,
                kinds=KINDS,
                description="Every rejected transaction record with file, line, basket position, raw line and reason.",
            ),
        },
        ins={
            "bronze": dg.AssetIn(BRONZE_TRANSACTIONS),
            "customers": dg.AssetIn(SILVER_CUSTOMERS),
            "products": dg.AssetIn(SILVER_PRODUCTS),
        },
        partitions_def=partitions_def,
        backfill_policy=HISTORY_BACKFILL,
        pool=POOL,
    )
    def silver_transactions(
        context: dg.AssetExecutionContext, bronze: WeeklyBatches, customers: pl.DataFrame, products: pl.DataFrame
    ) -> Iterator[dg.Output]:
        customer_ids, product_ids = customers.get_column("customer_id"), products.get_column("product_id")
        rejected_by_week = SetAsidePerWeek(bronze.weeks)

        def accept(week: date, bronze_week: pl.DataFrame) -> pl.DataFrame:
            records = transactions.bronze_record_count(bronze_week)
            accepted, rejected = transactions.split_transactions(
                bronze_week, week=week, customer_ids=customer_ids, product_ids=product_ids
            )
            rejected_by_week.keep(week, rejected)
            quality = {  # per week, so the UI plots data quality across partitions
                "records_read": records,
                "rows_written": accepted.height,
                "duplicates_removed": rejected.filter(pl.col("reason") == "duplicate_transaction").height,
                "records_quarantined": rejected.height,  # per reason: on the quarantine table's week (IO manager)
            }
            context.add_asset_metadata(quality, asset_key=TRANSACTION_LINES, partition_key=week.isoformat())
            return accepted

        # the IO manager writes each week's lines as it is produced; the (small) rejects are kept for the next output,
        # whose per-week row count and `quarantined_<reason>` figures the IO manager records
        yield dg.Output(bronze.map(accept), output_name="lines")
        yield dg.Output(rejected_by_week.batches(), output_name="quarantine")

    @dg.asset(
        key=CUSTOMER_PRODUCT_PURCHASES,
        description="How many times each customer bought each product each week (basket lines), for next-purchase models.",
        kinds=KINDS,
        partitions_def=partitions_def,
        backfill_policy=HISTORY_BACKFILL,
        pool=POOL,
        ins={
            "lines": dg.AssetIn(TRANSACTION_LINES),
            "customers": dg.AssetIn(SILVER_CUSTOMERS),
            "products": dg.AssetIn(SILVER_PRODUCTS),
        },
    )
    def customer_product_purchases(
        lines: WeeklyBatches, customers: pl.DataFrame, products: pl.DataFrame
    ) -> WeeklyBatches:
        return lines.map(lambda week, week_lines: transactions.weekly_purchase_counts(week_lines, customers, products))

    return [bronze_transactions, silver_transactions, customer_product_purchases]


REFERENCE_ASSETS = [bronze_customers, bronze_products, silver_reference]
