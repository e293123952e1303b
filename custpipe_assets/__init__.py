"""custpipe: Dagster assets for customer data (bronze/silver/gold in DuckDB, compute in Polars)."""
