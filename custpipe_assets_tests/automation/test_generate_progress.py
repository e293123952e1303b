"""`custpipe generate` shows how far it got: a progress bar over the transaction days (the long part at the large
scale), redrawn in place on a terminal, a line per tenth into a file or a pipe."""

import io

from custpipe_assets.cli import ProgressBar, main
from custpipe_assets.sample.customers import SCALES, generate_customers_landing

SMALL_DAYS = SCALES["small"].days


def test_the_generator_reports_every_transaction_day_once_in_order(tmp_path):
    calls = []
    generate_customers_landing(
        tmp_path / "landing", seed=3, scale="small", progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(day, SMALL_DAYS) for day in range(1, SMALL_DAYS + 1)]


def test_custpipe_generate_prints_a_progress_bar_line_per_tenth_when_not_on_a_terminal(tmp_path, capsys):
    assert main(["generate", "--landing-dir", str(tmp_path / "landing"), "--scale", "small", "--progress"]) == 0
    lines = capsys.readouterr().err.splitlines()
    bars = [line for line in lines if line.startswith("transaction days [")]
    assert [int(line.split("]")[1].split("%")[0]) // 10 for line in bars] == list(range(11))
    assert f"] 100% {SMALL_DAYS}/{SMALL_DAYS}, " in bars[-1] and "left" not in bars[-1]
    assert "#" * ProgressBar.WIDTH in bars[-1]


def test_without_the_flag_only_the_medium_and_large_scales_show_it(tmp_path, capsys):
    assert main(["generate", "--landing-dir", str(tmp_path / "landing"), "--scale", "small"]) == 0
    assert "transaction days [" not in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place():
    terminal = _Terminal()
    bar = ProgressBar("transaction days", stream=terminal)
    for done in range(1, 201):
        bar(done, 200)
    frames = terminal.getvalue().split("\r")[1:]
    assert len(frames) == 101, "one redraw per percent (0 to 100), not one per day"
    assert "  50% 100/200" in frames[50] and "s left" in frames[50]
    assert frames[-1].startswith("transaction days [" + "#" * ProgressBar.WIDTH + "] 100% 200/200")
    assert frames[-1].endswith("\n")
