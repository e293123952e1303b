"""Fixtures for the conversions domain: the default generated sample, landed once per session, and its silver."""

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from custpipe_assets.conversions.transforms import (
    BronzeRead,
    Cleaned,
    clean_broker_registrations,
    clean_conversions,
    clean_page_category_mapping,
    read_broker_registrations,
    read_conversions,
    read_page_category_mapping,
)
from custpipe_assets.sample.conversions import generate_conversions_landing, read_planted_truth


@dataclass(frozen=True)
class ConversionsSample:
    landing_dir: Path
    conversions_bronze: BronzeRead
    broker_bronze: BronzeRead
    mapping_bronze: BronzeRead
    mapping: Cleaned
    conversions: Cleaned
    registrations: Cleaned
    truth: pl.DataFrame


@pytest.fixture(scope="session")
def conversions_sample(tmp_path_factory) -> ConversionsSample:
    """The generator's default sample (seed 7, 8 weeks from 2018-09-03), read and cleaned."""
    landing_dir = tmp_path_factory.mktemp("conversions_landing")
    generate_conversions_landing(landing_dir)
    conversions_bronze = read_conversions(landing_dir)
    broker_bronze = read_broker_registrations(landing_dir)
    mapping_bronze = read_page_category_mapping(landing_dir)
    mapping = clean_page_category_mapping(mapping_bronze.rows)
    return ConversionsSample(
        landing_dir=landing_dir,
        conversions_bronze=conversions_bronze,
        broker_bronze=broker_bronze,
        mapping_bronze=mapping_bronze,
        mapping=mapping,
        conversions=clean_conversions(conversions_bronze.rows, mapping.rows),
        registrations=clean_broker_registrations(broker_bronze.rows),
        truth=read_planted_truth(landing_dir),
    )
