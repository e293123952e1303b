"""Faults: a writer killed mid-run leaves every week whole (old or new, never half), a re-run repairs it; runs that
overlap in time on one warehouse file all succeed (DuckDB has one writer: the others wait for the lock)."""

import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta

import polars as pl
import pytest

from custpipe_assets.core.warehouse import Warehouse

pytestmark = pytest.mark.slow  # end-to-end Dagster runs or several processes

WEEKS = [date(2018, 9, 3) + timedelta(days=7 * i) for i in range(6)]
ROWS = 300_000

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import date
    import polars as pl
    from custpipe_assets.core.warehouse import Warehouse
    weeks = [date.fromisoformat(w) for w in sys.argv[2].split(",")]

    def frames():
        for week in weeks:
            frame = pl.DataFrame({"version": ["new"] * ROWS, "n": range(ROWS)})
            print("writing", week, flush=True)  # the weeks before this one are committed
            yield week, frame

    Warehouse(sys.argv[1]).replace_weeks("silver.t", frames())
    print("done", flush=True)
    """.replace("ROWS", str(ROWS))
)


def _versions(warehouse: Warehouse) -> dict[date, tuple[str, int]]:
    frame = warehouse.query(
        "select week_start, min(version) as lo, max(version) as hi, count(*) as rows from silver.t group by 1"
    )
    assert (frame["lo"] == frame["hi"]).all(), "a week mixes old and new rows"
    return {row["week_start"]: (row["lo"], row["rows"]) for row in frame.iter_rows(named=True)}


def test_a_writer_killed_mid_run_leaves_every_week_whole_and_a_rerun_repairs(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.replace_weeks(
        "silver.t", ((w, pl.DataFrame({"version": ["old"] * ROWS, "n": range(ROWS)})) for w in WEEKS)
    )
    command = [sys.executable, "-c", WRITER, str(warehouse.path), ",".join(w.isoformat() for w in WEEKS)]
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    while writer.stdout.readline().strip() != f"writing {WEEKS[2]}":
        pass
    time.sleep(0.05)  # inside the third week's transaction
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    after_kill = _versions(warehouse)
    assert set(after_kill) == set(WEEKS)  # no week lost
    assert all(rows == ROWS for _, rows in after_kill.values())  # and none half-written
    assert [after_kill[week][0] for week in WEEKS[:2]] == ["new", "new"]  # committed before the kill
    assert [after_kill[week][0] for week in WEEKS[3:]] == ["old", "old", "old"]  # never reached
    subprocess.run(command, check=True, capture_output=True)
    assert _versions(warehouse) == dict.fromkeys(WEEKS, ("new", ROWS))


def test_overlapping_writers_on_one_warehouse_all_wait_their_turn(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(warehouse.path), ",".join(w.isoformat() for w in weeks)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for weeks in (WEEKS[:3], WEEKS[3:], WEEKS[1:4])
    ]
    results = [writer.communicate(timeout=300) for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0], [err[-500:] for _, err in results]
    assert _versions(warehouse) == dict.fromkeys(WEEKS, ("new", ROWS))
