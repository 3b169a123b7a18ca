"""Progress on a terminal (rich bars, several phases one after another) and under cron."""

import io
import logging

from rich.console import Console

from preserver.progress import LineProgress, RichProgress, _eta


def test_rich_progress_through_several_phases():
    out = io.StringIO()
    progress = RichProgress(Console(file=out, force_terminal=True, width=100))
    for phase, total in (("scan", 3), ("snapshots", 2), ("images", 4)):
        progress.start(phase, total, per_second=2.0)
        for _ in range(total):
            progress.advance(phase)
        progress.finish(phase, f"{total} done")
    progress.close()


def test_line_progress_writes_one_line_per_phase(caplog):
    caplog.set_level(logging.INFO, logger="preserver")
    progress = LineProgress()
    progress.start("images", 10)
    progress.advance("images", 10)
    progress.finish("images", "10 to fetch (saved 10)")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["images: 10 to fetch"]
    quiet = LineProgress(quiet=True)
    quiet.start("images", 1)
    quiet.finish("images", "x")
    assert len(caplog.records) == 1


def test_eta_knows_the_rate_limit():
    assert _eta(1200, 4.0) == "≥ 5 min at the archive's limit"
    assert _eta(60, 2.0) == "≥ 30 s at the archive's limit"
    assert _eta(0, 2.0) == ""
