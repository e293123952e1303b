"""Fixtures of the cluster tests: a local cluster that is always stopped (the weekly-count oracle,
`expected_counts_of`, and `settings_under` come from the root conftest)."""

import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from custpipe_assets.cluster.commands import down, up
from custpipe_assets.cluster.processes import missing_services
from custpipe_assets.sample import generate_sample


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(settings_under):
    """PostgreSQL, Redis and two Celery workers on free ports, over the generated sample (seed 11); stopped by PID
    whatever the test did. Skipped only when the services are not installed (.ci/run installs them)."""
    missing = missing_services()
    if missing:
        pytest.skip(f"the local cluster needs {', '.join(missing)} (installed by .ci/run; apt-get install them)")
    # not under pytest's tmp folder: that is private to root (0700) and the postgres user must reach its data
    root = Path(tempfile.mkdtemp(prefix="custpipe-cluster-", dir="/tmp"))
    root.chmod(0o755)
    settings = settings_under(root, warehouse=root / "unused.duckdb")
    generate_sample(settings.landing_dir, seed=11, first_week=settings.first_week)
    try:
        yield up(root / "cluster", settings=settings, postgres_port=free_port(), redis_port=free_port(), log=print)
    finally:
        down(root / "cluster", log=print)
        shutil.rmtree(root, ignore_errors=True)
