"""Segments and segment metrics: hand-made clusters with known answers, and the planted personas of the sample data.

The accuracy test runs the real chain on the default small sample: landing files from the generator, online
transactions read and split per week, store purchases fetched from the bundled service on 127.0.0.1 and
cleaned, weekly rollups, features, KMeans. The personas the generator planted (`_truth/personas.csv`) are the
independent expectation; spend totals are checked against a plain-Decimal sum of the silver inputs.
"""

from __future__ import annotations

import csv
import math
import pickle
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from custpipe_assets.purchases import reference, transactions
from custpipe_assets.sample.customers import SCALES, generate_customers_landing
from custpipe_assets.sample.purchases_service import start_service
from custpipe_assets.segmentation import features as feature_module
from custpipe_assets.segmentation import profiles, store_purchases
from custpipe_assets.segmentation.purchases_client import fetch_purchases
from custpipe_assets.segmentation.segments import (
    SEGMENT_METRICS_SCHEMA,
    SEGMENTS_SCHEMA,
    SegmentModel,
    assign_segments,
    fit_segments,
    segment_metrics,
)

FIRST_WEEK = date(2018, 9, 3)
SEGMENT_OF_PERSONA = {
    "high_value": "high-value",
    "frequent": "frequent shoppers",
    "occasional": "occasional buyers",
    "dormant": "dormant",
}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Sample:
    features: pl.DataFrame
    persona: dict[str, str]
    silver_spend: Decimal  # every accepted online basket line and matched store purchase, summed in Decimal


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    landing = tmp_path_factory.mktemp("landing")
    generate_customers_landing(landing, seed=7, scale="small")
    customers, _ = reference.clean_customers(
        reference.read_reference_csv(landing, reference.CUSTOMERS_FILE, reference.CUSTOMER_COLUMNS)
    )
    products, _ = reference.clean_products(
        reference.read_reference_csv(landing, reference.PRODUCTS_FILE, reference.PRODUCT_COLUMNS)
    )
    silver_profiles, _ = profiles.clean_profiles(
        reference.read_reference_csv(landing, profiles.PROFILES_FILE, profiles.PROFILE_COLUMNS)
    )
    rollups, spend = [], Decimal(0)
    weeks = [FIRST_WEEK + timedelta(weeks=index) for index in range(SCALES["small"].weeks)]
    all_lines = transactions.transform_in_memory(landing, weeks, customers, products).lines
    with start_service(landing, seed=7) as service:
        for week in weeks:
            lines = all_lines.filter(pl.col("week_start") == week)
            fetched = fetch_purchases(service.url, week, week + timedelta(days=7)).frame
            matched, _ = store_purchases.clean_store_purchases(fetched, week, silver_profiles)
            rollups.append(feature_module.weekly_rollup(lines, matched, week))
            for value in [*lines.get_column("price"), *matched.get_column("amount")]:
                spend += Decimal(repr(value)).quantize(CENT)
    as_of = FIRST_WEEK + timedelta(weeks=SCALES["small"].weeks, days=-1)
    aggregated = feature_module.aggregate_rollups(pl.concat(rollups))
    features = feature_module.customer_features(aggregated, silver_profiles, customers, as_of)
    with (landing / "_truth" / "personas.csv").open(newline="") as handle:
        persona = {row["customer_id"]: row["persona"] for row in csv.DictReader(handle)}
    return Sample(features, persona, spend)


@pytest.fixture(scope="module")
def model(sample: Sample) -> SegmentModel:
    return fit_segments(sample.features, n_clusters=4, random_state=42)


def test_segments_recover_the_planted_personas_and_metrics_add_up_exactly(sample: Sample, model: SegmentModel) -> None:
    features = sample.features
    segments = assign_segments(model, features)
    assert segments.schema == SEGMENTS_SCHEMA

    personas = [sample.persona[customer] for customer in segments["customer_id"]]
    assert adjusted_rand_score(personas, segments["segment_name"].to_list()) >= 0.8
    # each persona's largest segment carries the persona's name
    by_persona = pl.DataFrame({"persona": personas, "segment_name": segments["segment_name"]})
    majority = by_persona.group_by("persona").agg(pl.col("segment_name").mode().first())
    assert dict(majority.rows()) == SEGMENT_OF_PERSONA

    metrics = segment_metrics(segments, features)
    assert metrics.schema == SEGMENT_METRICS_SCHEMA
    assert metrics["customers"].sum() == features.height == len(sample.persona)
    assert metrics["total_spend"].sum() == features["total_spend"].sum() == sample.silver_spend
    assert metrics["customer_share"].sum() == pytest.approx(1.0)
    assert metrics["spend_share"].sum() == pytest.approx(1.0)
    assert dict(metrics.select("segment_name", "customers").rows()) == model.sizes

    assert len(set(model.segment_names)) == 4
    assert model.inertia > 0 and 0 < model.silhouette <= 1
    assert model.plot_png.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_model_is_deterministic_and_survives_pickling(sample: Sample, model: SegmentModel) -> None:
    again = fit_segments(sample.features, n_clusters=4, random_state=42)
    assert again.plot_png == model.plot_png and again.segment_names == model.segment_names
    restored = pickle.loads(pickle.dumps(model))
    assert assign_segments(restored, sample.features).equals(assign_segments(model, sample.features))


# --- hand-made clusters ----------------------------------------------------------------------------------------


def hand_made_features(groups: dict[str, tuple[float, float, int, int]], per_group: int = 30) -> pl.DataFrame:
    """Feature rows around given (total_spend, purchases per week, recency_days) per group, with a little noise.

    The group name is carried in customer_id so tests can read it back.
    """
    rng = np.random.default_rng(0)
    rows = []
    for group, (spend, frequency, purchases, recency) in groups.items():
        for index in range(per_group):
            wobble = rng.uniform(0.9, 1.1)
            rows.append(
                {
                    "customer_id": f"{group}-{index:02d}",
                    "total_spend": Decimal(str(round(spend * wobble, 2))),
                    "purchase_frequency": frequency * wobble,
                    "avg_transaction_value": spend * wobble / purchases,
                    "recency_days": int(recency * wobble),
                    "clv": spend * wobble * 13,
                    "age_scaled": rng.normal(),
                    "income_scaled": rng.normal(),
                    "gender_female": int(rng.integers(0, 2)),
                }
            )
    return pl.DataFrame(rows).cast({"total_spend": feature_module.MONEY, "gender_female": pl.Int8})


PERSONA_GROUPS = {
    # name: (total spend, purchases per week, purchases, days since the last purchase)
    "high-value": (20_000.0, 3.0, 24, 1),
    "frequent shoppers": (900.0, 8.0, 64, 1),
    "occasional buyers": (800.0, 0.7, 6, 8),
    "dormant": (150.0, 0.4, 3, 45),
}


def test_segments_are_named_from_their_centroids() -> None:
    features = hand_made_features(PERSONA_GROUPS)
    model = fit_segments(features, n_clusters=4)
    segments = assign_segments(model, features)
    assert segments.select(pl.col("customer_id").str.extract(r"^(.*)-\d+$") == pl.col("segment_name")).to_series().all()
    # ids are ordered by mean spend, highest first
    assert model.segment_names[0] == "high-value" and model.segment_names[-1] == "dormant"


@pytest.mark.parametrize("n_clusters", [1, 2, 6])
def test_names_stay_unique_for_any_number_of_segments(n_clusters: int) -> None:
    more_groups = {"big spenders": (60_000.0, 2.0, 16, 3), "lapsed": (40.0, 0.1, 1, 55)}
    features = hand_made_features(PERSONA_GROUPS | more_groups)
    model = fit_segments(features, n_clusters=n_clusters)
    assert len(set(model.segment_names)) == n_clusters
    assert sum(model.sizes.values()) == features.height
    if n_clusters == 1:
        assert model.segment_names == ("all customers",) and math.isnan(model.silhouette)
    else:
        assert "dormant" in model.segment_names


def test_fit_segments_refuses_an_impossible_number_of_segments() -> None:
    features = hand_made_features({"a": (10.0, 1.0, 1, 1)}, per_group=3)
    with pytest.raises(ValueError, match="n_clusters"):
        fit_segments(features, n_clusters=4)


def test_segment_metrics_by_hand() -> None:
    features = pl.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "total_spend": [Decimal("10.10"), Decimal("0.20"), Decimal("89.70"), Decimal("0.00")],
            "clv": [100.0, 50.0, 300.0, 0.0],
        }
    ).cast({"total_spend": feature_module.MONEY})
    segments = pl.DataFrame(
        {"customer_id": ["D", "C", "B", "A"], "segment_id": [1, 0, 1, 1], "segment_name": ["x", "y", "x", "x"]}
    ).cast(dict(SEGMENTS_SCHEMA))
    metrics = segment_metrics(segments, features)
    assert metrics.rows() == [
        (0, "y", 1, Decimal("89.70"), 300.0, 0.25, pytest.approx(0.897)),
        (1, "x", 3, Decimal("10.30"), 50.0, 0.75, pytest.approx(0.103)),
    ]
    with pytest.raises(ValueError, match="only one of"):
        segment_metrics(segments.filter(pl.col("customer_id") != "B"), features)
    with pytest.raises(ValueError, match="one row per customer_id"):
        segment_metrics(pl.concat([segments, segments.head(1)]), features)
