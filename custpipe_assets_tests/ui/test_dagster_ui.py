"""What a person sees and does in the Dagster UI (`dagster dev` in a real browser) over this repository's Definitions:
the asset groups, a materialization launched from an asset's page, check results, and the automation.

Expectations come from the Definitions object, the instance's own records and the raw landing files, never from
what the UI showed elsewhere; each step leaves a screenshot in test-artifacts/ui/.
"""

import csv
import math
import re
from pathlib import Path

import dagster as dg
from playwright.sync_api import Locator, Page, expect

from custpipe_assets.purchases import assets
from custpipe_assets.purchases.reference import CUSTOMERS_FILE, PRODUCTS_FILE

RUN_TIMEOUT_MS = 120_000
# How the UI draws a check's latest result: the label under its name and the icon beside it.
PASSED_BADGE = ("Succeeded", "check_circle")
WARNED_BADGE = ("Failed", "warning_outline")
FAILED_BADGE = ("Failed", "cancel")
# What the automation page writes under a schedule's or a sensor's name (every sensor type ends in "sensor").
KIND_SUBTITLES = {"schedules": "Scheduled ", "sensors": "[Ss]ensor"}


def asset_page(asset_key: dg.AssetKey) -> str:
    return f"/assets/{'/'.join(asset_key.path)}"


def csv_data_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def has_unusable_loyalty_score(customers_csv: Path) -> bool:
    """Read straight from the landed file: does any customer's loyalty_score fail to be a whole number in 1..10?"""
    for row in csv_data_rows(customers_csv):
        try:
            score = float(row["loyalty_score"])
        except (TypeError, ValueError):
            return True
        if math.isnan(score) or score != int(score) or not 1 <= score <= 10:
            return True
    return False


def check_row(page: Page, check_name: str) -> Locator:
    """A check's row in the checks tab's list: its status icon, its name and its status label."""
    name = page.get_by_title(check_name, exact=True).first
    return name.locator("xpath=ancestor::div[.//*[@role='img']][1]")


def test_lineage_shows_every_asset_group(dagster_ui, page, screenshot):
    asset_graph = dagster_ui.definitions.resolve_asset_graph()
    groups = sorted({asset_graph.get(key).group_name for key in asset_graph.get_all_asset_keys()})
    assert groups == ["conversions", "product_views", "purchases", "segmentation"], "one group per domain"

    page.goto(dagster_ui.url("/asset-groups"))
    expect(page.get_by_text("Global asset lineage")).to_be_visible()
    lineage_graph = page.get_by_role("img")
    for group in groups:
        expect(lineage_graph.get_by_text(group, exact=True), f"group {group} in the lineage graph").to_be_visible()
    expect(lineage_graph.get_by_text("no_such_group", exact=True)).to_have_count(0)
    expect(lineage_graph.get_by_text("(fetching statuses)")).to_have_count(0)  # settled before the picture
    screenshot("1-lineage-every-group")


def test_materialize_an_asset_from_its_page(dagster_ui, page, screenshot):
    """Click "Materialize" on bronze/products; the launched run succeeds and reads the landing folder it was given."""
    runs_before = set(dagster_ui.instance.get_run_ids())

    page.goto(dagster_ui.url(asset_page(assets.BRONZE_PRODUCTS)))
    page.get_by_role("button", name=re.compile(r"Materialize$")).click()
    # The toast names the run and links to it; it fades after a few seconds, so its link is read at once.
    toast = page.get_by_role("listitem").filter(has_text=re.compile(r"Launched run [0-9a-f]{8}"))
    run_link = toast.get_by_role("link", name="View", exact=True)
    run_path = run_link.get_attribute("href")
    run_id = re.fullmatch(r"/runs/([0-9a-f-]{36})", run_path).group(1)
    expect(toast).to_contain_text(f"Launched run {run_id[:8]}")
    screenshot("2a-materialize-launched")
    assert run_id not in runs_before

    page.goto(dagster_ui.url(run_path))
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    screenshot("2b-materialize-run-success")

    run = dagster_ui.instance.get_run_by_id(run_id)
    materialization = dagster_ui.instance.get_latest_materialization_event(assets.BRONZE_PRODUCTS)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags.get("dagster/from_ui") == "true"
    assert materialization.run_id == run_id
    landed_products = csv_data_rows(dagster_ui.settings.landing_dir / PRODUCTS_FILE)
    assert materialization.asset_materialization.metadata["dagster/row_count"].value == len(landed_products)


def test_checks_tab_shows_each_check_result(dagster_ui, page, screenshot):
    """silver/customers: passed checks with a success badge, the loyalty warning with a warning badge."""
    asset_key = assets.SILVER_CUSTOMERS
    check_names = sorted(
        key.name for key in dagster_ui.definitions.resolve_asset_graph().asset_check_keys if key.asset_key == asset_key
    )
    assert {"schema", "reconciles", "loyalty_score_valid"} <= set(check_names)
    history = dagster_ui.history
    expected = {}
    for name in check_names:
        label = f"{asset_key.to_user_string()}:{name}"
        expected[name] = (
            WARNED_BADGE if label in history.checks_warned else FAILED_BADGE if label in history.checks_failed
            else PASSED_BADGE
        )
    loyalty_warns = has_unusable_loyalty_score(dagster_ui.settings.landing_dir / CUSTOMERS_FILE)
    assert loyalty_warns, "the sample's customers.csv is meant to hold a loyalty_score that is not a number"
    assert expected["loyalty_score_valid"] == WARNED_BADGE
    assert expected["schema"] == PASSED_BADGE

    page.goto(dagster_ui.url(f"{asset_page(asset_key)}?view=checks"))
    expect(page.get_by_text(f"Checks ({len(check_names)})", exact=True)).to_be_visible()
    for name, (label, icon) in expected.items():
        row = check_row(page, name)
        expect(row, f"check {name}").to_contain_text(label)
        expect(row.get_by_role("img", name=icon, exact=True), f"{icon} badge of check {name}").to_be_visible()
    screenshot("3-checks-tab-silver-customers")


def test_automation_page_lists_every_schedule_and_sensor(dagster_ui, page, screenshot):
    definitions = dagster_ui.definitions
    instigators = [("schedules", schedule.name) for schedule in definitions.schedules] + [
        ("sensors", sensor.name) for sensor in definitions.sensors
    ]
    assert ("schedules", "weekly_transactions_schedule") in instigators
    assert ("sensors", "transaction_arrivals") in instigators

    page.goto(dagster_ui.url("/automation"))
    for kind, name in instigators:
        link = page.locator(f'a[href="/locations/{dagster_ui.location_name}/{kind}/{name}"]')
        expect(link, f"{kind[:-1]} {name} on the automation page").to_be_visible()
        # Once its details have loaded, a row says what it is under its name ("Scheduled At ...", "Standard sensor").
        expect(link).to_contain_text(re.compile(rf"{re.escape(name)}[\s\S]*{KIND_SUBTITLES[kind]}"))
    screenshot("4-automation-schedules-and-sensors")
