"""The one place custpipe reads asset check results out of a Dagster instance.

Dagster has no public call for "the latest evaluation of every check, per partition", and its check-execution
index (`event_log_storage.get_asset_check_execution_history`) files a single-run backfill's evaluation under no
partition next to one PLANNED row per week. So this module reads the check events themselves, run by run,
through `get_run_records` and `get_records_for_run`: an ASSET_CHECK_EVALUATION event is the result, and the
run's ASSET_CHECK_EVALUATION_PLANNED event for the same check says which partitions that result covered.
Anything else in the project that needs check results goes through `latest_check_results`; when Dagster's APIs
move, this module is the only one to change.

Evaluations reported from outside a run (runless `report_runless_asset_event`) are not read: custpipe reports
every check from inside a run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

PASSED, FAILED, WARNING = "passed", "failed", "warning"

_EVALUATION = dg.DagsterEventType.ASSET_CHECK_EVALUATION
_PLANNED = dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED

JsonValue = str | int | float | bool | None | dict | list


@dataclass(frozen=True)
class CheckResultRecord:
    """The latest evaluation of one asset check for one partition, a range of partitions, or the whole asset.

    `partition` is set when the evaluation ran for one partition. A single-run backfill evaluates a partitioned
    check once over many partitions: then `partition` is None and `covered_partitions` lists the partitions this
    evaluation is still the latest for (later single-partition re-runs take theirs away). Unpartitioned checks
    have neither.
    """

    asset_key: str
    check_name: str
    partition: str | None
    covered_partitions: tuple[str, ...]
    passed: bool
    severity: str
    failure_count: int | None
    sample_failing_rows: str | None
    description: str | None
    metadata: dict[str, JsonValue]
    run_id: str
    timestamp: datetime

    @property
    def status(self) -> str:
        """`passed`, `failed` (an ERROR check did not pass) or `warning` (a WARN check did not pass)."""
        if self.passed:
            return PASSED
        return WARNING if self.severity == dg.AssetCheckSeverity.WARN.value else FAILED


@dataclass(eq=False)
class _Evaluation:
    """One ASSET_CHECK_EVALUATION event with what is needed to rank it; compared by identity."""

    result: dg.AssetCheckEvaluation
    run_id: str
    timestamp: float
    storage_id: int
    partitions: tuple[str, ...]

    @property
    def recency(self) -> tuple[float, int]:
        # storage ids are per run on the default sqlite instance, so time orders runs and the id orders within one
        return (self.timestamp, self.storage_id)


def latest_check_results(
    instance: dg.DagsterInstance, asset_check_keys: Sequence[dg.AssetCheckKey] | None = None
) -> list[CheckResultRecord]:
    """The latest evaluation of each check (all checks that ever ran when `asset_check_keys` is None), per partition.

    Sorted by asset key, check name and partition; empty for an instance without check evaluations.
    """
    wanted = set(asset_check_keys) if asset_check_keys is not None else None
    latest: dict[tuple[dg.AssetCheckKey, str | None], _Evaluation] = {}
    for evaluation in _evaluations(instance, wanted):
        for partition in evaluation.partitions or (None,):
            slot = (evaluation.result.asset_check_key, partition)
            if slot not in latest or evaluation.recency > latest[slot].recency:
                latest[slot] = evaluation

    records = []
    for evaluation in dict.fromkeys(latest.values()):
        key = evaluation.result.asset_check_key
        covered = tuple(p for p in evaluation.partitions if latest[(key, p)] is evaluation)
        records.append(_record(evaluation, covered))
    return sorted(records, key=lambda r: (r.asset_key, r.check_name, r.partition or "", r.covered_partitions))


def _evaluations(instance: dg.DagsterInstance, wanted: set[dg.AssetCheckKey] | None) -> Iterator[_Evaluation]:
    """Every check evaluation in the instance, each with the partitions its run planned it for."""
    for run_record in instance.get_run_records():
        run_id = run_record.dagster_run.run_id
        planned: dict[dg.AssetCheckKey, tuple[str, ...]] = {}
        for event_record in instance.get_records_for_run(run_id, of_type={_EVALUATION, _PLANNED}).records:
            entry = event_record.event_log_entry
            data = entry.get_dagster_event().event_specific_data
            key = data.asset_check_key
            if wanted is not None and key not in wanted:
                continue
            if entry.dagster_event_type == _PLANNED:
                subset = data.partitions_subset
                planned[key] = tuple(subset.get_partition_keys()) if subset is not None else ()
            else:
                partitions = (data.partition,) if data.partition is not None else planned.get(key, ())
                yield _Evaluation(data, run_id, entry.timestamp, event_record.storage_id, partitions)


def _record(evaluation: _Evaluation, covered: tuple[str, ...]) -> CheckResultRecord:
    result = evaluation.result
    metadata = {name: _plain(value) for name, value in result.metadata.items()}
    failure_count = metadata.get("failure_count")
    sample = metadata.get("sample_failing_rows")
    return CheckResultRecord(
        asset_key=result.asset_key.to_user_string(),
        check_name=result.check_name,
        partition=result.partition,
        covered_partitions=covered,
        passed=result.passed,
        severity=result.severity.value,
        failure_count=failure_count if isinstance(failure_count, int) and not isinstance(failure_count, bool) else None,
        sample_failing_rows=sample if isinstance(sample, str) else None,
        description=result.description,
        metadata=metadata,
        run_id=evaluation.run_id,
        timestamp=datetime.fromtimestamp(evaluation.timestamp, tz=UTC),
    )


def _plain(value: dg.MetadataValue) -> JsonValue:
    """A metadata value as plain JSON: numbers, text and markdown as themselves, JSON as is, anything else as text."""
    raw = value.value
    if isinstance(raw, float) and not math.isfinite(raw):
        return str(raw)
    if raw is None or isinstance(raw, str | int | float | bool):
        return raw
    if isinstance(value, dg.JsonMetadataValue):
        return raw
    return str(raw)
