"""The product-views transforms in one import (Amaro landing files -> bronze -> silver -> gold, Polars frames, no
Dagster, no warehouse I/O). Each layer lives in its own module; this one only gathers their public names:

- `schemas.py`: constants, frame schemas, reason codes, result tuples, platform names and local time;
- `orders.py`: bronze orders and order items from the CSV exports (through the core CSV reader);
- `view_files.py`: the weeks of each landed view file and bronze events from the JSON exports;
- `silver.py`: product views (each event once), purchases; `gold.py`: CTR counts per local minute.
"""

from custpipe_assets.product_views.gold import build_gold_ctr_per_minute
from custpipe_assets.product_views.orders import ORDER_ITEMS_FILE, ORDERS_FILE, parse_order_items_csv, parse_orders_csv
from custpipe_assets.product_views.schemas import (
    GOLD_CTR_MINUTE_SCHEMA,
    IGNORED_EVENTS_SCHEMA,
    LOCAL_UTC_OFFSET,
    NON_PURCHASE_STATUSES,
    ORDER_COLUMN_TYPES,
    ORDER_ITEM_COLUMN_TYPES,
    ORDER_ITEMS_BRONZE_SCHEMA,
    ORDER_REJECT_REASONS,
    ORDER_REJECTS_SCHEMA,
    ORDER_STATUS_COUNTS_SCHEMA,
    ORDERS_BRONZE_SCHEMA,
    OTHER_PLATFORM,
    PLATFORM_ALIASES,
    PRODUCT_CODE_PATTERN,
    PRODUCT_VIEWS_SILVER_SCHEMA,
    PURCHASE_QUARANTINE_REASONS,
    PURCHASE_QUARANTINE_SCHEMA,
    PURCHASE_STATUSES,
    PURCHASES_SILVER_SCHEMA,
    QUARANTINE_SCHEMA,
    READABLE_VIEW_FILE_STATUSES,
    STATUS_ALIASES,
    VIEW_EVENTS_BRONZE_SCHEMA,
    VIEW_FILE_STATUSES,
    VIEW_FILES_SCHEMA,
    VIEW_PLATFORMS,
    VIEW_QUARANTINE_REASONS,
    VIEW_QUARANTINE_SCHEMA,
    VIEW_REJECT_REASONS,
    VIEW_REJECTS_SCHEMA,
    ParseResult,
    SilverProductViews,
    SilverPurchases,
    canonical_platform,
    utc_to_local,
)
from custpipe_assets.product_views.silver import SAME_EVENT, build_silver_product_views, build_silver_purchases
from custpipe_assets.product_views.view_files import (
    GROUP_BYTES,
    ViewFileScan,
    list_product_view_files,
    parse_product_view_files,
    scan_view_file,
    view_file_inventory,
    view_files_by_week,
)

__all__ = [
    "GOLD_CTR_MINUTE_SCHEMA", "GROUP_BYTES", "IGNORED_EVENTS_SCHEMA", "LOCAL_UTC_OFFSET", "NON_PURCHASE_STATUSES",
    "ORDERS_BRONZE_SCHEMA", "ORDERS_FILE", "ORDER_COLUMN_TYPES", "ORDER_ITEMS_BRONZE_SCHEMA", "ORDER_ITEMS_FILE",
    "ORDER_ITEM_COLUMN_TYPES", "ORDER_REJECTS_SCHEMA", "ORDER_REJECT_REASONS", "ORDER_STATUS_COUNTS_SCHEMA",
    "OTHER_PLATFORM", "PLATFORM_ALIASES", "PRODUCT_CODE_PATTERN", "PRODUCT_VIEWS_SILVER_SCHEMA",
    "PURCHASES_SILVER_SCHEMA", "PURCHASE_QUARANTINE_REASONS", "PURCHASE_QUARANTINE_SCHEMA", "PURCHASE_STATUSES",
    "QUARANTINE_SCHEMA", "READABLE_VIEW_FILE_STATUSES", "SAME_EVENT", "STATUS_ALIASES", "VIEW_EVENTS_BRONZE_SCHEMA",
    "VIEW_FILES_SCHEMA", "VIEW_FILE_STATUSES", "VIEW_PLATFORMS", "VIEW_QUARANTINE_REASONS", "VIEW_QUARANTINE_SCHEMA",
    "VIEW_REJECTS_SCHEMA", "VIEW_REJECT_REASONS", "ParseResult", "SilverProductViews",
    "SilverPurchases", "ViewFileScan", "build_gold_ctr_per_minute", "build_silver_product_views",
    "build_silver_purchases", "canonical_platform", "list_product_view_files", "parse_order_items_csv",
    "parse_orders_csv", "parse_product_view_files", "scan_view_file", "utc_to_local", "view_file_inventory",
    "view_files_by_week",
]
