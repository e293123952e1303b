"""Publishing the CTR serving snapshot: the one file the pipeline writes and the HTTP API reads.

Kept apart from `api.py` so that the pipeline (and every Dagster code-server start) does not import FastAPI,
uvicorn and pydantic just to write a Parquet file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import polars as pl

from custpipe_assets.product_views.transforms import GOLD_CTR_MINUTE_SCHEMA


def publish_serving_snapshot(gold_frame: pl.DataFrame, serving_path: Path) -> Path:
    """Write `gold_frame` as Parquet to `serving_path` atomically: a reader sees the old or the new file, never half.

    The frame must carry GOLD_CTR_MINUTE_SCHEMA's columns (extra columns are dropped, dtypes are cast).
    """
    missing = [name for name in GOLD_CTR_MINUTE_SCHEMA.names() if name not in gold_frame.columns]
    if missing:
        raise ValueError(f"gold frame lacks columns {missing}; expected {GOLD_CTR_MINUTE_SCHEMA.names()}")
    columns = GOLD_CTR_MINUTE_SCHEMA.names()
    frame = gold_frame.select(columns).cast(dict(GOLD_CTR_MINUTE_SCHEMA)).sort(columns[:3])
    serving_path = Path(serving_path)
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        frame.write_parquet(temporary)
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, serving_path)
    finally:
        temporary.unlink(missing_ok=True)
    return serving_path
