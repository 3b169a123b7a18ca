"""`preserver plan`: what the next run would do and how long it would take, before it starts.

A first run on a real corpus takes hours at the archive's limits; its users want to know that
before they start, and which `--max-minutes` would cut it. The plan makes no request. It scans
the corpus into a scratch copy of the ledger (the ledger itself is not touched: no run is
recorded, nothing changes for the next real run), then builds the run's own worklists and CDX
plan with the run's own code (its phases' `work`, `CaptureIndex.plan`), so what it calls due is
what the run will find due. Requests are counted one per item: the least a run sends (redirects,
retries and 429 pauses add more; an image the index has no capture of, or a host found dead,
costs less). The time is `progress.seconds_at_limit`, the arithmetic of the progress bars'
ETA, applied phase by phase in the run's order: CDX prefix queries first, then archived body
links, then snapshots, originals and images side by side.
"""

from __future__ import annotations

import collections
import functools
import sqlite3
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from .config import Config
from .ledger import Ledger, open_ledger
from .progress import LineProgress, duration, seconds_at_limit
from .queries import worklist_statuses
from .status import UrlStatus
from .urls import parse_wayback_url, rebase


@dataclass
class RunPlan:
    due: dict = field(default_factory=dict)  # role -> URLs due ("image": distinct images)
    image_urls: int = 0  # the image URLs (spellings) behind the distinct images
    from_index: dict = field(default_factory=dict)  # role -> due URLs the CDX index answers
    cdx_queries: int = 0  # prefix or exact queries to (re)run first
    cdx_pages: int = 0  # at least this many pages for them
    cdx_exact: int = 0  # exact queries for originals no query covers (during the checks)
    replays: int = 0  # snapshots and archived links by replay, plus one per image
    live: dict = field(default_factory=dict)  # live host -> requests (originals, live links)
    unreachable: dict = field(default_factory=dict)  # host -> due URLs: down at last check,
    # so one probe (its other URLs are recorded without a request while it stays down)
    seconds: dict = field(default_factory=dict)  # endpoint class -> least time at its limit
    total_seconds: float = 0.0
    links: bool = False
    other_archives: list = field(default_factory=list)  # [memento] archives (not counted)

    @property
    def requests(self) -> int:
        return self.cdx_pages + self.cdx_exact + self.replays + sum(self.live.values())

    def as_dict(self) -> dict:
        return {**asdict(self), "requests": self.requests}


def make_plan(config: Config, links: bool = False) -> RunPlan:
    """The plan of a `preserver run` (with `--links` if links) on this config; no request."""
    from .captures import CaptureIndex
    from .crawl import Crawler
    from .images import ImageSaver
    from .phases.images import Images
    from .phases.links import BodyLinks
    from .phases.originals import Originals
    from .phases.snapshots import Snapshots
    from .scan import scan_corpus

    with tempfile.TemporaryDirectory(prefix="preserver-plan-") as folder:
        scratch = Path(folder) / "plan.db"
        if config.ledger_path.exists():
            _copy_ledger(config.ledger_path, scratch)
        db = open_ledger(scratch)
        try:
            crawler = Crawler(replace(config, ledger_path=scratch),
                              Ledger(db, config.schedule), LineProgress(quiet=True))
            scan_corpus(crawler.config, crawler.ledger, crawler.summary, crawler.progress)
            plan = RunPlan(links=links, other_archives=list(config.memento.archives))
            ctx, index = crawler.context, CaptureIndex(db, None, config)
            snapshots = Snapshots(ctx, None, index).work()
            originals = Originals(ctx, None, index).work()
            link_work = BodyLinks(ctx, None, None, index).work(links)  # embeds: every run
            saver = ImageSaver(None, None, config.media_path, config.security.max_image_bytes)
            image_phase = Images(ctx, saver, index)
            images = image_phase.work(fixity=False)  # reads no file
            keys = functools.partial(crawler.cdx_keys, snapshots, originals,
                                     link_work.archived_links, image_phase.firsts())
            queries, _ = index.plan(keys())
            _count_cdx(plan, index, queries, keys())
            _count_images(plan, image_phase, index, images)  # from the index as it stands
            index.assume_complete(queries)
            _count_due(plan, config, index, snapshots, originals, link_work.archived_links,
                       link_work.live_links)
            _count_embeds(plan, config, index, link_work.archived_embeds, link_work.live_embeds)
            _estimate(plan, config, archived_replays=len(link_work.archived_links)
                      - plan.from_index.get("link", 0))
        finally:
            db.close()
    return plan


def _copy_ledger(source: Path, target: Path) -> None:
    """A consistent copy, even while a run writes (SQLite's backup API; WAL lets it read)."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _count_cdx(plan: RunPlan, index, queries, keys) -> None:
    """The queries to (re)run first and their least number of pages."""
    from .captures import group_of

    prefixes = {q for q in queries if q.match_type == "prefix"}
    by_segment: collections.Counter = collections.Counter()  # (host, first segment) -> URLs
    for url in keys:
        by_segment[_segment_of(url)] += 1
    members: collections.Counter = collections.Counter()
    for segment, count in by_segment.items():  # group_of costs a SURT: once per segment
        group = group_of(segment[2]) if segment else None
        if group in prefixes:
            members[group] += count
    for query in queries:
        pages = index.pages_to_fetch(query, members.get(query, 1))
        plan.cdx_queries += 1 if pages else 0
        plan.cdx_pages += pages


def _segment_of(url: str) -> tuple[str, str, str] | None:
    """(host, first path segment, a URL of them) the way `captures.group_of` groups URLs,
    without its canonical key (a SURT per URL)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    segments = parts.path.split("/")
    if len(segments) < 3:
        return None
    host = (parts.hostname or "").lower().removeprefix("www.")
    return host, segments[1], f"{parts.scheme}://{host}/{segments[1]}/x"


def _count_due(plan: RunPlan, config: Config, index, snapshots, originals, archived_links,
               live_links) -> None:
    hosts: collections.Counter = collections.Counter()
    covers = functools.lru_cache(maxsize=1 << 17)(index.covers)  # a snapshot's original is
    # mostly an original too: one SURT for both
    plan.due["snapshot"] = len(snapshots)
    plan.from_index["snapshot"] = sum(1 for url in snapshots if _answered(covers, url))
    plan.replays += plan.due["snapshot"] - plan.from_index["snapshot"]
    plan.due["original"] = len(originals)
    for url in originals:
        hosts[_live_host(url, config)] += 1
        if not covers(url):
            plan.cdx_exact += 1
    if plan.links:
        plan.due["link"] = len(archived_links) + len(live_links)
        plan.from_index["link"] = sum(1 for url in archived_links if _answered(covers, url))
        plan.replays += len(archived_links) - plan.from_index["link"]
        for url in live_links:
            hosts[_live_host(url, config)] += 1
    plan.unreachable = {host: hosts[host] for host in _down_hosts(index.db, config)
                        if host in hosts}
    hosts.update({host: 1 - n for host, n in plan.unreachable.items()})
    plan.live = dict(hosts.most_common())


def _count_embeds(plan: RunPlan, config: Config, index, archived, live) -> None:
    """Embedded media: a replay each unless a query made for something else covers it (they
    are never planned into the CDX index), live ones on their host."""
    plan.due["embed"] = len(archived) + len(live)
    plan.from_index["embed"] = sum(1 for url in archived if _answered(index.covers, url))
    plan.replays += len(archived) - plan.from_index["embed"]
    for url in live:
        host = _live_host(url, config)
        plan.live[host] = plan.live.get(host, 0) + 1


def _down_hosts(db, config: Config) -> set[str]:
    """Hosts whose every due original was unreachable at its last check (DNS failure or
    refused connection): the run probes each once and, while it stays down, records its other
    URLs without a request."""
    down = (UrlStatus.DNS_ERROR.value, UrlStatus.CONNECTION_ERROR.value)
    seen: dict[str, bool] = {}
    for url, status in worklist_statuses(db, "original"):
        host = _live_host(url, config)
        seen[host] = seen.get(host, True) and status in down
    return {host for host, all_down in seen.items() if all_down}


def _count_images(plan: RunPlan, image_phase, index, images) -> None:
    """One replay per image to fetch, except those the cached index already knows have no
    capture (recorded `missing` without a request). Before the index's first query that is
    unknown: every image counts."""
    plan.due["image"] = len(images)
    plan.image_urls = image_phase.table.url_count()
    for urlkey in images:
        wayback = parse_wayback_url(image_phase.group(urlkey)[0])
        if wayback is not None and index.covers(wayback.original, urlkey) and \
                index.nearest(wayback.original, wayback.timestamp, urlkey) is None:
            continue
        plan.replays += 1


def _answered(covers, snapshot_url: str) -> bool:
    wayback = parse_wayback_url(snapshot_url)
    return wayback is not None and covers(wayback.original)


def _live_host(url: str, config: Config) -> str:
    """The host a live request really goes to (a configured stand-in replaces its origin)."""
    try:
        return urlsplit(rebase(url, config.live.origins)).netloc.lower() or "(no host)"
    except ValueError:
        return "(invalid)"


def _estimate(plan: RunPlan, config: Config, archived_replays: int) -> None:
    """Least time per endpoint class at its configured limit, and for the whole run in the
    run's order: CDX queries, then archived body links, then the rest side by side."""
    archive = config.archive
    cdx_rate, replay_rate = archive.cdx_per_minute / 60, archive.replay_per_minute / 60
    live = {host: seconds_at_limit(n, config.live.per_host_per_second)
            for host, n in plan.live.items()}
    plan.seconds = {
        "cdx": seconds_at_limit(plan.cdx_pages + plan.cdx_exact, cdx_rate),
        "replay": seconds_at_limit(plan.replays, replay_rate),
        "live": max(live.values(), default=0.0),
    }
    side_by_side = max(seconds_at_limit(plan.replays - archived_replays, replay_rate),
                       plan.seconds["live"], seconds_at_limit(plan.cdx_exact, cdx_rate))
    plan.total_seconds = (seconds_at_limit(plan.cdx_pages, cdx_rate)
                          + seconds_at_limit(archived_replays, replay_rate) + side_by_side)


def format_plan(plan: RunPlan, config: Config, max_minutes: float | None = None,
                max_requests: int | None = None) -> str:
    """The plan for people: what is due, the requests per endpoint class with the least time
    each takes at its limit, the whole run's estimate and what a budget would do to it."""
    archive, live = config.archive, config.live
    links = (f"{plan.due['link']:>9,}  body links ({plan.from_index['link']:,} answered from "
             "the CDX index)") if plan.links else "        -  (body links: add --links)"
    hosts = ", ".join(f"{host} {n:,}" for host, n in list(plan.live.items())[:3])
    if len(plan.live) > 3:
        hosts += f", {_n(len(plan.live) - 3, 'more host')}"
    lines = [
        "Plan of the next run (no request made; the ledger is not touched)",
        "",
        "Due now:",
        f"  snapshots  {plan.due['snapshot']:>9,}  ({plan.from_index['snapshot']:,} answered "
        "from the CDX index, the others by replay)",
        f"  originals  {plan.due['original']:>9,}  (live)",
        f"  images     {plan.due['image']:>9,}  distinct images to fetch "
        f"({_n(plan.image_urls, 'image URL')})",
        f"  embeds     {plan.due.get('embed', 0):>9,}  ({plan.from_index.get('embed', 0):,} "
        "answered from the CDX index, the others by replay or on the live web)",
        f"  links      {links}",
        "",
        "Requests, one per item (redirects and retries add more; an image found to have no "
        "capture costs none):",
        f"  CDX        {plan.cdx_pages + plan.cdx_exact:>9,}  at {archive.cdx_per_minute:g}/min: "
        f"≥ {duration(plan.seconds['cdx'])}  ({_n(plan.cdx_pages, 'page')} of "
        f"{_n(plan.cdx_queries, 'query', 'queries')} first, then "
        f"{_n(plan.cdx_exact, 'exact query', 'exact queries')} for originals)",
        f"  replay     {plan.replays:>9,}  at {archive.replay_per_minute:g}/min: "
        f"≥ {duration(plan.seconds['replay'])}",
        f"  live       {sum(plan.live.values()):>9,}  at {live.per_host_per_second:g}/s per "
        f"host: ≥ {duration(plan.seconds['live'])}  ({hosts or 'no host'})",
        f"  total      {plan.requests:>9,}",
        *[f"  ({host}: {_n(n, 'due URL')} unreachable at the last check, counted as one "
          "probe)" for host, n in plan.unreachable.items()],
        "",
        f"Estimated time at the configured limits: ≥ {duration(plan.total_seconds)} (the CDX "
        "queries first, then the rest side by side; a host found unreachable costs one "
        "request, not one per URL).",
    ]
    if plan.other_archives:
        lines.append(f"Other archives ({', '.join(plan.other_archives)}) are asked afterwards "
                     "for what the archive lacks: not counted here.")
    lines.append(_budget_line(plan, max_minutes, max_requests))
    return "\n".join(lines)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _budget_line(plan: RunPlan, max_minutes: float | None, max_requests: int | None) -> str:
    minutes = plan.total_seconds / 60
    if max_requests is not None and max_requests < plan.requests:
        return (f"--max-requests {max_requests:,} cuts this run (it needs at least "
                f"{plan.requests:,}); what is left is due first next time.")
    if max_minutes is not None and max_minutes < minutes:
        return (f"--max-minutes {max_minutes:g} cuts this run (it needs at least "
                f"{duration(plan.total_seconds)}): about {max_minutes / minutes:.0%} of it gets "
                "done, the rest is due first next time.")
    if max_minutes is not None or max_requests is not None:
        return "The budget given is enough for this run."
    if not minutes:
        return "Nothing to wait for: no budget would cut this run."
    runs = int(-(-minutes // 50))
    return (f"Any --max-minutes below {max(1, round(minutes)):,} cuts this run; at "
            f"--max-minutes 50 (an hourly cron slot) it takes at least {_n(runs, 'run')}.")
