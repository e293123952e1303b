"""A snapshot of the Dagster graph people rely on: asset keys with group and layer kind, their upstream assets,
checks (and whether they block), and each job's selection. A change to the graph shows here as a diff to review;
after an intended change, `UPDATE_SNAPSHOTS=1 pytest custpipe_assets_tests/test_definitions_snapshot.py`."""

import os
from datetime import date
from pathlib import Path

from custpipe_assets.core.settings import Settings
from custpipe_assets.definitions import build_definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"


def describe_definitions() -> str:
    settings = Settings(landing_dir=Path("/landing"), warehouse=Path("/warehouse.duckdb"), first_week=date(2018, 9, 3))
    definitions = build_definitions(settings)
    graph = definitions.resolve_asset_graph()
    lines = ["# assets: key | group | layer kind | upstream"]
    for key in sorted(graph.get_all_asset_keys(), key=lambda key: key.to_user_string()):
        node = graph.get(key)
        layer = sorted(set(node.kinds) & {"bronze", "silver", "gold"})
        upstream = ", ".join(sorted(parent.to_user_string() for parent in node.parent_keys))
        lines.append(f"{key.to_user_string()} | {node.group_name} | {','.join(layer)} | {upstream}")
    lines.append("# checks: asset:check | blocking")
    for check_key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        blocking = graph.get_check_spec(check_key).blocking
        lines.append(f"{check_key.asset_key.to_user_string()}:{check_key.name} | {'blocking' if blocking else ''}")
    lines.append("# jobs: name | assets")
    for job in sorted(definitions.resolve_all_job_defs(), key=lambda job: job.name):
        if job.name.startswith("__"):
            continue
        keys = sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys)
        lines.append(f"{job.name} | {', '.join(keys)}")
    return "\n".join(lines) + "\n"


def test_definitions_match_the_reviewed_snapshot():
    current = describe_definitions()
    if os.environ.get("UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text(), "the asset graph changed: review the diff, then UPDATE_SNAPSHOTS=1"
