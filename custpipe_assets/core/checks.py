"""Asset checks: one factory turning a Pandera schema into a Dagster asset check, plus the shared check builders
(source present, partition reconciles) every domain uses.

Every check reports `passed`, a failure count and a small sample of failing rows, also when it passes (0 failures),
so the UI keeps a history per partition.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

import dagster as dg
import pandera.errors
import pandera.polars as pa
import polars as pl

from custpipe_assets.core.conventions import POOL
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.metadata import markdown_table
from custpipe_assets.core.partitions import weeks_of
from custpipe_assets.core.quarantine import QUARANTINE_SCHEMA, WEEKLY_QUARANTINE_SCHEMA
from custpipe_assets.core.sql_checks import failing_rows, table_exists, validate_in_sql
from custpipe_assets.core.warehouse import PARTITION_COLUMN, WarehouseResource, query_on, table_name

SAMPLE_ROWS = 10


@dataclass
class SchemaValidation:
    """What a Pandera schema found in a table: failure cases and the rows they point at."""

    rows_checked: int = 0
    failure_cases: list[pl.DataFrame] = field(default_factory=list)
    failing_rows: list[pl.DataFrame] = field(default_factory=list)

    @property
    def failure_count(self) -> int:
        return sum(cases.height for cases in self.failure_cases)

    def add(self, schema: pa.DataFrameSchema, frame: pl.DataFrame) -> None:
        """Validate one frame (lazily, so every failure is collected, not just the first)."""
        self.rows_checked += frame.height
        try:
            schema.validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as errors:
            cases = errors.failure_cases.with_columns(pl.col("failure_case").cast(pl.String))
            self.failure_cases.append(cases)
            indexes = cases.get_column("index").drop_nulls().unique().sort().head(SAMPLE_ROWS)
            if indexes.len():
                self.failing_rows.append(
                    frame.with_row_index("_row").filter(pl.col("_row").is_in(indexes)).drop("_row")
                )

    def result(self, *, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
        cases = pl.concat(self.failure_cases, how="vertical_relaxed") if self.failure_cases else _empty_cases()
        by_check = cases.group_by("column", "check").len("failures").sort("failures", descending=True)
        rows = (
            pl.concat(self.failing_rows, how="diagonal_relaxed").head(SAMPLE_ROWS)
            if self.failing_rows
            else pl.DataFrame()
        )
        return dg.AssetCheckResult(
            passed=self.failure_count == 0,
            severity=severity,
            metadata={
                "rows_checked": self.rows_checked,
                "failure_count": self.failure_count,
                "failures_by_check": dg.MetadataValue.md(markdown_table(by_check) or "none"),
                "sample_failure_cases": dg.MetadataValue.md(markdown_table(cases.head(SAMPLE_ROWS)) or "none"),
                "sample_failing_rows": dg.MetadataValue.md(markdown_table(rows) or "none"),
            },
        )


def pandera_schema(
    frame_schema: pl.Schema,
    *,
    checks: dict[str, pa.Check | list[pa.Check]] | None = None,
    nullable: tuple[str, ...] = (),
    unique: list[str] | None = None,
    strict: bool = True,
    description: str,
) -> pa.DataFrameSchema:
    """The Pandera schema of a table whose columns and dtypes are exactly the transform's `pl.Schema` (one source
    for both): every column present with its dtype, none null unless listed in `nullable`, plus per-column checks.
    `strict` (the default): no other columns, and in the schema's order."""
    checks = checks or {}
    unknown = (set(checks) | set(nullable)) - set(frame_schema.names())
    if unknown:
        raise ValueError(f"checks name columns the schema does not have: {sorted(unknown)}")
    columns = {
        name: pa.Column(dtype, checks=checks.get(name), nullable=name in nullable)
        for name, dtype in frame_schema.items()
    }
    return pa.DataFrameSchema(columns, unique=unique, strict=strict, ordered=strict, description=description)


def quarantine_check_schema(reasons: Sequence[str], *, weekly: bool = False, description: str) -> pa.DataFrameSchema:
    """The Pandera schema of a quarantine table: the contract's columns in order and a known reason code on every
    row (`core/quarantine.py`)."""
    return pandera_schema(
        WEEKLY_QUARANTINE_SCHEMA if weekly else QUARANTINE_SCHEMA,
        checks={"reason": pa.Check.isin(list(reasons))},
        nullable=("line_number", "position", "detail", "raw"),
        description=description,
    )


def quarantine_check(
    asset_key: dg.AssetKey,
    reasons: Sequence[str],
    *,
    description: str,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    """The schema check of a quarantine table (`quarantine_check_schema`): the weekly contract, checked a week at a
    time, when the table is partitioned."""
    schema = quarantine_check_schema(reasons, weekly=partitions_def is not None, description=description)
    return schema_check(asset_key, schema, partitions_def=partitions_def)


def _sql_result(
    connection,
    table: str,
    rows_checked: int,
    cases: pl.DataFrame,
    weeks: list[date] | None,
    severity: dg.AssetCheckSeverity,
) -> dg.AssetCheckResult:
    """The same report as `SchemaValidation.result`, from the failure counts SQL found."""
    samples = [
        failing_rows(connection, table, where, weeks).with_columns(pl.lit(f"{column}: {check}").alias("failed_check"))
        for column, check, where in cases.filter(pl.col("where").is_not_null())
        .select("column", "check", "where")
        .head(3)
        .iter_rows()
    ]
    rows = pl.concat(samples, how="diagonal_relaxed").head(SAMPLE_ROWS) if samples else pl.DataFrame()
    failure_count = int(cases["failures"].sum()) if cases.height else 0
    by_check = cases.select("column", "check", "failures").sort("failures", descending=True)
    return dg.AssetCheckResult(
        passed=failure_count == 0,
        severity=severity,
        metadata={
            "rows_checked": rows_checked,
            "failure_count": failure_count,
            "failures_by_check": dg.MetadataValue.md(markdown_table(by_check) or "none"),
            "sample_failure_cases": dg.MetadataValue.md(
                markdown_table(
                    cases.filter(pl.col("failure_case").is_not_null()).select("column", "check", "failure_case")
                )
                or "none"
            ),
            "sample_failing_rows": dg.MetadataValue.md(markdown_table(rows) or "none"),
            "validated_in": "warehouse (SQL)",
        },
    )


def blocks_gold(asset_key: dg.AssetKey, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> bool:
    """Silver schema and reconciliation checks block: a silver week that fails them never reaches gold in the same
    run (a WARN check informs, it does not block)."""
    return asset_key.path[0] == "silver" and severity == dg.AssetCheckSeverity.ERROR


def _empty_cases() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "failure_case": pl.String,
            "schema_context": pl.String,
            "column": pl.String,
            "check": pl.String,
            "check_number": pl.Int32,
            "index": pl.Int32,
        }
    )


def schema_check(
    asset_key: dg.AssetKey,
    schema: pa.DataFrameSchema,
    *,
    name: str | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    blocking: bool | None = None,
) -> dg.AssetChecksDefinition:
    """The asset check for `schema` on the table of `asset_key`; a weekly table is validated one week at a time.
    Blocking by default on silver tables (see `blocks_gold`)."""
    table = table_name(asset_key)

    @dg.asset_check(
        asset=asset_key,
        name=name or "schema",
        description=schema.description or f"{table} matches its Pandera schema ({', '.join(schema.columns)}).",
        partitions_def=partitions_def,
        blocking=blocks_gold(asset_key, severity) if blocking is None else blocking,
        pool=POOL,
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        weeks = weeks_of(context) if partitions_def is not None else None
        store = warehouse.get()
        with store.connect() as connection:
            if table_exists(connection, table):
                found = validate_in_sql(connection, table, schema, weeks)
                if found is not None:  # every check translated: one SQL pass where the table lives
                    return _sql_result(connection, table, *found, weeks, severity)
            # a custom check: Pandera on Polars, a week at a time; with `connection` still open, each week's read
            # reuses the open DuckDB database instead of opening the file again
            validation = SchemaValidation()
            for week_weeks in [None] if weeks is None else [[week] for week in weeks]:
                validation.add(schema, store.read(table, week_weeks))
        return validation.result(severity=severity)

    return _check


def reconciliation_check(
    asset_key: dg.AssetKey,
    *,
    name: str = "reconciles",
    description: str,
    rows_in_sql: str,
    rows_out_sql: str,
    rows_quarantined_sql: str | None,
    partitions_def: dg.PartitionsDefinition | None = None,
    additional_deps: list[dg.AssetKey] | None = None,
) -> dg.AssetChecksDefinition:
    """Rows in = rows out + rows quarantined, per week, each side counted by its own SQL over the warehouse.

    Each SQL returns `week_start, rows` grouped by week (or one row with `rows` for an unpartitioned table) and
    uses `$weeks` (the list of Mondays checked) when partitioned. No quarantine SQL means nothing may be dropped.
    """

    @dg.asset_check(
        asset=asset_key,
        name=name,
        description=description,
        partitions_def=partitions_def,
        additional_deps=additional_deps or [],
        blocking=blocks_gold(asset_key),
        pool=POOL,
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        weeks = weeks_of(context) if partitions_def is not None else None
        with warehouse.get().connect() as connection:  # one opening of the file for the three counts, not three
            report = reconcile(partial(query_on, connection), rows_in_sql, rows_out_sql, rows_quarantined_sql, weeks)
        unbalanced = report.filter(pl.col("difference") != 0)
        return dg.AssetCheckResult(
            passed=unbalanced.is_empty(),
            metadata={
                "failure_count": unbalanced.height,
                "rows_in": int(report["rows_in"].sum()),
                "rows_out": int(report["rows_out"].sum()),
                "rows_quarantined": int(report["rows_quarantined"].sum()),
                "sample_failing_rows": dg.MetadataValue.md(markdown_table(unbalanced.head(SAMPLE_ROWS)) or "none"),
            },
        )

    return _check


def weekly_row_count_sql(table: str, where: str = "true") -> str:
    """Rows per week of a weekly table (optionally only some), in the form `reconciliation_check` takes."""
    return f"select week_start, count(*) as rows from {table} where week_start = any($weeks) and {where} group by 1"


def weekly_reconciliation(
    silver: dg.AssetKey,
    bronze: dg.AssetKey,
    quarantine: dg.AssetKey,
    *,
    description: str,
    partitions_def: dg.PartitionsDefinition,
    quarantined_where: str = "true",
) -> dg.AssetChecksDefinition:
    """`reconciliation_check` of a weekly silver table: per week, rows of its bronze table = its rows + the rows of
    its quarantine table (those `quarantined_where` picks, when the quarantine is shared with other tables)."""
    return reconciliation_check(
        silver,
        description=description,
        rows_in_sql=weekly_row_count_sql(table_name(bronze)),
        rows_out_sql=weekly_row_count_sql(table_name(silver)),
        rows_quarantined_sql=weekly_row_count_sql(table_name(quarantine), quarantined_where),
        partitions_def=partitions_def,
        additional_deps=[bronze, quarantine],
    )


def reconcile(
    query: Callable[[str, dict | None], pl.DataFrame],
    rows_in_sql: str,
    rows_out_sql: str,
    rows_quarantined_sql: str | None,
    weeks: list | None,
) -> pl.DataFrame:
    """One row per week (or one row) with rows_in, rows_out, rows_quarantined and the difference that must be 0."""
    keys = [PARTITION_COLUMN] if weeks is not None else []
    parameters = {"weeks": weeks} if weeks is not None else {}

    def counted(sql: str | None, label: str) -> pl.DataFrame:
        if sql is None:
            return pl.DataFrame(
                {**({PARTITION_COLUMN: weeks} if weeks is not None else {}), label: [0] * len(weeks or [0])}
            )
        return query(sql, parameters or None).rename({"rows": label})

    frames = [
        counted(rows_in_sql, "rows_in"),
        counted(rows_out_sql, "rows_out"),
        counted(rows_quarantined_sql, "rows_quarantined"),
    ]
    if weeks is not None:
        report = pl.DataFrame({PARTITION_COLUMN: weeks}, schema={PARTITION_COLUMN: pl.Date})
        for frame in frames:
            report = report.join(frame.with_columns(pl.col(PARTITION_COLUMN).cast(pl.Date)), on=keys, how="left")
    else:
        report = pl.concat(frames, how="horizontal")
    counts = ["rows_in", "rows_out", "rows_quarantined"]
    return report.with_columns(pl.col(counts).fill_null(0).cast(pl.Int64)).with_columns(
        difference=pl.col("rows_in") - pl.col("rows_out") - pl.col("rows_quarantined")
    )


def sql_check(
    asset_key: dg.AssetKey,
    *,
    name: str,
    description: str,
    failing_rows_sql: str,
    additional_deps: list[dg.AssetKey] | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
) -> dg.AssetChecksDefinition:
    """A check that passes when `failing_rows_sql` returns no rows (keys, relationships, totals that must agree)."""

    @dg.asset_check(
        asset=asset_key, name=name, description=description, additional_deps=additional_deps or [], pool=POOL
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        failing = warehouse.get().query(failing_rows_sql)
        return dg.AssetCheckResult(
            passed=failing.is_empty(),
            severity=severity,
            metadata={
                "failure_count": failing.height,
                "sample_failing_rows": dg.MetadataValue.md(markdown_table(failing.head(SAMPLE_ROWS)) or "none"),
            },
        )

    return _check


def source_present_check(
    asset_key: dg.AssetKey,
    *,
    description: str,
    find_missing: Callable[[Path, list[date] | None], list[str]],
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetChecksDefinition:
    """A WARN-level check listing the landing files behind a bronze asset that were absent (empty table, no crash)."""

    @dg.asset_check(asset=asset_key, name="source_present", description=description, partitions_def=partitions_def)
    def _check(context: dg.AssetCheckExecutionContext, landing: LandingResource) -> dg.AssetCheckResult:
        weeks = weeks_of(context) if partitions_def is not None else None
        missing = find_missing(landing.root(), weeks)
        return dg.AssetCheckResult(
            passed=not missing,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "failure_count": len(missing),
                "sample_failing_rows": dg.MetadataValue.md(
                    "\n".join(f"- {path}" for path in missing[:SAMPLE_ROWS]) or "none"
                ),
            },
        )

    return _check


def files_readable_check(
    asset_key: dg.AssetKey,
    *,
    description: str,
    file_reports: Callable[[Path], list[pl.DataFrame]],
) -> dg.AssetChecksDefinition:
    """A WARN-level check naming every landed file whose report (core.csv_reader) is not `ok`: empty, header only,
    or in the wrong columns. Such a file's records are quarantined as `wrong_header`; the check says why."""

    @dg.asset_check(asset=asset_key, name="files_readable", description=description)
    def _check(landing: LandingResource) -> dg.AssetCheckResult:
        reports = pl.concat(file_reports(landing.root()))
        problems = reports.filter(pl.col("status") != "ok").select("source_file", "status", "detail", "header")
        return dg.AssetCheckResult(
            passed=problems.is_empty(),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "files_checked": reports.height,
                "failure_count": problems.height,
                "sample_failing_rows": dg.MetadataValue.md(markdown_table(problems.head(SAMPLE_ROWS)) or "none"),
            },
        )

    return _check
