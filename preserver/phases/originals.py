"""Phase: original pages (and live body links and embeds) checked on the live web; an
article's original also gets its archive coverage from the CDX index (one exact query when
no bulk query covered it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import RequestFailed
from ..progress import counts_text
from ..queries import due_urls
from ..worklist import Worklist
from . import Context, pool

if TYPE_CHECKING:
    from ..captures import CaptureIndex
    from ..client import HttpClient
    from ..schedule import Budget
    from ..status import CheckResult


class Originals:
    """Checks live URLs; `name` is the summary's counter and progress line ("originals", or
    "links"/"embeds" for live body links and embeds, which are checked without coverage)."""

    def __init__(self, ctx: Context, client: HttpClient, index: CaptureIndex,
                 name: str = "originals"):
        self.ctx = ctx
        self.client = client
        self.index = index
        self.name = name

    def work(self, wanted: bool = True) -> Worklist:
        """The corpus's originals that are due."""
        return due_urls(self.ctx.ledger.db, "original", self.ctx.config.schedule, wanted)

    async def run(self, urls, budget: Budget) -> None:
        if not urls and self.name != "originals":
            return
        ctx, counter = self.ctx, getattr(self.ctx.summary, self.name)
        ctx.progress.start(self.name, len(urls), ctx.config.live.per_host_per_second)
        await pool(urls, self.check, ctx.recorder(counter, self.name), budget)
        ctx.progress.finish(self.name, f"{len(urls)} due ({counts_text(counter)})")

    async def check(self, url: str) -> CheckResult:
        from ..live import check_live

        excluded = self.ctx.exclusions.result(url)
        if excluded is not None:
            return excluded
        result = await check_live(self.client, url)
        if self.name != "originals":
            return result
        try:
            if not self.index.covers(url):
                await self.index.fetch_exact(url)
            result.coverage = self.index.coverage(url)
        except RequestFailed as exc:
            result.error = "; ".join(filter(None, [result.error, f"CDX: {exc}"]))
        return result
