"""custpipe: Dagster assets for customer data (bronze/silver/gold in DuckDB, compute in Polars)."""

import warnings

import dagster as dg

# Weekly partitioned checks and single-run backfills are Dagster preview/beta features we rely on deliberately.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
