"""One run of preserver: the ledger's lock, the run's record in `runs`, signals, and the
phases in their order (audit, scan, checks and images, saves), each followed by a refresh of the
kept article health (preserver.health).

Every command that writes the ledger goes through `run_locked`, so each is recorded from start
to finish whatever happens, and two never write at once. What a run does is a `RunOptions`;
the phases themselves live in preserver.scan (no network) and preserver.phases (the network,
in the order preserver.crawl gives them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3
from dataclasses import dataclass, field

from .audit import AuditPlan, read_targets, verdicts
from .config import Config
from .crawl import Crawler
from .errors import NoNetworkError
from .ledger import Ledger, LedgerLock, open_ledger
from .progress import LineProgress
from .scan import scan_corpus
from .schedule import Budget
from .status import RunStatus
from .storage import clean_partial_files

log = logging.getLogger("preserver")


@dataclass
class RunOptions:
    """What one run does. `command` is recorded in `runs`; the phases run in a fixed order:
    `audit` (its named articles and URLs, now, whatever the schedule), `scan`, the checks
    (`check`, with body links if `links`) and `images` side by side, then `save` (at most
    `save_limit` pages). An audit carries its plan, not its targets: the named articles are
    read into the ledger, which only the run holding the lock may write."""

    command: str
    budget: Budget | None = None
    scan: bool = True
    check: bool = True
    images: bool = True
    links: bool = False
    save: bool = False
    save_limit: int | None = None
    audit: AuditPlan | None = None


@dataclass
class RunOutcome:
    status: RunStatus
    summary: dict
    error: str | None = None
    verdicts: list[dict] = field(default_factory=list)  # audits: one row per thing checked


def run_locked(config: Config, options: RunOptions,
               progress: LineProgress | None = None) -> RunOutcome:
    """One run, holding the ledger's lock: recorded in `runs` from start to finish, whatever
    happens. SIGTERM and SIGINT stop it within moments: what is done stays committed and the
    run is marked `interrupted`. Raises LedgerLockedError (writing nothing) if another run
    holds the ledger."""
    with LedgerLock(config.ledger_path), _signals_interrupt():
        ledger = Ledger(open_ledger(config.ledger_path), config.schedule)
        ledger.start_run(options.command, str(config.corpus_path))
        _refresh_health(ledger)  # what a killed run wrote and left unrefreshed
        crawler = Crawler(config, ledger, progress)
        status, error, rows = RunStatus.COMPLETED, None, []
        try:
            rows = _phases(config, ledger, crawler, options)
        except (KeyboardInterrupt, asyncio.CancelledError):
            status, error = RunStatus.INTERRUPTED, "interrupted by a signal"
        except NoNetworkError as exc:
            status, error = RunStatus.FAILED, str(exc)
            log.error("%s", exc)
        except Exception as exc:  # recorded in the ledger, then reported; never silent
            status, error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
            log.exception("run failed")
        finally:
            crawler.progress.close()
            _refresh_health(ledger)  # also when interrupted or failed: as far as it got
        summary = crawler.summary.as_dict()
        ledger.finish_run(status, summary, error)
    return RunOutcome(status, summary, error, rows)


def _phases(config: Config, ledger: Ledger, crawler: Crawler, options: RunOptions) -> list:
    """The phases `options` asks for, in order; an audit's verdicts (else none)."""
    rows: list[dict] = []
    removed = clean_partial_files(config.media_path)
    if removed:
        log.info("removed %d partial files left by an interrupted run", removed)
    if options.audit is not None:
        targets = read_targets(config, ledger, options.audit)
        _run_async(crawler.check_and_save(budget=options.budget, audit=targets))
        ledger.refresh_health()
        rows = verdicts(ledger, targets)
    if options.scan:
        scan_corpus(config, ledger, crawler.summary, crawler.progress)
        ledger.refresh_health()
    if options.check or options.images:
        _run_async(crawler.check_and_save(check=options.check, images=options.images,
                                          budget=options.budget, links=options.links))
        ledger.refresh_health()
    if options.save:
        _run_async(crawler.save_pages(options.save_limit, options.budget))
        ledger.refresh_health()
    return rows


def _refresh_health(ledger: Ledger) -> None:
    """Refresh the kept article health (preserver.health). If that fails or is cut short, what
    is stale stays recorded in the ledger and the next run refreshes it: a warning, not a failed
    run."""
    try:
        ledger.refresh_health()
    except (KeyboardInterrupt, asyncio.CancelledError, sqlite3.Error) as exc:
        log.warning("article health not refreshed (the next run does it): %s",
                    exc or type(exc).__name__)


@contextlib.contextmanager
def _signals_interrupt():
    """SIGTERM behaves like Ctrl-C while a run holds the ledger."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_async(coroutine) -> None:
    """Run the network phases; SIGTERM and SIGINT cancel them at the next await (every
    ledger write is synchronous, so none is cut in half)."""
    async def main():
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        await coroutine

    asyncio.run(main())
