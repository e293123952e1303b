"""What the benchmark scripts share besides peak memory (imported from their folder, like peak_memory.py): a
measurement run in a fresh Python process of its own, and the settings of a run whose outputs stay in a work folder.
"""

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path


class ChildFailed(Exception):
    """A measurement's process exited with an error; the message names it and ends with its stderr."""


def measure_in_child(script: str, arguments: Sequence[str], child: str, *, stderr_tail: int = 3000) -> dict:
    """Run `script arguments --child child` in a fresh Python process (its own peak memory, nothing cached from the
    measurements before it) and return the JSON object on the last line it printed."""
    completed = subprocess.run([sys.executable, script, *arguments, "--child", child], capture_output=True, text=True)
    if completed.returncode != 0:
        raise ChildFailed(f"{child}: failed\n{completed.stderr[-stderr_tail:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def settings_in(workdir: Path, landing: Path, warehouse: str | Path, first_week: date, **more):
    """Settings of a run over `landing` into `warehouse`, its CTR snapshot and reports under `workdir`."""
    from custpipe_assets.core.settings import Settings

    return Settings(
        landing_dir=landing,
        warehouse=warehouse,
        first_week=first_week,
        ctr_snapshot=workdir / "serving" / "ctr.parquet",
        reports_dir=workdir / "reports",
        **more,
    )
