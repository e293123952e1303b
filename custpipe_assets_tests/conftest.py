"""Shared fixtures: temporary landing folders, warehouses and Dagster instances; never the repository's data/."""

import dagster as dg
import pytest


@pytest.fixture
def instance():
    """A real, temporary Dagster instance (run storage, event log) that lives for one test."""
    with dg.instance_for_test() as test_instance:
        yield test_instance
