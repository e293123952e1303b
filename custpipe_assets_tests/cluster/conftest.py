"""Fixtures of the cluster tests: the weekly purchase counts computed independently from the raw files (the same
oracle as the purchases tests, copied so this folder stands alone), and a local cluster that is always stopped."""

import shutil
import socket
import tempfile
from datetime import date
from pathlib import Path

import pytest

from custpipe_assets.cluster.commands import down, up
from custpipe_assets.cluster.processes import missing_services
from custpipe_assets.core.settings import Settings
from custpipe_assets.sample import generate_sample

FIRST_WEEK = date(2018, 9, 3)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """PostgreSQL, Redis and two Celery workers on free ports, over the generated sample (seed 11); stopped by PID
    whatever the test did. Skipped only when the services are not installed (.ci/run installs them)."""
    missing = missing_services()
    if missing:
        pytest.skip(f"the local cluster needs {', '.join(missing)} (installed by .ci/run; apt-get install them)")
    # not under pytest's tmp folder: that is private to root (0700) and the postgres user must reach its data
    root = Path(tempfile.mkdtemp(prefix="custpipe-cluster-", dir="/tmp"))
    root.chmod(0o755)
    generate_sample(root / "landing", seed=11, first_week=FIRST_WEEK)
    settings = Settings(
        landing_dir=root / "landing",
        warehouse=root / "unused.duckdb",
        first_week=FIRST_WEEK,
        ctr_snapshot=root / "serving" / "ctr.parquet",
        reports_dir=root / "reports",
    )
    try:
        yield up(root / "cluster", settings=settings, postgres_port=free_port(), redis_port=free_port(), log=print)
    finally:
        down(root / "cluster", log=print)
        shutil.rmtree(root, ignore_errors=True)
