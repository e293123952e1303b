"""Beyond one machine, on one machine: PostgreSQL, Redis and Celery workers on 127.0.0.1 running the same assets.

`custpipe cluster up` starts, under one folder (default `data/cluster`):
- PostgreSQL (Debian's `postgresql`, a cluster of its own made with `initdb` as the `postgres` user) holding the
  Dagster instance (runs, events, schedules: database `dagster`) and the DuckLake catalog (database `lake`);
- Redis (`redis-server`), the Celery broker and result backend;
- Celery workers (`dagster-celery`, two by default), each running one step at a time;
and writes `dagster_home/dagster.yaml` (PostgreSQL storage), `run_config.yaml` (the Celery executor's run config),
`cluster.env` (the CUSTPIPE_* settings every process of the cluster shares: the warehouse is the DuckLake, its
Parquet files under `lake/`) and `pids.json`. `custpipe cluster run --domain purchases --week 2018-09-03` runs a
domain's job over weeks with its steps on the workers; `custpipe cluster down` stops what `up` started, by PID.

A real cluster is the same configuration with host names instead of 127.0.0.1 (see the README, "Beyond one
machine"). Workers import the code once: `custpipe cluster up` on a running cluster restarts them.

The parts: `config.py` (the cluster's folder, its endpoints and the files `up` writes), `processes.py` (starting,
watching and stopping the servers and workers), `jobs.py` (the per-domain jobs the workers run) and
`commands.py` (`up`, `down`, `status`, `run`: what `custpipe cluster` calls).
"""
