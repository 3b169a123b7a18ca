"""Phase: archived pages (snapshots, and archived body links and embeds) checked against the
archive. Most are answered from the cached CDX index without a request; the rest get one
replay request each."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

from ..progress import counts_text
from ..queries import due_urls
from ..urls import parse_wayback_url
from ..worklist import Worklist
from . import BATCH, Context, pool

if TYPE_CHECKING:
    from ..archive import Archive
    from ..captures import CaptureIndex
    from ..schedule import Budget


class Snapshots:
    """Checks archived URLs; `name` is the summary's counter and progress line ("snapshots",
    or "links"/"embeds" for archived body links and embeds). `use_index` false (an audit)
    asks the replay itself about each URL instead of the cached index."""

    def __init__(self, ctx: Context, archive: Archive, index: CaptureIndex,
                 name: str = "snapshots", use_index: bool = True):
        self.ctx = ctx
        self.archive = archive
        self.index = index
        self.name = name
        self.use_index = use_index

    def work(self, wanted: bool = True) -> Worklist:
        """The corpus's snapshots that are due."""
        return due_urls(self.ctx.ledger.db, "snapshot", self.ctx.config.schedule, wanted)

    async def run(self, urls, budget: Budget) -> None:
        if not urls and self.name != "snapshots":
            return
        ctx, counter = self.ctx, getattr(self.ctx.summary, self.name)
        ctx.progress.start(self.name, len(urls), ctx.config.archive.replay_per_minute / 60)
        remote, batch, local = [], [], 0
        for url in itertools.chain(urls, [None]):  # None: the end, write the last batch
            answer = self._answer_here(url)
            if answer is not None:
                batch.append(answer)
            elif url is not None:
                remote.append(url)
            if len(batch) >= BATCH or (url is None and batch):
                ctx.ledger.record_checks(batch)  # in batches: not 50,000 results in memory
                counter.update(r.status.value for r in batch)
                ctx.progress.advance(self.name, len(batch))
                local, batch = local + len(batch), []
                await asyncio.sleep(0)  # let the downloads running alongside move on
        await pool(remote, self.archive.check_snapshot, ctx.recorder(counter, self.name),
                   budget)
        ctx.progress.finish(self.name, f"{len(urls)} due, {local} answered from the CDX "
                                       f"index ({counts_text(counter)})")

    def _answer_here(self, url: str | None):
        """The result without a request (excluded, or answered by the index), else None."""
        if url is None:
            return None
        excluded = self.ctx.exclusions.result(url)
        if excluded is not None:
            return excluded
        wayback = parse_wayback_url(url)
        if wayback is not None and self.use_index and self.index.covers(wayback.original):
            return self.index.snapshot_result(url, wayback)
        return None
