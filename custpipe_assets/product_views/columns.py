"""The product-views domain's tables as the UI shows them before any run: each asset key's columns, read from
`schemas.py`, and what each column means. Columns that mean the same everywhere (lineage, quarantine, week) are
described in `core.columns`."""

from custpipe_assets.core.columns import table_schema, weekly
from custpipe_assets.product_views import assets, schemas

_ORDERS = {
    "id": "The order's id.",
    "user_id": "The customer's id in the shop.",
    "order_date": "When the order was placed, local time GMT-03:00.",
    "order_subtotal": "The items' total before discount.",
    "order_discount": "The discount on the order.",
    "order_total": "What the customer paid.",
    "order_status": "The order's status (payment_approved, invoiced, shipped, delivered, pending_payment, cancelled, "
    "refunded).",
    "payment_type": "How the order was paid.",
    "shipping_cost": "The shipping cost.",
    "shipping_service": "The shipping service.",
    "address_city": "The delivery city.",
    "address_state": "The delivery state.",
    "utm_source_medium": "The marketing source and medium of the visit.",
    "device_type": "The device the order was placed on, as landed (iOS, Android, MobileWeb, desktop...).",
}
_ORDER_ITEMS = {
    "id": "The order item's id.",
    "order_id": "The order the item belongs to.",
    "sku": "The item's SKU (product, colour and size).",
    "quantity": "How many were ordered.",
    "code_color": "The product code (product and colour, e.g. 20005748_001).",
}
_EVENTS = {
    "platform_folder": "The platform folder the file landed in (iOS, Android, MobileWeb); null outside one.",
    "batch_index": "The batch's 0-based index in its file.",
    "event_index": "The event's 0-based index in its batch.",
    "mpid": "The user's id in the event export.",
    "batch_id": "The batch's id in the export.",
    "message_id": "The event message's id in the export.",
    "event_type": "The event's type (product views and others).",
    "custom_event_type": "The event's custom type.",
    "event_name": "The event's name.",
    "event_id": "The event's id in the export (the real export lost precision on it: not unique).",
    "session_id": "The app or site session.",
    "timestamp_unixtime_ms": "When the event happened, UTC unix milliseconds.",
    "code_color": "The product code viewed, as landed.",
    "event_hash": "md5 of the event as landed: two events are the same when this and mpid agree.",
}
_VIEW_FILES = {
    "platform_folder": "The platform folder the file landed in; null outside one.",
    "bytes": "The file's size in bytes.",
    "status": "What the file held: ok, or why it is not read whole (empty_file, not_json, no_events...).",
    "detail": "Why the status, in words; null when ok.",
    "records": "The bronze records the file gives (events, or one for a file not read).",
    "home_week": "The week its records without a usable time (or the whole unreadable file) go to.",
    "first_week": "The first week its events fall in; null without event times.",
    "last_week": "The last week its events fall in; null without event times.",
    "weeks": "Every week its records are in.",
}
_SILVER = {
    **_ORDERS,
    **_EVENTS,
    "order_id": "The order.",
    "order_item_id": "The order item (one row per item).",
    "product": "The product code (code_color, e.g. 20005748_001).",
    "sku": "The item's SKU.",
    "quantity": "How many were ordered.",
    "order_status": "The order's status, one that counts as a purchase.",
    "platform": "The canonical platform: iOS, Android, MobileWeb, or Other (orders from other devices).",
    "event_time_local": "When it happened, local time GMT-03:00.",
    "event_time_utc": "When it happened, UTC.",
    "event_type": "The event's type.",
    "events": "How many such events the week had.",
    "minute_local": "The minute, local time GMT-03:00.",
    "views": "Product views of the product on the platform in the minute.",
    "purchases": "Items of the product bought on the platform in the minute.",
}

COLUMNS = {
    assets.BRONZE_ORDERS: table_schema(schemas.ORDERS_BRONZE_SCHEMA, _ORDERS),
    assets.BRONZE_ORDER_ITEMS: table_schema(schemas.ORDER_ITEMS_BRONZE_SCHEMA, _ORDER_ITEMS),
    assets.BRONZE_ORDER_REJECTS: table_schema(schemas.ORDER_REJECTS_SCHEMA),
    assets.SILVER_PURCHASES: table_schema(schemas.PURCHASES_SILVER_SCHEMA, _SILVER),
    assets.PURCHASE_QUARANTINE: table_schema(schemas.PURCHASE_QUARANTINE_SCHEMA),
    assets.BRONZE_VIEW_FILES: table_schema(schemas.VIEW_FILES_SCHEMA, _VIEW_FILES),
    assets.BRONZE_VIEW_EVENTS: table_schema(schemas.VIEW_EVENTS_BRONZE_SCHEMA, _EVENTS),
    assets.BRONZE_VIEW_REJECTS: table_schema(schemas.VIEW_REJECTS_SCHEMA),
    assets.SILVER_VIEWS: table_schema(weekly(schemas.PRODUCT_VIEWS_SILVER_SCHEMA), _SILVER),
    assets.VIEW_QUARANTINE: table_schema(schemas.VIEW_QUARANTINE_SCHEMA),
    assets.IGNORED_EVENTS: table_schema(weekly(schemas.IGNORED_EVENTS_SCHEMA), _SILVER),
    assets.CTR_PER_MINUTE: table_schema(weekly(schemas.GOLD_CTR_MINUTE_SCHEMA), _SILVER),
}
