"""Fixtures of the generator tests: a small generated product-views landing."""

from datetime import date

import pytest

from custpipe_assets.sample.product_views import GenerationSummary, generate_product_views_landing


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    """Two local days of generated landing data (as custpipe_assets_tests/product_views/conftest.py makes)."""
    landing = tmp_path_factory.mktemp("landing")
    return generate_product_views_landing(landing, seed=11, start=date(2018, 9, 3), days=2, views_per_day=600)
