"""The `custpipe` command line: generate sample data, run the main job, and start the bundled services."""

import argparse
import atexit
import contextlib
import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Only light imports here: Dagster, Polars, DuckDB and the domains are imported by the commands, under `_loading()`.
from custpipe_assets.core.settings import Settings, SettingsError


@contextlib.contextmanager
def _loading() -> Iterator[None]:
    """Cyclic garbage collection paused while modules load and the long-lived objects are built (the instance),
    which are then frozen out of later collections (`gc.freeze`; `main` unfreezes them when it returns).

    Nearly everything start-up allocates lives as long as the process, yet each full collection walked all of it
    again as it grew: about 1 s of a 7 s `custpipe run` over almost no data."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _freeze_at_exit() -> None:
    """Registered by `main`: at exit, whatever is still alive frozen out of collection (`gc.freeze`). The
    interpreter's last collections otherwise walk all of it (Dagster's, Polars', DuckDB's objects), about 0.7 s
    after `custpipe run` over almost no data; the process ending frees it anyway. The warehouse connections are closed
    by then, and every event the instance stored was committed."""
    gc.freeze()


class ProgressBar:
    """`bar(done, total)`: on a terminal, one line redrawn in place (bar, percent, elapsed, time left); into a file
    or a pipe, a line at every tenth, so a log shows progress without a screenful of redraws."""

    WIDTH = 30

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self.started = time.monotonic()
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        step = percent if self.interactive else percent // 10 * 10
        if step == self.shown:
            return
        self.shown = step
        elapsed = time.monotonic() - self.started
        left = f", ~{elapsed * (total - done) / done:.0f} s left" if 0 < done < total else ""
        filled = self.WIDTH * done // max(total, 1)
        line = f"{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}% {done}/{total}, {elapsed:.0f} s{left}"
        if self.interactive:
            self.stream.write(f"\r{line}" + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _generate(args: argparse.Namespace) -> int:
    from custpipe_assets.sample import generate_sample

    settings = Settings.from_env()
    landing = Path(args.landing_dir).absolute() if args.landing_dir else settings.landing_dir
    show_progress = args.progress if args.progress is not None else args.scale != "small"
    summary = generate_sample(
        landing,
        seed=args.seed,
        scale=args.scale,
        first_week=settings.first_week,
        overwrite=args.overwrite,
        progress=ProgressBar("transaction days") if show_progress else None,
        delay_regime=args.delay_regime,
        conversions_density=args.conversions_density,
    )
    print(f"wrote the {args.scale} sample (seed {args.seed}) to {landing}")
    print(summary)
    return 0


def _run(args: argparse.Namespace) -> int:
    with _loading():
        import dagster as dg

        from custpipe_assets.reporting.report import write_check_report
        from custpipe_assets.run import ensure_dagster_home, print_summary, run_everything

        settings = Settings.from_env()
        ensure_dagster_home()
        instance = dg.DagsterInstance.get()  # one for the runs and the report: opening it costs about half a second
    summary = run_everything(settings, instance=instance, domains=args.domain)
    print_summary(summary, settings)
    paths = write_check_report(instance, settings.reports_dir)
    print(f"check report: {paths.html} (also {paths.markdown.name}, {paths.json.name})")
    return 0 if summary.success and not summary.checks_failed else 1


def _report(args: argparse.Namespace) -> int:
    from custpipe_assets.reporting.report import main as report_main

    return report_main(["--out", args.out or str(Settings.from_env().reports_dir)])


def _api(args: argparse.Namespace) -> int:
    from custpipe_assets.product_views.api import serve

    serve(Settings.from_env().ctr_snapshot, host=args.host, port=args.port)
    return 0


def _purchases_api(args: argparse.Namespace) -> int:
    from custpipe_assets.sample.purchases_service import main as service_main

    return service_main(args.service_args)


def _cluster(args: argparse.Namespace) -> int:
    from datetime import date

    from custpipe_assets.cluster import commands as cluster

    if args.action == "up":
        from custpipe_assets.run import ensure_landing

        ensure_landing(Settings.from_env())  # as `make run`: the small sample into an empty default landing folder
        cluster.up(args.root, workers=args.workers, postgres_port=args.postgres_port, redis_port=args.redis_port)
    elif args.action == "down":
        cluster.down(args.root)
    elif args.action == "status":
        for name, alive in cluster.status(args.root).items() or {"cluster": False}.items():
            print(f"{name}: {'running' if alive else 'not running'}")
    else:
        if not args.domain or not args.week:
            raise SettingsError("custpipe cluster run needs --domain and --week (a Monday; twice for a range)")
        weeks = sorted(date.fromisoformat(week) for week in args.week)
        result = cluster.run(args.root, args.domain, weeks[0], weeks[-1])
        print(
            f"run {result.run_id} {'succeeded' if result.success else 'FAILED'} ({args.domain}, {weeks[0]} .. {weeks[-1]})"
        )
        return 0 if result.success else 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    from custpipe_assets.core.conventions import DOMAINS  # with Dagster: `main` builds the parser under `_loading()`

    parser = argparse.ArgumentParser(prog="custpipe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write deterministic sample data in the real landing formats")
    generate.add_argument("--landing-dir", help="default: CUSTPIPE_LANDING_DIR or data/landing")
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument(
        "--scale",
        default="small",
        choices=["small", "medium", "large"],
        help="small: a few hundred customers; medium: 3M transactions; large: 1M customers, 30M transactions",
    )
    generate.add_argument("--overwrite", action="store_true", help="write into a landing folder that has files")
    generate.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: on for medium and large)",
    )
    generate.add_argument(
        "--delay-regime",
        default="minutes",
        choices=["minutes", "seconds", "mixed"],
        help="conversions: how long after a conversion its registration comes (default minutes)",
    )
    generate.add_argument(
        "--conversions-density",
        type=int,
        default=1,
        choices=[1, 10],
        help="conversions: 1x or 10x the sample's 400 conversions a week (default 1)",
    )
    generate.set_defaults(handler=_generate)

    run = commands.add_parser("run", help="materialize every asset, week and check; print what was written")
    run.add_argument(
        "--domain",
        action="append",
        choices=list(DOMAINS),
        help="run only this domain (repeatable); default: every domain whose sources landed",
    )
    run.set_defaults(handler=_run)

    report = commands.add_parser("report", help="write the latest result of every asset check (Markdown, JSON, HTML)")
    report.add_argument("--out", help="default: CUSTPIPE_REPORTS_DIR or data/reports")
    report.set_defaults(handler=_report)

    api = commands.add_parser("api", help="serve GET /ctr (click-through rate) from the published snapshot")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(handler=_api)

    purchases_api = commands.add_parser(
        "purchases-api", help="serve the bundled store purchase-history API (options: custpipe purchases-api -- --help)"
    )
    purchases_api.add_argument("service_args", nargs=argparse.REMAINDER)
    purchases_api.set_defaults(handler=_purchases_api)

    cluster = commands.add_parser(
        "cluster",
        help="PostgreSQL, Redis and Celery workers on 127.0.0.1 writing a DuckLake (README: Beyond one machine)",
    )
    cluster.add_argument("action", choices=["up", "down", "status", "run"])
    cluster.add_argument("--root", default="data/cluster", help="the cluster's folder (default data/cluster)")
    cluster.add_argument("--workers", type=int, default=2)
    cluster.add_argument("--postgres-port", type=int, default=15432)
    cluster.add_argument("--redis-port", type=int, default=16379)
    cluster.add_argument("--domain", choices=list(DOMAINS), help="run: the domain whose job runs")
    cluster.add_argument("--week", action="append", help="run: the week (Monday); give it twice for a range")
    cluster.set_defaults(handler=_cluster)
    return parser


def _warehouse_unavailable(error: Exception) -> bool:
    """A `WarehouseUnavailableError`, without importing the warehouse module (DuckDB, Polars) to ask: if it is not
    loaded, nothing raised its error."""
    warehouse = sys.modules.get("custpipe_assets.core.warehouse")
    return warehouse is not None and isinstance(error, warehouse.WarehouseUnavailableError)


def main(argv: list[str] | None = None) -> int:
    atexit.unregister(_freeze_at_exit)  # once, however often main is called in one process
    atexit.register(_freeze_at_exit)
    try:
        with _loading():
            parser = build_parser()
        args = parser.parse_args(argv)
        return args.handler(args)
    except (SettingsError, FileExistsError) as error:
        print(f"custpipe: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not _warehouse_unavailable(error):
            raise
        print(f"custpipe: {error.description}", file=sys.stderr)
        return 2
    finally:
        gc.unfreeze()  # an in-process caller (a test) gets what the command kept back into collection


if __name__ == "__main__":
    sys.exit(main())
