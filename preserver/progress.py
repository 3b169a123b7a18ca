"""Progress for people and for cron.

On a terminal: one rich progress bar per phase with counts, rate, and an ETA that knows the
archive's limits (a phase bound by the replay limit cannot finish faster than its remaining
requests at that rate, whatever the last minute looked like). Without a terminal (cron): no
bars, one concise line per phase when it ends. `--quiet`: nothing but warnings and the
summary. Everything goes to stderr; the summary goes to stdout.
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("preserver")


def counts_text(counter) -> str:
    """A phase's counts for its line: "ok 3, not_found 1" (sorted), or "none"."""
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


class LineProgress:
    """No terminal: one line per phase when it ends (and nothing at all when quiet)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._started: dict[str, float] = {}
        self._done: dict[str, int] = {}

    def start(self, phase: str, total: int, per_second: float | None = None) -> None:
        self._started[phase] = time.monotonic()
        self._done[phase] = 0

    def advance(self, phase: str, n: int = 1) -> None:
        self._done[phase] = self._done.get(phase, 0) + n

    def finish(self, phase: str, detail: str) -> None:
        seconds = time.monotonic() - self._started.pop(phase, time.monotonic())
        if not self.quiet:
            log.info("%s: %s (%.1f s)", phase, detail, seconds)

    def close(self) -> None:
        pass


class RichProgress(LineProgress):
    """A terminal: live bars, then the same one line per phase."""

    def __init__(self, console=None):
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=console or Console(stderr=True), transient=True)
        self._tasks: dict[str, int] = {}
        self._rates: dict[str, float | None] = {}
        self._progress.start()

    def start(self, phase: str, total: int, per_second: float | None = None) -> None:
        super().start(phase, total, per_second)
        self._rates[phase] = per_second
        self._tasks[phase] = self._progress.add_task(phase, total=total, rate="",
                                                     eta=_eta(total, per_second))

    def advance(self, phase: str, n: int = 1) -> None:
        super().advance(phase, n)
        task = self._tasks.get(phase)
        if task is not None:
            self._progress.advance(task, n)
            state = next(t for t in self._progress.tasks if t.id == task)
            speed = f"{state.speed:,.1f}/s" if state.speed else ""
            self._progress.update(task, rate=speed,
                                  eta=_eta(state.remaining or 0, self._rates.get(phase)))

    def finish(self, phase: str, detail: str) -> None:
        task = self._tasks.pop(phase, None)
        if task is not None:
            self._progress.remove_task(task)
        super().finish(phase, detail)

    def close(self) -> None:
        self._progress.stop()


def seconds_at_limit(requests: float, per_second: float | None) -> float:
    """The least time `requests` take at `per_second` (a limiter's pace): the arithmetic of
    the bars' ETA and of `preserver plan`'s estimate. 0 when there is no limit or no work."""
    if not per_second or not requests:
        return 0.0
    return requests / per_second


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3.5 h`: how the ETA and the plan say a time."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _eta(remaining: float, per_second: float | None) -> str:
    seconds = seconds_at_limit(remaining, per_second)
    if not seconds:
        return ""
    return f"≥ {duration(seconds)} at the archive's limit"


def make_progress(quiet: bool = False) -> LineProgress:
    if not quiet and sys.stderr.isatty():
        return RichProgress()
    return LineProgress(quiet)
