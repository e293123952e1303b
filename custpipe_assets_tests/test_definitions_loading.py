"""`custpipe_assets.definitions.defs` is built when first asked for, not on import: `custpipe run` imports the module
for `build_definitions` and must not pay for a second build; Dagster's loader and `from ... import defs` still
find it."""

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import dagster as dg
    import custpipe_assets.definitions as module
    from dagster._core.workspace.autodiscovery import loadable_targets_from_loaded_module

    assert "defs" not in vars(module), "built on import"
    [target] = loadable_targets_from_loaded_module(module)  # how workspace.yaml's python_module is loaded
    assert target.attribute == "defs" and isinstance(target.target_definition, dg.Definitions)
    from custpipe_assets.definitions import defs
    assert defs is target.target_definition, "built once and kept"
    assert defs.resolve_job_def("everything_purchases").name == "everything_purchases"
    """
)


def test_defs_is_built_on_first_use_and_found_by_dagster(tmp_path):
    # a fresh interpreter: in this one another test may have asked for `defs` already
    env = {"CUSTPIPE_LANDING_DIR": str(tmp_path), "CUSTPIPE_WAREHOUSE": str(tmp_path / "w.duckdb")}
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
