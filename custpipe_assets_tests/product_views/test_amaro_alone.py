"""The AMARO exports landed alone (orders, order items, `productEvent_YYYYMMDD.json` view files whose events cross
midnight and whose ids collide): `custpipe run` runs the product-views domain only over the weeks of the events'
own times, exits 0, and the CTR table equals an independent computation over the raw files."""

from collections import Counter
from datetime import date, timedelta

from custpipe_assets.core.warehouse import Warehouse
from custpipe_assets.sample.product_views import generate_product_views_landing


def test_amaro_exports_alone_run_the_product_views_domain(tmp_path, run_cli, landing_with, reference_counts_of):
    generated = tmp_path / "generated"
    generate_product_views_landing(generated, seed=3, start=date(2018, 9, 3), days=8, views_per_day=200)
    landing = landing_with(generated, "amaro")

    result = run_cli(landing)

    assert result.exit_code == 0, result.output
    for other in ("purchases", "segmentation", "conversions"):
        assert f"{other}: nothing landed in" in result.output
    assert "product_views: run" in result.output
    gold = Warehouse(result.settings.warehouse).read("gold.ctr_per_minute")
    actual = Counter(
        {
            (m, p, c): (v, n)
            for m, p, c, v, n in gold.select("minute_local", "platform", "product", "views", "purchases").rows()
        }
    )
    expected = {
        key: (views, len(orders))
        for key, (views, orders) in reference_counts_of(landing / "amaro").items()
        if views or orders
    }
    # orders after the last week with views are outside the materialized weeks (their UTC week never ran)
    last_week_end = max(gold["week_start"]) + timedelta(days=7)
    expected = {key: value for key, value in expected.items() if (key[0] + timedelta(hours=3)).date() < last_week_end}
    assert dict(actual) == expected
    assert gold["week_start"].n_unique() == 2, "eight days from a Monday: two weeks, from the events' own times"
