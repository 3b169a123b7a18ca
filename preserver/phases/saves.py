"""Phase: Save Page Now for live originals the archive lacks or holds only from long ago
(`preserver save`, opt-in; how a save is made and verified is preserver.saves)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..progress import counts_text
from ..saves import PageSaver, candidates, keys_from_environment
from . import Context, pool

if TYPE_CHECKING:
    from ..archive import Archive
    from ..client import HttpClient
    from ..schedule import Budget

WORKERS = 2  # the save limit is a few a minute: more workers would only wait


class Saves:
    def __init__(self, ctx: Context, client: HttpClient, archive: Archive):
        self.ctx = ctx
        self.saver = PageSaver(client, archive, ctx.config, keys_from_environment())

    def work(self, limit: int | None = None) -> list[str]:
        return candidates(self.ctx.ledger.db, self.ctx.config.save.max_capture_age_days, limit)

    async def run(self, urls: list[str], budget: Budget) -> None:
        ctx = self.ctx
        ctx.progress.start("saves", len(urls), ctx.config.archive.save_per_minute / 60)
        await pool(urls, self.saver.save, self._record, budget, workers=WORKERS)
        ctx.progress.finish("saves", f"{len(urls)} submitted ({counts_text(ctx.summary.saves)})")

    def _record(self, row: dict) -> None:
        self.ctx.ledger.record_save(row)
        self.ctx.summary.saves[row["status"]] += 1
        self.ctx.progress.advance("saves")
