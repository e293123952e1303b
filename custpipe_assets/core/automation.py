"""Weekly jobs, their Monday schedules, their file-arrival sensors, the declarative automation that keeps the
unpartitioned gold tables following their weekly inputs, and the freshness expectations: built the same way for
every domain."""

import hashlib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from custpipe_assets.core.arrivals import LandedFiles, detect_week_arrivals, monday_of
from custpipe_assets.core.conventions import domain_definitions
from custpipe_assets.core.landed_versions import recorded_fingerprint
from custpipe_assets.core.landing import LandingResource
from custpipe_assets.core.partitions import contiguous_week_ranges, week_range_tags, weekly_partitions
from custpipe_assets.core.settings import Settings

# No step retry policy: a step fails at once with its message (a format error does not get better by trying again).
# Transient failures are retried where they happen: the warehouse waits for DuckDB's writer lock
# (`Warehouse.connect`), the purchase-history client retries connection errors and 5xx/429 with backoff.
SCHEDULE_HOUR_UTC = 4  # Monday 04:00 UTC: late weekend files make it into the week that just ended
# Monday 06:00 UTC: the week that ended is expected in every weekly table, and every gold table refreshed from it
FRESHNESS_DEADLINE_CRON = "0 6 * * 1"
GOLD_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron=FRESHNESS_DEADLINE_CRON, lower_bound_delta=timedelta(hours=6 - SCHEDULE_HOUR_UTC), timezone="UTC"
)
AUTOMATION_SENSOR = "gold_follows_inputs"
# DuckDB has one writer, so a run's steps queue on the warehouse pool anyway: a weekly run executes them one after
# the other in its own process instead of paying a Python start and a code load per step (measured in
# benchmarks/weekly_runs.py).
WEEKLY_EXECUTOR = dg.in_process_executor


def weekly_job(name: str, selection: Iterable[dg.AssetKey], partitions_def: dg.PartitionsDefinition, description: str):
    return dg.define_asset_job(
        name,
        selection=dg.AssetSelection.assets(*selection),
        partitions_def=partitions_def,
        description=description,
        executor_def=WEEKLY_EXECUTOR,
    )


def monday_schedule(job) -> dg.ScheduleDefinition:
    """Runs the last complete week (never the current one) every Monday morning."""
    return dg.build_schedule_from_partitioned_job(
        job, hour_of_day=SCHEDULE_HOUR_UTC, minute_of_hour=0, default_status=dg.DefaultScheduleStatus.RUNNING
    )


def monday_range_schedule(
    job, partitions_def: dg.TimeWindowPartitionsDefinition, *, weeks: int
) -> dg.ScheduleDefinition:
    """Every Monday morning, one run over the last `weeks` complete weeks: for a domain where a week's result
    depends on the week after it (the conversions matching looks ahead), the week before is run again."""

    @dg.schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=f"0 {SCHEDULE_HOUR_UTC} * * 1",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Monday {SCHEDULE_HOUR_UTC:02d}:00 UTC: the last {weeks} complete weeks, in one run.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        last = monday_of(context.scheduled_execution_time.date()) - timedelta(days=7)
        valid = _partition_weeks(partitions_def)
        chosen = {last - timedelta(days=7 * back) for back in range(weeks)} & valid
        if not chosen:
            return dg.SkipReason(f"no complete week yet (the first is {min(valid, default=None)})")
        first, final = min(chosen), max(chosen)
        return dg.RunRequest(run_key=f"{job.name}:{first}..{final}", tags=week_range_tags(first, final))

    return _schedule


def _partition_weeks(partitions_def: dg.PartitionsDefinition) -> set[date]:
    return {date.fromisoformat(key) for key in partitions_def.get_partition_keys()}


def arrival_sensor(
    name: str,
    job,
    partitions_def: dg.PartitionsDefinition,
    *,
    landed: LandedFiles,
    recorded_on: dg.AssetKey,
    description: str,
    neighbour_weeks: int = 0,
) -> dg.SensorDefinition:
    """Requests a run of `job` for exactly the weeks whose `landed` files differ from what the latest
    materialization of that week of `recorded_on` read (the fingerprint its bronze step recorded, see
    `core/landed_versions.py`). The run key names the file set, so while a requested run waits in the queue, or
    after it failed, the same files never start a second run.

    With `neighbour_weeks` (for a domain whose weekly results read the weeks around them), the changed weeks and that
    many weeks on either side run together, one run per stretch of consecutive weeks, so the neighbours' results
    are rebuilt in the same run, after the changed weeks' own tables.
    """

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
        root = Path(landing.path)
        if not root.is_dir():
            return dg.SkipReason(f"landing folder {root} does not exist")
        valid = _partition_weeks(partitions_def)
        files = {week: paths for week, paths in landed.by_week(root).items() if week in valid}
        arrivals = detect_week_arrivals(
            files, lambda week: recorded_fingerprint(context.instance, recorded_on, week), root
        )
        if neighbour_weeks:
            requests = _range_requests(name, arrivals.ready, valid, neighbour_weeks)
        else:
            requests = [
                dg.RunRequest(partition_key=week.isoformat(), run_key=f"{name}:{week}:{fingerprint}")
                for week, fingerprint in arrivals.ready.items()
            ]
        if not requests:
            return dg.SkipReason(
                f"every landed week ({len(files)}) is as its latest materialization read it"
                f" ({len(arrivals.settling)} week(s) still being copied)"
            )
        return requests

    return _sensor


def _range_requests(name: str, ready: dict[date, str], valid: set[date], neighbour_weeks: int) -> list[dg.RunRequest]:
    """One run per stretch of consecutive weeks among the changed weeks and their neighbours."""
    widened = {
        week + timedelta(days=7 * offset) for week in ready for offset in range(-neighbour_weeks, neighbour_weeks + 1)
    }
    requests = []
    for first, last in contiguous_week_ranges(widened & valid):
        fingerprints = "|".join(fingerprint for week, fingerprint in sorted(ready.items()) if first <= week <= last)
        digest = hashlib.sha256(fingerprints.encode()).hexdigest()[:16]
        requests.append(dg.RunRequest(run_key=f"{name}:{first}..{last}:{digest}", tags=week_range_tags(first, last)))
    return requests


@dataclass(frozen=True)
class Arrivals:
    """A domain's file-arrival sensor (`arrival_sensor`): its name, the landed files by week, the weekly asset whose
    materializations record what was last read, its description, and how many neighbour weeks run with a change."""

    sensor: str
    landed: LandedFiles
    recorded_on: dg.AssetKey
    description: str
    neighbour_weeks: int = 0


@dataclass(frozen=True)
class WeeklyAutomation:
    """What a domain declares of its weekly automation; `build` makes the job, its Monday schedule and, given
    `arrivals`, its file-arrival sensor. The job runs every partitioned asset of the domain (`build_domain_defs`
    passes their keys, so a new weekly asset joins it) and `also`, unpartitioned assets the week's run refreshes;
    the schedule runs the last complete week, or the last `scheduled_weeks` in one run."""

    job: str
    description: str
    also: tuple[dg.AssetKey, ...] = ()
    arrivals: Arrivals | None = None
    scheduled_weeks: int = 1

    def build(
        self, partitions_def: dg.TimeWindowPartitionsDefinition, weekly_assets: Iterable[dg.AssetKey]
    ) -> tuple[list, list, list]:
        """(jobs, schedules, sensors)."""
        job = weekly_job(self.job, [*weekly_assets, *self.also], partitions_def, self.description)
        if self.scheduled_weeks == 1:
            schedule = monday_schedule(job)
        else:
            schedule = monday_range_schedule(job, partitions_def, weeks=self.scheduled_weeks)
        if self.arrivals is None:
            return [job], [schedule], []
        sensor = arrival_sensor(
            self.arrivals.sensor,
            job,
            partitions_def,
            landed=self.arrivals.landed,
            recorded_on=self.arrivals.recorded_on,
            description=self.arrivals.description,
            neighbour_weeks=self.arrivals.neighbour_weeks,
        )
        return [job], [schedule], [sensor]


# -- declarative automation ------------------------------------------------------------------------------------------
#
# `AutomationCondition.eager()` never fires for an unpartitioned table built on a weekly one: it waits while any
# dependency partition is missing, and every week from CUSTPIPE_FIRST_WEEK to last week counts, landed or not. So:

# A weekly table built from other jobs' weekly tables: a week reruns when one of its inputs' weeks was updated by a
# run that did not also rebuild it, once none of that week's inputs is missing or being written.
WEEK_FOLLOWS_INPUTS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("week_follows_inputs")


def follows_inputs(weekly: dg.AssetSelection) -> dg.AutomationCondition:
    """An unpartitioned table reruns when an input was updated by a run that did not also rebuild it, or when an
    unpartitioned input is requested on the same tick (one run then builds the chain, features -> model ->
    segments -> metrics). Weekly inputs count only once written: one requested on the same tick would go into a
    run of its own, which could finish after this one. Missing weeks of a weekly input do not hold it back;
    a missing unpartitioned input does."""
    condition = dg.AutomationCondition
    updated = condition.any_deps_match(condition.newly_updated() & ~condition.executed_with_root_target()).with_label(
        "any_deps_updated"
    )
    requested = (
        condition.any_deps_match(condition.will_be_requested())
        .ignore(weekly)
        .with_label("any_unpartitioned_deps_requested")
    )
    return (
        (condition.newly_missing() | updated | requested).since_last_handled()
        & ~condition.any_deps_missing().ignore(weekly).with_label("any_unpartitioned_deps_missing")
        & ~condition.any_deps_in_progress()
        & ~condition.in_progress()
    ).with_label("follows_inputs")


def follow_inputs(defs: dg.Definitions) -> dg.Definitions:
    """Every unpartitioned asset that has an automation condition follows its inputs (`follows_inputs`) and, in
    `gold`, is expected refreshed every Monday by 06:00 UTC (`GOLD_FRESHNESS`); plus the sensor that evaluates the
    conditions, running by default."""
    graph = defs.resolve_asset_graph()
    keys = [key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable]
    weekly = dg.AssetSelection.assets(*[key for key in keys if graph.get(key).is_partitioned])
    followers = [key for key in keys if not graph.get(key).is_partitioned and graph.get(key).automation_condition]
    automated = [key for key in keys if graph.get(key).automation_condition]

    def automate(spec: dg.AssetSpec) -> dg.AssetSpec:
        spec = spec.replace_attributes(automation_condition=follows_inputs(weekly))
        return dg.apply_freshness_policy(spec, GOLD_FRESHNESS) if spec.key.path[0] == "gold" else spec

    followed = defs.map_resolved_asset_specs(func=automate, selection=followers) if followers else defs
    return dg.Definitions.merge(followed, dg.Definitions(sensors=[automation_sensor(automated)]))


def automation_sensor(target: Sequence[dg.AssetKey]) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.assets(*target),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Declarative automation, on by default: the gold tables (features, model, segments, metrics, "
        "matched conversions, the CTR snapshot) and the weekly rollups follow their inputs after every "
        "weekly run.",
    )


# -- freshness -------------------------------------------------------------------------------------------------------


# Dagster marks the freshness checks superseded by freshness policies, but a policy judges an asset by its latest
# materialization, whatever the partition: re-running an old week would make a weekly table look fresh. The
# time-partition check asks the right question of a weekly table (is last week's partition there?), so weekly
# tables keep it and the unpartitioned gold tables get the policy.


def weekly_freshness_checks(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """One freshness check per weekly asset: from Monday 06:00 UTC, the week that just ended must be materialized
    (a warning, not an error: the check says the data is late, it does not make the data wrong)."""
    weekly = sorted(
        {spec.key for assets_def in assets for spec in assets_def.specs if spec.partitions_def is not None},
        key=lambda key: key.to_user_string(),
    )
    if not weekly:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return list(
            dg.build_time_partition_freshness_checks(
                assets=weekly,
                deadline_cron=FRESHNESS_DEADLINE_CRON,
                timezone="UTC",
                severity=dg.AssetCheckSeverity.WARN,
            )
        )


def freshness_sensor(name: str, checks: Sequence[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    """Evaluates the freshness checks between runs (a run of an asset evaluates its check itself): it starts a
    check-only run when a check passed and its deadline has come round again, never for a check that failed
    (the run that brings the asset up to date evaluates it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=name,
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=600,
        )


def domain_freshness(domain: str, assets: Sequence[dg.AssetsDefinition]):
    """A domain's weekly freshness checks and the sensor that evaluates them between runs: (checks, sensors)."""
    checks = weekly_freshness_checks(assets)
    return checks, [freshness_sensor(f"{domain}_freshness", checks)] if checks else []


def build_domain_defs(
    domain: str,
    settings: Settings,
    assets: Callable[[dg.PartitionsDefinition], list[dg.AssetsDefinition]],
    checks: Callable[[dg.PartitionsDefinition], list[dg.AssetChecksDefinition]],
    automation: WeeklyAutomation,
    *,
    columns: Mapping[dg.AssetKey, dg.TableSchema] | None = None,
) -> dg.Definitions:
    """A domain's Definitions from its parts, each built for the weekly partitions: its assets, checks, jobs,
    schedules and sensors (from the domain's `WeeklyAutomation`, given the keys of its weekly assets), plus the freshness checks of its weekly assets and the job over all of it; `columns`,
    the domain's column schemas (its `columns.COLUMNS`), shown on its tables before any run."""
    partitions_def = weekly_partitions(settings.first_week)
    domain_assets = assets(partitions_def)
    weekly_keys = [spec.key for assets_def in domain_assets for spec in assets_def.specs if spec.partitions_def]
    jobs, schedules, sensors = automation.build(partitions_def, weekly_keys)
    freshness_checks, freshness_sensors = domain_freshness(domain, domain_assets)
    return domain_definitions(
        domain,
        partitions_def,
        assets=domain_assets,
        checks=[*checks(partitions_def), *freshness_checks],
        columns=columns,
        jobs=jobs,
        schedules=schedules,
        sensors=[*sensors, *freshness_sensors],
    )
