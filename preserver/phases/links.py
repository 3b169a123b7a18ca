"""Phase: the links in the articles' bodies (with `--links`) and their embedded videos and
iframes (every run: they are the article's media). An archived one is checked like a
snapshot, a live one like an original (without coverage); other schemes are neither."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..queries import due_urls
from ..urls import is_http_url, parse_wayback_url
from . import Context
from .originals import Originals
from .snapshots import Snapshots

if TYPE_CHECKING:
    from ..archive import Archive
    from ..captures import CaptureIndex
    from ..client import HttpClient
    from ..schedule import Budget


@dataclass
class LinkWork:
    archived_links: list[str] = field(default_factory=list)
    live_links: list[str] = field(default_factory=list)
    archived_embeds: list[str] = field(default_factory=list)
    live_embeds: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, body_links: list[str], embeds: list[str]) -> LinkWork:
        return cls(*split_links(body_links), *split_links(embeds))


class BodyLinks:
    """`use_index` false (an audit): archived embeds are asked of the replay itself."""

    def __init__(self, ctx: Context, client: HttpClient, archive: Archive,
                 index: CaptureIndex, use_index: bool = True):
        self.ctx = ctx
        self.archived_links = Snapshots(ctx, archive, index, "links")
        self.archived_embeds = Snapshots(ctx, archive, index, "embeds", use_index)
        self.live_links = Originals(ctx, client, index, "links")
        self.live_embeds = Originals(ctx, client, index, "embeds")

    def work(self, links: bool = True, embeds: bool = True) -> LinkWork:
        """The corpus's body links (if `links`) and embeds (if `embeds`) that are due."""
        db, policy = self.ctx.ledger.db, self.ctx.config.schedule
        return LinkWork.of(list(due_urls(db, "link", policy, links)),
                           list(due_urls(db, "embed", policy, embeds)))

    async def run_archived_links(self, work: LinkWork, budget: Budget) -> None:
        """Archived body links: before the snapshots (the run's order)."""
        await self.archived_links.run(work.archived_links, budget)

    async def run(self, work: LinkWork, budget: Budget) -> None:
        """Embeds (mostly a replay each: they share its pace with the images rather than go
        first) and live body links."""
        await asyncio.gather(self.archived_embeds.run(work.archived_embeds, budget),
                             self.live_links.run(work.live_links, budget),
                             self.live_embeds.run(work.live_embeds, budget))


def split_links(body_links: list[str]) -> tuple[list[str], list[str]]:
    """(archived body links, live http(s) body links); other schemes are neither."""
    archived = [u for u in body_links if parse_wayback_url(u)]
    live = [u for u in body_links if not parse_wayback_url(u) and is_http_url(u)]
    return archived, live
