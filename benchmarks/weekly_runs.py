"""Benchmark: one scheduled week, launched as the daemon launches it, beside the main job's per-week share.

On the small sample (every domain, nine weeks), into a fresh warehouse and a fresh Dagster instance configured by
our dagster.yaml (pool limit 1):

  main job      `run_everything`, one run per domain over its weeks (what `make run` does), timed per domain and
                divided by the weeks: the per-week share;
  launched      each weekly job for the sample's last week in a new process, `dagster job execute` over the same
                instance: a Python start, a code load, then the run (what the daemon's run worker does after it
                takes the run from the queue), with the executor the job has (in-process); median of --repeat;
  multiprocess  weekly_transactions again with the multiprocess executor (every step a process of its own, as
                before this change), for the comparison.

Prints wall seconds per way, the run's own duration from its start and end events, and the ratios. Usage:

  .venv/bin/python benchmarks/weekly_runs.py            # about three minutes on two cores
  .venv/bin/python benchmarks/weekly_runs.py --skip-multiprocess
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from harness import settings_in  # benchmarks/harness.py

WEEKLY_JOBS = ("weekly_transactions", "weekly_store_purchases", "weekly_conversions", "weekly_product_views")
FIRST_WEEK = date(2018, 9, 3)

MULTIPROCESS_SCRIPT = """
import sys
import dagster as dg
from custpipe_assets.definitions import defs

def weekly_multiprocess():
    from custpipe_assets.definitions import defs
    return defs.resolve_job_def(sys.argv[1]).with_executor_def(dg.multiprocess_executor)

if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(weekly_multiprocess), instance, tags={"dagster/partition": sys.argv[2]})
    sys.exit(0 if result.success else 1)
"""


def run_seconds(instance, run_id: str) -> float:
    stats = instance.get_run_stats(run_id)
    return stats.end_time - stats.launch_time if stats.launch_time else stats.end_time - stats.start_time


def launch(command: list[str], environment: dict[str, str]) -> float:
    started = time.monotonic()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} ... exited {completed.returncode}:\n{completed.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-multiprocess", action="store_true", help="leave out the before-this-change way")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder")
    parser.add_argument("--repeat", type=int, default=3, help="launches per weekly job (the median is printed)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="weekly_runs_"))
    workdir.mkdir(parents=True, exist_ok=True)

    import dagster as dg
    import yaml

    from custpipe_assets.run import INSTANCE_YAML, run_everything
    from custpipe_assets.sample import generate_sample

    landing, home = workdir / "landing", workdir / "dagster_home"
    if not landing.exists():
        generate_sample(landing, seed=7, first_week=FIRST_WEEK)
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(yaml.safe_load(INSTANCE_YAML)))
    settings = settings_in(workdir, landing, workdir / "warehouse.duckdb", FIRST_WEEK)
    environment = {**settings.environment(), "DAGSTER_HOME": str(home)}
    rows = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        weeks_of = {}
        for domain in ("purchases", "segmentation", "conversions", "product_views"):
            started = time.monotonic()
            summary = run_everything(settings, instance=instance, domains=[domain], log=lambda *_: None)
            seconds = time.monotonic() - started
            if not summary.success:
                raise SystemExit(f"the main job failed for {domain}: {summary.run_id}")
            weeks_of[domain] = summary.weeks_of(domain)
            share = seconds / len(weeks_of[domain])
            rows.append(
                (
                    f"main job, {domain} ({len(weeks_of[domain])} weeks)",
                    seconds,
                    run_seconds(instance, summary.runs[0].run_id),
                    share,
                )
            )
        main_total = sum(row[1] for row in rows)
        all_weeks = len(set().union(*weeks_of.values()))
        rows.append((f"main job, every domain ({all_weeks} weeks)", main_total, None, main_total / all_weeks))
        last_week = max(weeks_of["purchases"]).isoformat()

        dagster = str(Path(sys.executable).with_name("dagster"))
        execute = [dagster, "job", "execute", "-m", "custpipe_assets.definitions", "-a", "defs"]  # as the daemon's
        launched = {}
        for job in WEEKLY_JOBS:
            measured = []
            for _ in range(args.repeat):  # the median of a few: one launch can meet a busy moment of the machine
                tags = json.dumps({"dagster/partition": last_week})
                seconds = launch([*execute, "-j", job, "--tags", tags], environment)
                (record,) = instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)
                measured.append((seconds, run_seconds(instance, record.dagster_run.run_id)))
            seconds, run = sorted(measured)[len(measured) // 2]
            launched[job] = seconds
            rows.append((f"{job} {last_week}, launched, in-process", seconds, run, None))
        if not args.skip_multiprocess:
            script = workdir / "weekly_multiprocess.py"
            script.write_text(MULTIPROCESS_SCRIPT)
            seconds = launch([sys.executable, str(script), "weekly_transactions", last_week], environment)
            (record,) = instance.get_run_records(dg.RunsFilter(job_name="weekly_transactions"), limit=1)
            rows.append(
                (
                    f"weekly_transactions {last_week}, launched, multiprocess (before)",
                    seconds,
                    run_seconds(instance, record.dagster_run.run_id),
                    None,
                )
            )

    print(f"small sample, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; workdir {workdir}")
    print(f"{'way':<62} {'wall s':>8} {'run s':>8} {'s/week':>8}   (run s: from the run's start to its end event)")
    for name, seconds, run, share in rows:
        print(
            f"{name:<62} {seconds:>8.1f} {'' if run is None else f'{run:.1f}':>8} {'' if share is None else f'{share:.1f}':>8}"
        )
    share = rows[0][3]
    print(
        f"weekly_transactions launched / main job's purchases per-week share: {launched['weekly_transactions'] / share:.1f}x"
    )
    if not args.skip_multiprocess:
        print(
            f"multiprocess / in-process (weekly_transactions, launched): {rows[-1][1] / launched['weekly_transactions']:.1f}x"
        )


if __name__ == "__main__":
    main()
