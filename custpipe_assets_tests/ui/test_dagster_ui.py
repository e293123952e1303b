"""What a person sees and does in the Dagster UI (`dagster dev` in a real browser) over this repository's Definitions:
the asset groups, a materialization launched from an asset's page, check results, the automation (on by default,
starting nothing after the main job) and freshness results.

Expectations come from the Definitions object, the instance's own records and the raw landing files, never from
what the UI showed elsewhere; each step leaves a screenshot in test-artifacts/ui/.
"""

import csv
import math
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from playwright.sync_api import Locator, Page, expect

from custpipe_assets.core.automation import AUTOMATION_SENSOR, GOLD_FRESHNESS
from custpipe_assets.purchases import assets
from custpipe_assets.purchases.reference import CUSTOMERS_FILE, PRODUCTS_FILE
from custpipe_assets.segmentation import assets as segmentation

RUN_TIMEOUT_MS = 120_000
SENSORS_TICKED_TIMEOUT_S = 240  # the daemon ticks each sensor soon after it starts, one after the other
FRESHNESS_EVALUATED_TIMEOUT_MS = 120_000  # the freshness daemon evaluates policies on its own loop
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
            WARNED_BADGE
            if label in history.checks_warned
            else FAILED_BADGE
            if label in history.checks_failed
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


def sensor_ticks(instance: dg.DagsterInstance) -> dict[str, list]:
    """Every sensor's ticks so far (newest first), from the instance the daemon records them in."""
    from dagster._core.scheduler.instigation import InstigatorType

    return {
        state.instigator_name: instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=10)
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    }


def test_make_run_then_make_dev_starts_no_run(dagster_ui, page, screenshot):
    """Every sensor (arrivals, automation, freshness, alerts) ticks once under the daemon and requests nothing."""
    sensors = {sensor.name for sensor in dagster_ui.definitions.sensors}
    deadline = time.monotonic() + SENSORS_TICKED_TIMEOUT_S
    while True:
        ticks = sensor_ticks(dagster_ui.instance)
        done = {name for name, ticks_of_one in ticks.items() if any(tick.is_completed for tick in ticks_of_one)}
        if sensors <= done or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sensors <= done, f"sensors that never ticked: {sorted(sensors - done)}"
    for name in sorted(sensors):
        for tick in ticks[name]:
            assert not tick.is_failure, f"{name}: {tick.error}"
            assert not tick.run_ids and not tick.run_requests, f"{name} requested runs {tick.run_ids}"
            assert not tick.requested_asset_materialization_count, f"{name} requested {tick.requested_asset_keys}"
    main_job_runs = {run.run_id for run in dagster_ui.history.runs}
    started_since = [
        record.dagster_run
        for record in dagster_ui.instance.get_run_records()
        if record.dagster_run.run_id not in main_job_runs and record.dagster_run.tags.get("dagster/from_ui") != "true"
    ]
    assert started_since == [], [(run.job_name, run.tags) for run in started_since]
    assert dagster_ui.instance.get_backfills() == []

    page.goto(dagster_ui.url(f"/locations/{dagster_ui.location_name}/sensors/{AUTOMATION_SENSOR}"))
    expect(page.get_by_text("0 runs requested").first).to_be_visible()
    screenshot("5-automation-sensor-ticked-nothing-requested")


def test_the_automation_sensor_is_listed_and_running(dagster_ui, page, screenshot):
    repository = dagster_ui.definitions.get_repository_def()
    sensor = repository.get_sensor_def(AUTOMATION_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert dagster_ui.definitions.resolve_asset_graph().get(segmentation.CUSTOMER_FEATURES).automation_condition

    page.goto(dagster_ui.url("/automation"))
    link = page.locator(f'a[href="/locations/{dagster_ui.location_name}/sensors/{AUTOMATION_SENSOR}"]')
    expect(link).to_contain_text("Automation condition sensor")
    row = page.locator("div[data-index]").filter(has=link)
    expect(row.locator("input[type=checkbox]").last, "its on/off switch").to_be_checked()
    screenshot("6a-automation-page-automation-sensor-running")

    page.goto(dagster_ui.url(asset_page(segmentation.CUSTOMER_FEATURES)))
    expect(page.get_by_role("link", name=AUTOMATION_SENSOR)).to_be_visible()  # "Automation details": its sensor
    expect(page.get_by_text("follows_inputs", exact=True)).to_be_visible()  # and its condition
    screenshot("6b-features-follow-their-inputs")


def latest_freshness_check(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> dg.AssetCheckEvaluation:
    (record,) = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(asset_key, "freshness_check"), limit=1
    )
    return record.event.dagster_event.event_specific_data


def test_freshness_results_show_on_the_asset_pages(dagster_ui, page, screenshot):
    """A weekly table's freshness check (the 2018 sample is weeks behind) and a gold table's freshness policy."""
    evaluation = latest_freshness_check(dagster_ui.instance, assets.CUSTOMER_PRODUCT_PURCHASES)
    label, icon = PASSED_BADGE if evaluation.passed else WARNED_BADGE
    assert (label, icon) == WARNED_BADGE, "the 2018 sample is not last week's data"

    page.goto(dagster_ui.url(f"{asset_page(assets.CUSTOMER_PRODUCT_PURCHASES)}?view=checks"))
    row = check_row(page, "freshness_check")
    expect(row).to_contain_text(label)
    expect(row.get_by_role("img", name=icon, exact=True)).to_be_visible()
    row.click()
    expect(page.get_by_text(evaluation.description, exact=True)).to_be_visible()  # "We expected partition ..."
    screenshot("7a-freshness-check-weekly-table")

    # the gold table's policy: refreshed since the last Monday 06:00 UTC deadline's window opened (04:00)?
    materialized = dagster_ui.instance.get_latest_materialization_event(segmentation.CUSTOMER_FEATURES).timestamp
    now = datetime.now(UTC)
    deadline = datetime.combine(now.date() - timedelta(days=now.weekday()), datetime.min.time(), UTC) + timedelta(
        hours=6
    )
    deadline -= timedelta(days=7) if deadline > now else timedelta(0)
    window_opened = deadline - GOLD_FRESHNESS.lower_bound_delta
    expected = "Passing" if materialized >= window_opened.timestamp() else "Failing"
    page.goto(dagster_ui.url(asset_page(segmentation.CUSTOMER_FEATURES)))
    status = page.get_by_text("Freshness policy", exact=True).first.locator("xpath=..")
    expect(status).to_contain_text(expected, timeout=FRESHNESS_EVALUATED_TIMEOUT_MS)
    screenshot("7b-freshness-policy-gold-table")
