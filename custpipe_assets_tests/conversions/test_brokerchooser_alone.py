"""The BrokerChooser exports landed alone (conversion and broker batches, page-category mapping): `custpipe run`
runs the conversions domain only, exits 0, and the matches score against the planted truth as on the full sample."""

from custpipe_assets.conversions.matching import match_quality
from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.sample.conversions import generate_conversions_landing, read_planted_truth


def test_brokerchooser_exports_alone_run_the_conversions_domain(tmp_path, run_cli, landing_with):
    generated = tmp_path / "generated"
    generate_conversions_landing(generated, seed=9, weeks=3)
    landing = landing_with(
        generated, "brokerchooser/conversions", "brokerchooser/broker_data", "brokerchooser/page_category_mapping.csv"
    )

    result = run_cli(landing)

    assert result.exit_code == 0, result.output
    for other in ("purchases", "segmentation", "product_views"):
        assert f"{other}: nothing landed in" in result.output
    assert "conversions: run" in result.output
    matches = Warehouse(result.settings.warehouse).read("silver.conversion_matches")
    truth = read_planted_truth(generated)
    quality = match_quality(matches.select("conversion_id", "registration_key"), truth)
    assert quality.precision >= 0.95 and quality.recall >= 0.95, quality
