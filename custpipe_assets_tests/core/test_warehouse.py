"""The warehouse IO manager: frames round-trip through a real DuckDB file, weeks are replaced atomically."""

from datetime import date, datetime

import dagster as dg
import duckdb
import pandas as pd
import polars as pl
import pytest

from custpipe_assets.core.io_manager import SetAsidePerWeek, WarehouseIOManager, WeeklyBatches
from custpipe_assets.core.partitions import weekly_partitions
from custpipe_assets.core.warehouse import STORAGE_VERSION, Warehouse, WarehouseUnavailableError

SAMPLE = pl.DataFrame(
    {
        "customer_id": ["C1", "C2", None],
        "count": pl.Series([1, 2, 3], dtype=pl.Int64),
        "price": [1.5, None, 3.25],
        "at": [datetime(2018, 9, 3, 10), datetime(2018, 9, 4, 11, 30), None],
        "day": [date(2018, 9, 3), None, date(2018, 9, 5)],
        "basket": [[{"product_id": "P1", "price": "5"}], [], None],
    }
)


def test_polars_frame_round_trips_through_the_io_manager(tmp_path):
    @dg.asset(key=["silver", "sample"])
    def sample() -> pl.DataFrame:
        return SAMPLE

    seen = {}

    @dg.asset(key=["gold", "copy"], ins={"frame": dg.AssetIn(["silver", "sample"])})
    def copy(frame: pl.DataFrame) -> pl.DataFrame:
        seen["frame"] = frame
        return frame

    @dg.asset(key=["gold", "as_pandas"], ins={"frame": dg.AssetIn(["silver", "sample"])})
    def as_pandas(frame: pd.DataFrame) -> pd.DataFrame:
        seen["pandas"] = frame
        return frame[["customer_id", "count"]]

    io_manager = WarehouseIOManager(path=str(tmp_path / "w.duckdb"))
    assert dg.materialize([sample, copy, as_pandas], resources={"io_manager": io_manager}).success
    assert seen["frame"].equals(SAMPLE) and seen["frame"].schema == SAMPLE.schema
    assert isinstance(seen["pandas"], pd.DataFrame) and seen["pandas"]["customer_id"].tolist()[:2] == ["C1", "C2"]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        assert connection.sql("select sum(count) from silver.sample").fetchone()[0] == 6
        assert connection.sql("select count(*) from gold.as_pandas").fetchone()[0] == 3


def _weekly_asset(partitions_def, rows_for_week):
    @dg.asset(key=["silver", "weekly"], partitions_def=partitions_def, backfill_policy=dg.BackfillPolicy.single_run())
    def weekly(context: dg.AssetExecutionContext) -> WeeklyBatches:
        weeks = [date.fromisoformat(key) for key in context.partition_keys]
        return WeeklyBatches(weeks, rows_for_week)

    return weekly


def test_weekly_batches_replace_each_week_and_rerun_is_idempotent(tmp_path):
    partitions_def = weekly_partitions(date(2018, 9, 3))
    warehouse = Warehouse(tmp_path / "w.duckdb")
    resources = {"io_manager": WarehouseIOManager(path=str(warehouse.path))}

    def rows(week):
        return pl.DataFrame({"value": [week.day, week.day + 100]})

    asset = _weekly_asset(partitions_def, rows)
    for _ in range(2):  # the second run must replace, not append
        result = dg.materialize(
            [asset],
            resources=resources,
            tags={
                "dagster/asset_partition_range_start": "2018-09-03",
                "dagster/asset_partition_range_end": "2018-09-10",
            },
        )
        assert result.success
    table = warehouse.read("silver.weekly").sort("week_start", "value")
    assert table.columns == ["week_start", "value"]
    assert table.to_dicts() == [
        {"week_start": date(2018, 9, 3), "value": 3},
        {"week_start": date(2018, 9, 3), "value": 103},
        {"week_start": date(2018, 9, 10), "value": 10},
        {"week_start": date(2018, 9, 10), "value": 110},
    ]
    # re-running one week with new content changes that week only
    dg.materialize(
        [_weekly_asset(partitions_def, lambda week: pl.DataFrame({"value": [0]}))],
        resources=resources,
        partition_key="2018-09-10",
    )
    assert warehouse.read("silver.weekly").sort("week_start", "value")["value"].to_list() == [3, 103, 0]


def test_a_failed_week_write_leaves_the_previous_rows(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    week = date(2018, 9, 3)
    warehouse.replace_week("silver.weekly", week, pl.DataFrame({"value": [1, 2]}))
    with pytest.raises(duckdb.Error):  # a value that does not fit the column fails mid-write
        warehouse.replace_week("silver.weekly", week, pl.DataFrame({"value": ["not a number"]}))
    assert warehouse.read("silver.weekly")["value"].to_list() == [1, 2]


def test_rows_of_another_week_are_refused(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(ValueError, match="other than 2018-09-03"):
        warehouse.replace_week(
            "silver.weekly", date(2018, 9, 3), pl.DataFrame({"week_start": [date(2018, 9, 10)], "value": [1]})
        )


def test_columns_are_inserted_by_name_not_position(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.replace_week("silver.t", date(2018, 9, 3), pl.DataFrame({"a": [1], "b": ["x"]}))
    warehouse.replace_week("silver.t", date(2018, 9, 10), pl.DataFrame({"b": ["y"], "a": [2]}))
    assert warehouse.read("silver.t").sort("a").select("a", "b").rows() == [(1, "x"), (2, "y")]


def test_an_unreadable_warehouse_names_the_path_and_the_setting(tmp_path):
    not_a_database = tmp_path / "w.duckdb"
    not_a_database.write_text("this is not a DuckDB file")
    with pytest.raises(WarehouseUnavailableError) as error:
        Warehouse(not_a_database).read("gold.anything")
    assert str(not_a_database) in str(error.value) and "CUSTPIPE_WAREHOUSE" in str(error.value)


def test_frames_set_aside_per_week_are_written_together_per_week_and_then_let_go(tmp_path):
    weeks = [date(2018, 9, 3), date(2018, 9, 10)]
    big = pl.DataFrame({"reason": ["duplicate", "blank_line", "duplicate"], "raw": ["a" * 1000, "b", "c"]})
    aside = SetAsidePerWeek(weeks)
    aside.keep(weeks[0], big.slice(1, 1))
    aside.keep(weeks[0], big.slice(2, 1))
    aside.keep(weeks[1], big.head(0))

    warehouse = Warehouse(tmp_path / "w.duckdb")
    written = warehouse.replace_weeks("silver.quarantine", aside.batches())
    assert written.rows == {weeks[0]: 2, weeks[1]: 0}
    assert written.reasons[weeks[0]] == {"blank_line": 1, "duplicate": 1}
    assert warehouse.read("silver.quarantine").get_column("raw").to_list() == ["b", "c"]
    assert aside._held == {}  # released once written


WEEKS = [date(2018, 9, 3), date(2018, 9, 10), date(2018, 9, 17), date(2018, 9, 24)]
VALUES = pl.Schema({"week_start": pl.Date, "value": pl.Int64})


def _write_values(values_by_week: dict[date, list[int]]):
    """A SQL step's write: insert each week's values (from a frame it registers) for the weeks it is given."""

    def write(connection: duckdb.DuckDBPyConnection, weeks: list[date]) -> None:
        rows = [(week, value) for week in weeks for value in values_by_week[week]]
        connection.register("incoming", pl.DataFrame(rows, schema=VALUES, orient="row"))
        connection.execute("insert into silver.values by name select * from incoming")

    return write


def test_rewrite_weeks_replaces_exactly_its_weeks_with_parallel_writers_and_reruns_alike(tmp_path, monkeypatch):
    monkeypatch.setattr("custpipe_assets.core.warehouse.SQL_WRITERS", 2)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    first = {week: [index, index * 10] for index, week in enumerate(WEEKS)}
    written = warehouse.rewrite_weeks({"silver.values": VALUES}, WEEKS, _write_values(first))
    assert written == {"silver.values": dict.fromkeys(WEEKS, 2)}
    # the middle two weeks again, with new values (two writers, one week each): the others are untouched
    again = {WEEKS[1]: [7], WEEKS[2]: [8, 9, 10]}
    written = warehouse.rewrite_weeks({"silver.values": VALUES}, WEEKS[1:3], _write_values(again))
    assert written == {"silver.values": {WEEKS[1]: 1, WEEKS[2]: 3}}
    expected = sorted((week, value) for week, values in (first | again).items() for value in values)
    assert sorted(warehouse.read("silver.values").rows()) == expected
    warehouse.rewrite_weeks({"silver.values": VALUES}, WEEKS[1:3], _write_values(again))  # a re-run replaces
    assert sorted(warehouse.read("silver.values").rows()) == expected


def test_rewrite_weeks_leaves_the_weeks_of_a_failed_writer_as_they_were(tmp_path, monkeypatch):
    monkeypatch.setattr("custpipe_assets.core.warehouse.SQL_WRITERS", 2)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    before = {week: [1] for week in WEEKS}
    warehouse.rewrite_weeks({"silver.values": VALUES}, WEEKS, _write_values(before))

    def write(connection: duckdb.DuckDBPyConnection, weeks: list[date]) -> None:
        _write_values({week: [2] for week in WEEKS})(connection, weeks)
        if WEEKS[3] in weeks:  # the second writer fails after inserting
            raise RuntimeError("the source vanished mid-write")

    with pytest.raises(RuntimeError, match="vanished"):
        warehouse.rewrite_weeks({"silver.values": VALUES}, WEEKS, write)
    values = dict(warehouse.read("silver.values").rows())
    assert values == {WEEKS[0]: 2, WEEKS[1]: 2, WEEKS[2]: 1, WEEKS[3]: 1}, "each writer's weeks commit or not together"


def test_a_new_warehouse_is_written_in_the_newer_storage_format_and_an_older_file_keeps_its_own(tmp_path):
    def storage_version(path):
        with duckdb.connect(str(path)) as connection:  # DuckDB's own default settings: it reads what the file says
            return connection.execute(
                "select tags['storage_version'] from duckdb_databases() where database_name = ?", [path.stem]
            ).fetchone()[0]

    new = Warehouse(tmp_path / "new.duckdb")
    new.replace_table("silver.t", pl.DataFrame({"x": ["a", "b"]}))
    assert storage_version(new.path).startswith(STORAGE_VERSION)
    with duckdb.connect(str(tmp_path / "old.duckdb")) as connection:  # as an earlier version of custpipe made it
        connection.execute("create table t as select 1 as x")
    made_with = storage_version(tmp_path / "old.duckdb")
    assert not made_with.startswith(STORAGE_VERSION)
    old = Warehouse(tmp_path / "old.duckdb")
    old.replace_table("silver.t", pl.DataFrame({"x": ["a"]}))
    assert storage_version(old.path) == made_with


DUCKDB_MAGIC = b"DUCK"  # DuckDB's header: 8 bytes of checksum, then these


def test_a_new_warehouse_file_is_never_opened_before_it_is_whole(tmp_path, monkeypatch):
    """Two runs starting on a new warehouse: one must not open the file while the other's DuckDB is still making it
    (CI saw "exists, but it is not a valid DuckDB database file" from overlapping writers)."""
    path = tmp_path / "w.duckdb"
    opened_whole = []
    connect = duckdb.connect

    def watching(database, *args, **kwargs):
        if database == str(path):
            opened_whole.append(path.exists() and path.read_bytes()[8:12] == DUCKDB_MAGIC)
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", watching)
    Warehouse(path).replace_table("silver.t", pl.DataFrame({"x": [1]}))
    Warehouse(path).replace_table("silver.u", pl.DataFrame({"x": [2]}))
    assert opened_whole == [True, True]
    assert [p.name for p in tmp_path.iterdir()] == ["w.duckdb"], "no private file is left behind"


def test_a_warehouse_another_process_made_first_is_kept(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    connect = duckdb.connect

    def losing_the_race(database, *args, **kwargs):
        if database != str(path) and not path.exists():  # while this process makes its private file
            with connect(str(path)) as other:
                other.execute("create schema silver; create table silver.theirs as select 7 as x")
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", losing_the_race)
    warehouse = Warehouse(path)
    warehouse.replace_table("silver.ours", pl.DataFrame({"x": [1]}))
    assert warehouse.read("silver.theirs")["x"].to_list() == [7]
    assert warehouse.read("silver.ours")["x"].to_list() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["w.duckdb"]
