"""Reports go where the settings say (CUSTPIPE_REPORTS_DIR), never into the working directory."""

import dagster as dg

from custpipe_assets.reporting.report import main


def test_the_report_command_writes_into_the_reports_dir_setting(tmp_path, monkeypatch, capsys):
    home, reports, elsewhere = tmp_path / "dagster_home", tmp_path / "reports", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    with dg.instance_for_test(temp_dir=str(home)):
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("CUSTPIPE_REPORTS_DIR", str(reports))
        monkeypatch.chdir(elsewhere)
        assert main([]) == 0
    assert sorted(path.name for path in reports.iterdir()) == [
        "check_report.html",
        "check_report.json",
        "check_report.md",
    ]
    assert list(elsewhere.iterdir()) == []
    assert f"wrote {reports / 'check_report.html'}" in capsys.readouterr().out
