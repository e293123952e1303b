"""Reporting over what the pipeline recorded in its Dagster instance: `check_results` is the one adapter that reads
asset check results from the instance, `report` renders the Monday check report (`custpipe report`)."""
