"""The one quarantine contract every domain follows: each record a step rejects becomes one row of these columns,
so a person reads every quarantine table the same way and per-reason metadata counts the same codes.

- `source_file`: where it landed, relative to the landing folder (`transactions/d=2018-09-03/transactions.json`),
  or the source's name when nothing landed as a file (`api:/purchases`);
- `line_number`: the physical line of a text file (null when the record is not a line of one);
- `position`: where inside the line or file (a basket index, `batch 3 event 7`, `page 2 record 14`), or null;
- `reason`: a code from the domain's enumeration of reasons (checked by the table's schema check);
- `detail`: free text for the person reading it (the offending value, the rule), or null;
- `raw`: the record as landed.

Weekly quarantine tables put `week_start` first. No Dagster here: schemas and a frame builder only (the check's schema is
`core.checks.quarantine_check_schema`).
"""

import polars as pl

QUARANTINE_SCHEMA = pl.Schema(
    {
        "source_file": pl.String,
        "line_number": pl.Int32,
        "position": pl.String,
        "reason": pl.String,
        "detail": pl.String,
        "raw": pl.String,
    }
)
WEEKLY_QUARANTINE_SCHEMA = pl.Schema({"week_start": pl.Date, **QUARANTINE_SCHEMA})


def as_quarantine(frame: pl.DataFrame, *, weekly: bool = False) -> pl.DataFrame:
    """`frame` in the contract's columns and order: missing optional columns become null, extra ones go."""
    schema = WEEKLY_QUARANTINE_SCHEMA if weekly else QUARANTINE_SCHEMA
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
    )
