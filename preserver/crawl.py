"""A run's network phases, in order: one bulk CDX pass first, then the snapshots, originals,
body links, embeds and images side by side, then other archives; Save Page Now on its own.

`Crawler` is what the phases share (config, ledger, summary, progress line, and for each
command one client with its limiters) and the order they run in; each phase is a module of
preserver.phases that selects its work from the ledger and records its results. The run around
the phases (lock, record, signals) is preserver.run; the scan that fills the ledger before them
is preserver.scan.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Config
from .errors import NoNetworkError
from .exclude import Exclusions
from .ledger import Ledger
from .phases import Context, original
from .progress import LineProgress
from .schedule import Budget
from .worklist import Worklist

if TYPE_CHECKING:  # the network stack (httpx, httpcore) is imported by the phases that use
    # it, so that commands which make no request (scan, report) do not pay for loading it
    from .client import HttpClient


@dataclass
class RunSummary:
    articles: Counter = field(default_factory=Counter)  # parse_status -> n
    snapshots: Counter = field(default_factory=Counter)  # url status -> n
    originals: Counter = field(default_factory=Counter)
    images: Counter = field(default_factory=Counter)  # image status -> n
    saves: Counter = field(default_factory=Counter)  # save status -> n
    links: Counter = field(default_factory=Counter)  # body link status -> n
    embeds: Counter = field(default_factory=Counter)  # embedded video/iframe status -> n
    fixity: Counter = field(default_factory=Counter)  # files re-hashed, bytes, changed, ...
    requests: int = 0
    regressions: int = 0
    unreachable: dict = field(default_factory=dict)  # host -> reason
    stopped: dict = field(default_factory=dict)  # endpoint class -> why it stopped
    left_due: Counter = field(default_factory=Counter)  # phase -> items not asked (stopped)
    budget_spent: bool = False

    def as_dict(self) -> dict:
        return {
            "articles": sum(self.articles.values()), "parse": dict(self.articles),
            "snapshots": dict(self.snapshots), "originals": dict(self.originals),
            "images": dict(self.images), "images_saved": self.images.get("saved", 0),
            "saves": dict(self.saves), "links": dict(self.links), "embeds": dict(self.embeds),
            "fixity": dict(self.fixity),
            "requests": self.requests, "regressions": self.regressions,
            "unreachable_hosts": self.unreachable, "budget_spent": self.budget_spent,
            "stopped_classes": self.stopped, "left_due": dict(self.left_due),
        }


class Crawler:
    def __init__(self, config: Config, ledger: Ledger, progress: LineProgress | None = None):
        self.config = config
        self.ledger = ledger
        self.summary = RunSummary()
        self.progress = progress or LineProgress()
        self.context = Context(config, ledger, self.summary, self.progress,
                               Exclusions(config.live.exclude))

    async def check_and_save(self, check: bool = True, images: bool = True,
                             budget: Budget | None = None, audit: Targets | None = None,
                             links: bool = False) -> None:
        """Check what is due and save what is missing, asking the archive as little as it can:
        one bulk CDX pass first, then only what the index cannot answer. An audit names its
        URLs instead, checks them now whatever the schedule says, and asks the replay itself
        about each snapshot rather than the cached index."""
        from .client import HttpClient

        budget = budget or Budget()
        async with HttpClient(self.config) as client:
            budget.client = client
            try:
                await self._network_phases(client, budget, check, images, audit, links)
            finally:  # an interrupted run still records what it sent
                self._note_client(client)
        self.summary.regressions = self.ledger.regressions
        self.summary.budget_spent = budget.exhausted()
        if client.offline:
            raise NoNetworkError("no network: nothing was checked (neither the archive nor "
                                 "any site nor a name server answered)")

    async def _network_phases(self, client: HttpClient, budget: Budget, check: bool,
                              images: bool, audit: Targets | None, links: bool) -> None:
        from .archive import Archive
        from .captures import CaptureIndex
        from .images import ImageSaver
        from .phases.elsewhere import Elsewhere
        from .phases.images import Images
        from .phases.links import BodyLinks, LinkWork
        from .phases.originals import Originals
        from .phases.snapshots import Snapshots

        ctx, config, use_index = self.context, self.config, audit is None
        archive = Archive(client, config.archive.base_url, config.archive.kind)
        index = CaptureIndex(self.ledger.db, archive, config)
        saver = ImageSaver(client, archive, config.media_path, config.security.max_image_bytes)
        snapshots = Snapshots(ctx, archive, index, use_index=use_index)
        originals = Originals(ctx, client, index)
        body_links = BodyLinks(ctx, client, archive, index, use_index)
        image_phase = Images(ctx, saver, index)
        if audit is None:  # worklists: the corpus's URLs stay in the ledger, not in memory
            snapshot_work, original_work = snapshots.work(check), originals.work(check)
            link_work = body_links.work(check and links, check)  # embeds: the article's media
            image_keys = image_phase.work(None if images else [])
        else:
            snapshot_work = Worklist.of(self.ledger.db, "snapshot", audit.snapshots)
            original_work = Worklist.of(self.ledger.db, "original", audit.originals)
            link_work = LinkWork.of([], audit.embeds)
            image_keys = image_phase.work(audit.images, due_only=False)
        keys = self.cdx_keys(snapshot_work, original_work, link_work.archived_links,
                             image_phase.firsts())
        await index.refresh(index.plan(keys)[0], budget)
        await body_links.run_archived_links(link_work, budget)
        # live pages and archived images pace on different limiters: run side by side,
        # so a slow live host does not hold up the archive (or the other way round); the
        # snapshots, mostly answered from the index, fill the gaps between downloads
        await asyncio.gather(snapshots.run(snapshot_work, budget),
                             originals.run(original_work, budget),
                             image_phase.run(image_keys, budget),
                             body_links.run(link_work, budget))
        if config.memento.timemaps and not budget.exhausted():
            checked = [*snapshot_work, *(url for key in image_keys
                                         for url in image_phase.group(key))]
            elsewhere = Elsewhere(ctx, client, saver)
            await elsewhere.run(elsewhere.work(checked), budget)

    def _note_client(self, client: HttpClient) -> None:
        """What the client knows at the end: requests, unreachable hosts, stopped classes."""
        self.summary.requests = client.requests_sent
        self.summary.unreachable = {o: e.first_error for o, e in client.down_hosts.items()}
        self.summary.stopped = {name: limiter.stopped_reason
                                for name, limiter in client.limiters.items()
                                if limiter.stopped_reason}

    def cdx_keys(self, snapshots, originals, archived_links, image_firsts):
        """The original URLs the CDX plan is made of (`preserver plan` makes the same).
        Excluded URLs are never asked about; embeds stay out: those under
        youtube.com/embed/ would earn a prefix query of all of YouTube's embeds (the index
        answers those that another query covers)."""
        kept = self.context.not_excluded
        return itertools.chain((original(u) for u in kept(snapshots)), kept(originals),
                               (original(u) for u in kept(archived_links)), image_firsts)

    async def save_pages(self, limit: int | None, budget: Budget | None = None) -> None:
        """Save Page Now for live originals the archive lacks (opt-in; see preserver.saves)."""
        from .archive import Archive
        from .client import HttpClient
        from .phases.saves import Saves

        budget = budget or Budget()
        async with HttpClient(self.config) as client:
            budget.client = client
            archive = Archive(client, self.config.archive.base_url, self.config.archive.kind)
            saves = Saves(self.context, client, archive)
            await saves.run(saves.work(limit), budget)
            self.summary.requests = client.requests_sent


@dataclass
class Targets:
    """What an audit checks: URLs named on the command line or found in named articles."""

    snapshots: list[str] = field(default_factory=list)
    originals: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    embeds: list[str] = field(default_factory=list)
    articles: list[str] = field(default_factory=list)  # ledger paths of the named articles
