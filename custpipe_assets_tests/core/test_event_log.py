"""The instance's event log (core/event_log.py): what a run stores through it, Dagster's own SQLite event log reads
back from the same files, and it never holds more than a few databases open."""

import sqlite3
from datetime import date

import dagster as dg
import pytest
import yaml
from dagster._serdes import deserialize_value

from custpipe_assets.core.event_log import (
    ENGINES_KEPT,
    EVENT_BATCH_SIZE,
    EVENT_BATCH_SIZE_ENV,
    KeptEnginesSqliteEventLogStorage,
)
from custpipe_assets.core.partitions import week_range_tags
from custpipe_assets.run import INSTANCE_YAML

WEEKS = dg.StaticPartitionsDefinition(["2018-09-03", "2018-09-10", "2018-09-17"])


@dg.asset(partitions_def=WEEKS, backfill_policy=dg.BackfillPolicy.single_run())
def weekly_rows(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    for number, week in enumerate(context.partition_keys, start=1):
        context.add_asset_metadata({"dagster/row_count": number * 10}, partition_key=week)
    return dg.MaterializeResult()


@dg.asset_check(asset=weekly_rows, partitions_def=WEEKS)
def weekly_rows_counted(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"weeks": len(context.partition_keys)})


def _instance(home, instance_yaml: str) -> dg.DagsterInstance:
    (home / "dagster.yaml").write_text(instance_yaml)
    return dg.DagsterInstance.from_config(str(home))


def _run_every_week(instance: dg.DagsterInstance, definitions: dg.Definitions) -> dg.ExecuteInProcessResult:
    """The definitions' assets and checks over all three weeks, as one run (as `custpipe run` launches a range)."""
    job = definitions.resolve_implicit_global_asset_job_def()
    tags = week_range_tags(date(2018, 9, 3), date(2018, 9, 17))
    return job.execute_in_process(instance=instance, tags=tags)


def _row_counts(instance: dg.DagsterInstance) -> dict[str, int]:
    records = instance.fetch_materializations(dg.AssetKey("weekly_rows"), limit=100).records
    return {
        record.partition_key: record.asset_materialization.metadata["dagster/row_count"].value for record in records
    }


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


def test_a_run_stored_through_it_reads_back_with_dagsters_own_event_log(home):
    with _instance(home, INSTANCE_YAML) as instance:
        assert isinstance(instance.event_log_storage, KeptEnginesSqliteEventLogStorage)
        result = _run_every_week(instance, dg.Definitions(assets=[weekly_rows]))
        assert result.success
        run_id = result.run_id
    # Dagster's default storage, on the same home: the files are where and what it expects
    with _instance(home, "telemetry:\n  enabled: false\n") as default:
        assert type(default.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert _row_counts(default) == {"2018-09-03": 10, "2018-09-10": 20, "2018-09-17": 30}
        assert default.get_run_by_id(run_id).is_success
        assert (home / "history" / "runs" / f"{run_id}.db").is_file()
    # and ours again, on files it did not make in this process
    with _instance(home, INSTANCE_YAML) as again:
        assert _row_counts(again) == {"2018-09-03": 10, "2018-09-10": 20, "2018-09-17": 30}
        assert again.get_run_by_id(run_id).is_success
        assert len(again.all_logs(run_id)) == len(default.all_logs(run_id))
        assert again.event_log_storage.has_table("event_logs") and not again.event_log_storage.has_table("no_such")


def test_it_keeps_only_the_last_few_databases_open_and_wipes_cleanly(home):
    with _instance(home, INSTANCE_YAML) as instance:
        storage = instance.event_log_storage
        for number in range(ENGINES_KEPT + 3):
            with storage.run_connection(f"run-{number}") as connection:
                connection.exec_driver_sql("select 1")
        assert len(storage._engines) == ENGINES_KEPT
        assert f"run-{ENGINES_KEPT + 2}" in storage._engines and "run-0" not in storage._engines
        storage.wipe()
        assert not list((home / "history" / "runs").glob("run-*.db"))
        job = dg.Definitions(assets=[weekly_rows]).resolve_implicit_global_asset_job_def()
        assert job.execute_in_process(instance=instance, partition_key="2018-09-10").success
        assert _row_counts(instance) == {"2018-09-10": 10}


def test_the_instance_yaml_names_an_importable_storage():
    config = yaml.safe_load(INSTANCE_YAML)["event_log_storage"]
    assert (config["module"], config["class"]) == (
        KeptEnginesSqliteEventLogStorage.__module__,
        "KeptEnginesSqliteEventLogStorage",
    )


def _stored(home, run_id: str) -> dict:
    """What Dagster's own SQLite log reads back of a run of `weekly_rows`: each week's materialization and row count,
    the asset's last materialization, the indexed tags of each event, and the run's events by type."""
    with _instance(home, "telemetry:\n  enabled: false\n") as default:
        key = dg.AssetKey("weekly_rows")
        records = default.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=None), limit=100
        ).records
        tags = default.event_log_storage.get_event_tags_for_asset(key)
        return {
            "row_counts": _row_counts(default),
            "partitions": default.get_materialized_partitions(key),
            "last": default.get_latest_materialization_event(key).dagster_event.partition,
            "asset_row_last": _asset_row_last_partition(home),
            "tag_keys": sorted(tuple(sorted(tag)) for tag in tags),  # the values (data versions) differ by run
            "records": len(records),
            "events": sorted(str(entry.dagster_event_type) for entry in default.all_logs(run_id)),
            "check_executions": sorted(
                (execution.partition or "", str(execution.status), execution.event.dagster_event.step_key)
                for execution in default.event_log_storage.get_asset_check_execution_history(
                    weekly_rows_counted.check_key, limit=100
                )
            ),
        }


def _asset_row_last_partition(home) -> str | None:
    """The partition of the last materialization in the asset's row of the index (what the UI's asset list reads;
    Dagster's readers fall back to the event log when the row lacks it, so this reads the row itself)."""
    with sqlite3.connect(home / "history" / "runs" / "index.db") as connection:
        (stored,) = connection.execute("select last_materialization from asset_keys").fetchone()
    return deserialize_value(stored).event_log_entry.dagster_event.partition if stored else None


def test_it_stores_what_dagsters_own_event_log_stores(tmp_path, monkeypatch):
    """The same run through Dagster's default SQLite event log (event by event) and through ours (batched, planned
    checks written its own way) reads back the same with Dagster's class."""
    batches = []
    store_event_batch = KeptEnginesSqliteEventLogStorage.store_event_batch

    def counted(self, events):
        batches.append((len(events), {str(event.dagster_event_type) for event in events}))
        store_event_batch(self, events)

    monkeypatch.setattr(KeptEnginesSqliteEventLogStorage, "store_event_batch", counted)
    stored = {}
    for storage, instance_yaml in (("dagster", "telemetry:\n  enabled: false\n"), ("ours", INSTANCE_YAML)):
        home = tmp_path / storage
        home.mkdir()
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv(EVENT_BATCH_SIZE_ENV, EVENT_BATCH_SIZE if storage == "ours" else "0")
        with _instance(home, instance_yaml) as instance:
            definitions = dg.Definitions(assets=[weekly_rows], asset_checks=[weekly_rows_counted])
            result = _run_every_week(instance, definitions)
            assert result.success
        stored[storage] = _stored(home, result.run_id)
    # ours batched the run's planned events (3 weeks of the asset, one check), then the step's 3 materializations
    assert [types for _, types in batches] == [
        {"DagsterEventType.ASSET_MATERIALIZATION_PLANNED", "DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED"},
        {"DagsterEventType.ASSET_MATERIALIZATION"},
    ]
    assert batches[1][0] == 3
    assert stored["ours"] == stored["dagster"]
    assert stored["dagster"]["row_counts"] == {"2018-09-03": 10, "2018-09-10": 20, "2018-09-17": 30}
    planned = [week for week, status, _ in stored["dagster"]["check_executions"] if status.endswith("PLANNED")]
    assert planned == ["2018-09-03", "2018-09-10", "2018-09-17"]  # the check's planned execution of each week
