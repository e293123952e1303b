"""The segmentation domain's tables as the UI shows them before any run: each asset key's columns, read from the
transforms' schema constants (`profiles.py`, `store_purchases.py`, `features.py`, `segments.py`), and what each
column means. Columns that mean the same everywhere (lineage, quarantine, week) are described in `core.columns`."""

from custpipe_assets.core.columns import table_schema, weekly
from custpipe_assets.purchases.columns import bronze_reference_schema
from custpipe_assets.segmentation import assets, features, profiles, segments
from custpipe_assets.segmentation.purchases_client import PURCHASES_SCHEMA
from custpipe_assets.segmentation.store_purchases import MATCHED_SCHEMA, STORE_QUARANTINE_SCHEMA

BRONZE_PROFILES = {
    "customer_id": "The customer's id, as landed.",
    "name": "The customer's name, as landed.",
    "age": "Age in years, as landed (text).",
    "income": "Yearly income, as landed (text).",
    "mobile": "Mobile number, as landed.",
    "gender": "Gender, as landed.",
    "joined_at": "The day the customer joined, as landed (one of several date formats).",
}
PROFILES = {
    "name": "Name with whitespace collapsed, `Last, First` turned round, all capitals title-cased.",
    "age": "Age in years (16..110); imputed when age_imputed.",
    "age_imputed": "Whether age is the median of the customer's income band (the landed age was missing or unusable).",
    "income": "Yearly income (>= 0); imputed when income_imputed.",
    "income_imputed": "Whether income is the overall median (the landed income was missing or unusable).",
    "gender": "F or M; null when blank or not recognised.",
    "gender_female": "1 for a known female, else 0 (unknown counts as not female): the model's input.",
    "mobile_e164": "The mobile number in E.164 (default region GB); null when not a valid number.",
    "joined_at": "The day the customer joined (ISO date).",
    "source_file": "The file of the customer's earliest record.",
    "line_number": "The line of the customer's earliest record.",
    "merged_records": "How many records of the file were merged into this row.",
}
PROFILE_ISSUES = {
    "field": "The profile field the issue is about (`record` for a whole record that could not be read).",
    "raw_value": "The field's value as landed (the whole record for `record`).",
}
STORE_PURCHASES = {
    "mobile": "The buyer's mobile number, as served.",
    "date": "The purchase time, as served (text).",
    "amount": "The amount paid, as served.",
    "store": "The store, as served.",
    "page": "The API page the record was served on.",
    "purchased_at": "When the purchase was made (UTC).",
    "customer_id": "The customer whose profile has this mobile number.",
    "mobile_e164": "The buyer's mobile number in E.164, as matched to the profile.",
    "record_number": "The record's 1-based position in the week's fetch, to trace it back to what was served.",
}
ROLLUPS = {
    "online_purchases": "Online transactions (landed lines, whatever the basket size) in the week.",
    "online_spend": "Total price of the week's online basket lines.",
    "store_purchases": "Store purchases matched to the customer in the week.",
    "store_spend": "Total amount of the week's store purchases.",
    "first_purchase_at": "The customer's first purchase of the week, online or in store.",
    "last_purchase_at": "The customer's last purchase of the week, online or in store.",
}
FEATURES = {
    "age": "Age in years (silver profiles, imputed where missing); null for a customer without a profile.",
    "income": "Yearly income (silver profiles, imputed where missing); null for a customer without a profile.",
    "gender_female": "1 for a known female, else 0.",
    "loyalty_score": "Loyalty score 1..10 from customers.csv; null where it has no usable score.",
    "purchases": "Purchases over the whole history: online transactions plus store purchases.",
    "active_weeks": "Weeks with at least one purchase.",
    "total_spend": "Total spend over the whole history, online and in store.",
    "avg_transaction_value": "total_spend / purchases (0 without purchases).",
    "purchase_frequency": "Purchases per observed week.",
    "first_purchase_date": "Day of the first purchase; null without purchases.",
    "last_purchase_date": "Day of the last purchase; null without purchases.",
    "recency_days": "Days from the last purchase to the as-of day (a customer who never bought: the observed days).",
    "observed_weeks": "Weeks from joining (or the history's start, or the first purchase if earlier) to the as-of "
    "day; at least 1.",
    "clv": f"Customer lifetime value: avg_transaction_value x purchase_frequency x {features.CLV_LIFETIME_WEEKS} weeks.",
    "age_scaled": "age as a z-score over all customers (0, the mean, when unknown): a model input.",
    "income_scaled": "income as a z-score over all customers (0, the mean, when unknown): a model input.",
}
SEGMENTS = {
    "n_clusters": "How many segments KMeans was asked for.",
    "random_state": "The seed the model was fitted with.",
    "inertia": "KMeans inertia: the sum of squared distances to the nearest centroid.",
    "silhouette": "Silhouette score of the segments (on a seeded sample), -1..1.",
    "model_pickle": "The fitted model (scaler, centroids, segment names), pickled.",
    "segment_id": "The segment's number in the model.",
    "segment_name": "The segment's name, from its centroid's profile.",
    "customers": "Customers in the segment.",
    "total_spend": "The segment's customers' total spend.",
    "avg_clv": "The segment's customers' average lifetime value.",
    "customer_share": "The segment's share of all customers, 0..1.",
    "spend_share": "The segment's share of all spend, 0..1.",
}

COLUMNS = {
    assets.BRONZE_PROFILES: table_schema(bronze_reference_schema(profiles.PROFILE_COLUMNS), BRONZE_PROFILES),
    assets.SILVER_PROFILES: table_schema(profiles.SILVER_PROFILES_SCHEMA, PROFILES),
    assets.PROFILE_ISSUES: table_schema(profiles.PROFILE_ISSUES_SCHEMA, PROFILE_ISSUES),
    assets.BRONZE_STORE_PURCHASES: table_schema(weekly(PURCHASES_SCHEMA), STORE_PURCHASES),
    assets.SILVER_STORE_PURCHASES: table_schema(MATCHED_SCHEMA, STORE_PURCHASES),
    assets.STORE_QUARANTINE: table_schema(STORE_QUARANTINE_SCHEMA),
    assets.WEEKLY_ROLLUPS: table_schema(features.ROLLUP_SCHEMA, ROLLUPS),
    assets.CUSTOMER_FEATURES: table_schema(features.FEATURES_SCHEMA, FEATURES),
    assets.SEGMENT_MODEL: table_schema(segments.SEGMENT_MODEL_SCHEMA, SEGMENTS),
    assets.CUSTOMER_SEGMENTS: table_schema(segments.SEGMENTS_SCHEMA, SEGMENTS),
    assets.SEGMENT_METRICS: table_schema(segments.SEGMENT_METRICS_SCHEMA, SEGMENTS),
}
