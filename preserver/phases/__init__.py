"""The network phases of a run, one module each, and what they share.

Every phase has the same shape: an object built on the run's `Context` (config, ledger,
summary, progress line, exclusions) and the network objects it uses, with
- `work(...)`: its due work, read from the ledger (the SQL is preserver.queries), as a
  `Worklist` or a short list;
- `async run(work, budget)`: every item through the shared client, whose limiters pace it, by
  a pool of workers; each result is written to the ledger as soon as it is known, so a killed
  run keeps what it did.
A new phase is a new module of this shape; preserver.crawl sets the phases' order.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..urls import parse_wayback_url

if TYPE_CHECKING:
    from ..config import Config
    from ..crawl import RunSummary
    from ..exclude import Exclusions
    from ..ledger import Ledger
    from ..progress import LineProgress
    from ..schedule import Budget
    from ..status import CheckResult

WORKERS = 16
BATCH = 2000  # results written per transaction (not a whole corpus's in memory)
_END = object()


@dataclass
class Context:
    """What every phase of one run shares (the client and its limiters come with the
    network objects each phase is given)."""

    config: Config
    ledger: Ledger
    summary: RunSummary
    progress: LineProgress
    exclusions: Exclusions

    def not_excluded(self, urls):
        return (url for url in urls if self.exclusions.match(url) is None) \
            if self.exclusions.patterns else urls

    def recorder(self, counter: Counter, phase: str):
        """Records one check's result in the ledger, the summary and the progress line."""
        def record(result: CheckResult) -> None:
            if result.not_sent:  # the class stopped: nothing asked, the URL stays due
                self.summary.left_due[phase] += 1
                return
            self.ledger.record_check(result)
            counter[result.status.value] += 1
            self.progress.advance(phase)
        return record


async def pool(items, work, record, budget: Budget | None = None,
               workers: int = WORKERS) -> None:
    """Run `work` on every item with a bounded number of workers; `record` each result.
    When the budget is spent no new item starts; those in flight finish and are recorded."""
    pending = iter(items)  # a worklist reads its pages as the workers get to them

    async def worker() -> None:
        while budget is None or not budget.exhausted():
            item = next(pending, _END)
            if item is _END:
                return
            record(await work(item))

    await asyncio.gather(*(worker() for _ in range(min(workers, len(items)) or 1)))


def original(url: str) -> str:
    """The original URL inside a Wayback URL (any other URL as it is)."""
    wayback = parse_wayback_url(url)
    return wayback.original if wayback else url
