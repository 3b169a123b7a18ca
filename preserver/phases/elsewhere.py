"""Phase: snapshots and images the Wayback Machine lacks, asked of other archives' Memento
TimeMaps (`[memento] archives`, opt-in); an image found there is saved from there."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..memento import OtherArchives
from ..progress import counts_text
from ..queries import image_urls, urls_with_status
from ..status import UrlStatus
from ..urls import parse_wayback_url
from . import Context, pool

if TYPE_CHECKING:
    from ..client import HttpClient
    from ..images import ImageSaver
    from ..schedule import Budget


class Elsewhere:
    def __init__(self, ctx: Context, client: HttpClient, saver: ImageSaver):
        self.ctx = ctx
        self.saver = saver
        self.others = OtherArchives(client, ctx.config.memento.timemaps)
        self.images: set[str] = set()
        self.found_or_not: Counter = Counter()  # for the progress line; the ledger has rows

    def work(self, checked: list[str]) -> list[str]:
        """The Wayback URLs among those checked in this run that the archive lacks."""
        db = self.ctx.ledger.db
        not_found = urls_with_status(db, UrlStatus.NOT_FOUND.value)
        self.images = image_urls(db)
        return [u for u in checked if u in not_found and parse_wayback_url(u)]

    async def run(self, lacking: list[str], budget: Budget) -> None:
        ctx = self.ctx
        ctx.progress.start("elsewhere", len(lacking), ctx.config.live.per_host_per_second)
        await pool(lacking, self._ask, self._record, budget)
        ctx.progress.finish("elsewhere", f"{len(lacking)} asked of other archives "
                                         f"({counts_text(self.found_or_not)})")

    async def _ask(self, url: str):
        wayback = parse_wayback_url(url)
        rows = await self.others.find(url, wayback.original, wayback.timestamp)
        found = next((r for r in rows if r["memento_url"]), None)
        outcome = None
        if found and url in self.images:
            outcome = await self.saver.save(url, elsewhere=found["memento_url"])
        return rows, outcome

    def _record(self, done) -> None:
        rows, outcome = done
        ctx = self.ctx
        ctx.ledger.record_alternates(rows)
        self.found_or_not["found" if any(r["memento_url"] for r in rows) else "not_found"] += 1
        if outcome is not None:
            ctx.ledger.record_image(outcome.row)
            ctx.summary.images[f"{outcome.row['status']} elsewhere"] += 1
        ctx.progress.advance("elsewhere")
