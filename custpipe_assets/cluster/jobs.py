"""The jobs the cluster's workers run: per domain, every asset and check of the domain with the Celery executor.
The run coordinator and every worker reconstruct them from here (`commands.run` points at `cluster_job`)."""

from __future__ import annotations

import functools

import dagster as dg

from custpipe_assets.core.settings import Settings

CLUSTER_JOB_PREFIX = "cluster"


def cluster_job_name(domain: str) -> str:
    return f"{CLUSTER_JOB_PREFIX}_{domain}"


@functools.cache
def cluster_definitions() -> dg.Definitions:
    """The project's definitions (from the CUSTPIPE_* environment) plus, per domain, a job with the Celery executor.

    Built once per process: a worker imports it on its first step and keeps it (restart workers after a change).
    """
    from dagster_celery import celery_executor

    from custpipe_assets.core.conventions import DOMAINS
    from custpipe_assets.core.partitions import weekly_partitions
    from custpipe_assets.definitions import build_definitions

    settings = Settings.from_env()
    jobs = [
        dg.define_asset_job(
            cluster_job_name(domain),
            selection=dg.AssetSelection.groups(domain),
            partitions_def=weekly_partitions(settings.first_week),
            executor_def=celery_executor,
            description=f"Every asset and check of the {domain} domain, its steps on the Celery workers.",
        )
        for domain in DOMAINS
    ]
    return dg.Definitions.merge(build_definitions(settings), dg.Definitions(jobs=jobs))


def cluster_job(domain: str) -> dg.JobDefinition:
    """What the run coordinator and every worker reconstruct (`build_reconstructable_job` points here)."""
    return cluster_definitions().resolve_job_def(cluster_job_name(domain))
