"""What a weekly bronze materialization read, recorded on it, so the arrival sensors compare today's files with what
ran rather than with their own memory.

Each weekly bronze asset calls `record_landed_fingerprints` before reading: every week of its run gets, in that
week's materialization metadata, the fingerprint of the week's landed files (`core/arrivals.py`). Taken before the
files are read, so a file changed while the run reads it leaves a fingerprint that no longer matches: its week runs
again. `recorded_fingerprint` reads it back for one week, from the latest materialization of that partition.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import dagster as dg

from custpipe_assets.core.arrivals import LandedFiles

FINGERPRINT_METADATA_KEY = "landed_files_fingerprint"


def record_landed_fingerprints(
    context: dg.AssetExecutionContext,
    landed: LandedFiles,
    landing_dir: Path,
    weeks: Iterable[date],
    *,
    asset_key: dg.AssetKey | None = None,
) -> dict[date, str]:
    """Put each week's landed-files fingerprint on that week's materialization of `asset_key` (default: the asset
    being materialized); returns them."""
    fingerprints = landed.fingerprints(landing_dir, weeks)
    for week, value in fingerprints.items():
        context.add_asset_metadata(
            {FINGERPRINT_METADATA_KEY: value}, asset_key=asset_key or context.asset_key, partition_key=week.isoformat()
        )
    return fingerprints


def recorded_fingerprint(instance: dg.DagsterInstance, asset_key: dg.AssetKey, week: date) -> str | None:
    """The landed-files fingerprint the latest materialization of `week` read, or None (never materialized, or by
    code that did not record one)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[week.isoformat()]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get(FINGERPRINT_METADATA_KEY)
    return value.value if value is not None else None
