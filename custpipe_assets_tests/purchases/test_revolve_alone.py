"""The Revolve exports landed alone (customers.csv, products.csv, transactions/ in their real shape: `\r\r\n` line
ends, loyalty scores 1..10): `custpipe run` runs the purchases domain only, exits 0, and the counts equal an
independent computation over the raw files."""

from collections import Counter

from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.run import DOMAIN_SOURCES
from custpipe_assets.sample.customers import generate_customers_landing


def _tables(warehouse_path) -> set[str]:
    return set(Warehouse(warehouse_path).table_counts()["table"])


def test_revolve_exports_alone_run_the_purchases_domain(tmp_path, run_cli, landing_with, expected_counts_of):
    generated = tmp_path / "generated"
    generate_customers_landing(generated, seed=5)
    customers_bytes = (generated / "customers.csv").read_bytes()
    assert customers_bytes.count(b"\r\r\n") == customers_bytes.count(b"\n"), "the real shape: \\r\\r\\n line ends"
    landing = landing_with(generated, "customers.csv", "products.csv", "transactions")

    result = run_cli(landing)

    assert result.exit_code == 0, result.output
    for other in ("segmentation", "conversions", "product_views"):
        assert f"{other}: nothing landed in" in result.output and "skipped" in result.output
    assert "purchases: run" in result.output and "succeeded" in result.output
    gold = Warehouse(result.settings.warehouse).read("gold.customer_product_purchases")
    actual = Counter(
        {(w, c, p): n for w, c, p, n in gold.select("week_start", "customer_id", "product_id", "purchase_count").rows()}
    )
    assert actual == expected_counts_of(landing) and actual
    assert "silver.conversions" not in _tables(result.settings.warehouse), "other domains did not run"


def test_domain_option_runs_only_the_chosen_domains(tmp_path, run_cli, landing_with):
    generated = tmp_path / "generated"
    generate_customers_landing(generated, seed=5)
    landing = landing_with(generated, "customers.csv", "products.csv", "transactions", "customer_profiles.csv")
    result = run_cli(landing, "--domain", "purchases")
    assert result.exit_code == 0, result.output
    assert "purchases: run" in result.output and "segmentation: run" not in result.output
    tables = _tables(result.settings.warehouse)
    assert "gold.customer_product_purchases" in tables and "gold.customer_features" not in tables
    assert {source.name for source in DOMAIN_SOURCES} == {"purchases", "segmentation", "conversions", "product_views"}


def test_no_job_retries_a_failed_step():
    """A format error fails at once with its message; transient failures are retried where they happen (the
    warehouse's lock wait, the HTTP client), not by re-running a deterministic step."""
    from datetime import date
    from pathlib import Path

    from custpipe_assets.core.settings import Settings
    from custpipe_assets.definitions import build_definitions

    settings = Settings(landing_dir=Path("/nonexistent"), warehouse=Path("/tmp/x.duckdb"), first_week=date(2018, 9, 3))
    definitions = build_definitions(settings)
    for job in definitions.resolve_all_job_defs():
        assert job.op_retry_policy is None, job.name


def test_only_entries_no_domain_reads_are_named(tmp_path):
    from custpipe_assets.run import unread_landing_entries

    for name in ("customers.csv", "_truth", "_stand_in", "amaro", "customer.csv", "views"):
        (tmp_path / name).mkdir()
    assert unread_landing_entries(tmp_path) == ["customer.csv", "views"]
