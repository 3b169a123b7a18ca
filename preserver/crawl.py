"""The network phases of a run: check every snapshot and original, save every image, ask
other archives, submit saves.

Each phase reads its work from the ledger (so `preserver check` can follow a `scan` made
earlier) and writes each result as soon as it has it (so a killed run keeps what it did).
Concurrency is a pool of workers; the real pacing is done by the limiters in `client`. The run
around the phases (lock, record, signals, order) is preserver.run; the scan that fills the
ledger before them is preserver.scan.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .config import Config
from .errors import NoNetworkError, RequestFailed
from .exclude import Exclusions
from .ledger import CURRENT_LINKS, Ledger
from .progress import LineProgress, counts_text
from .schedule import Budget, due_params, due_sql
from .status import CheckResult, ImageStatus
from .urls import canonical_key, is_http_url, parse_wayback_url, time_distance
from .worklist import Worklist

if TYPE_CHECKING:  # the network stack (httpx, httpcore) is imported by the phases that use
    # it, so that commands which make no request (scan, report) do not pay for loading it
    from .archive import Archive
    from .captures import CaptureIndex
    from .client import HttpClient
    from .images import ImageSaver

log = logging.getLogger("preserver")
WORKERS = 16
BATCH = 2000  # results written per transaction (not a whole corpus's in memory)
_END = object()
_CORPUS_URLS = f"select distinct l.url as url from {CURRENT_LINKS} and l.role = :role"


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
        self.exclusions = Exclusions(config.live.exclude)

    # -- network phases -----------------------------------------------------------------
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

        archive = Archive(client, self.config.archive.base_url, self.config.archive.kind)
        index = CaptureIndex(self.ledger.db, archive, self.config)
        saver = ImageSaver(client, archive, self.config.media_path,
                           self.config.security.max_image_bytes)
        db = self.ledger.db
        if audit is None:  # worklists: the corpus's URLs stay in the ledger, not in memory
            snapshots = self._due("snapshot", check)
            originals = self._due("original", check)
            body_links = list(self._due("link", check and links))
            embeds = list(self._due("embed", check))  # always: they are the article's media
            image_keys = self._image_work(saver, None if images else [])
        else:
            snapshots = Worklist.of(db, "snapshot", audit.snapshots)
            originals = Worklist.of(db, "original", audit.originals)
            body_links, embeds = [], audit.embeds
            image_keys = self._image_work(saver, audit.images, due_only=False)
        archived_links, live_links = split_links(body_links)
        archived_embeds, live_embeds = split_links(embeds)
        keys = self.cdx_keys(snapshots, originals, archived_links)
        await index.refresh(index.plan(keys)[0], budget)
        await self._check_snapshots(archive, index, archived_links, budget, phase="links")
        # live pages and archived images pace on different limiters: run side by side,
        # so a slow live host does not hold up the archive (or the other way round); the
        # snapshots, mostly answered from the index, fill the gaps between downloads
        await asyncio.gather(self._check_snapshots(archive, index, snapshots, budget,
                                                   use_index=audit is None),
                             # embeds mostly need a replay each: they share its pace with
                             # the images rather than go first
                             self._check_snapshots(archive, index, archived_embeds, budget,
                                                   use_index=audit is None, phase="embeds"),
                             self._check_originals(client, index, originals, budget),
                             self._save_images(saver, index, image_keys, budget),
                             self._check_originals(client, index, live_links, budget,
                                                   phase="links"),
                             self._check_originals(client, index, live_embeds, budget,
                                                   phase="embeds"))
        if self.config.memento.timemaps and not budget.exhausted():
            checked = [*snapshots, *(url for key in image_keys
                                     for url in self._image_group(key))]
            await self._look_elsewhere(client, saver, checked, budget)

    def _note_client(self, client: HttpClient) -> None:
        """What the client knows at the end: requests, unreachable hosts, stopped classes."""
        self.summary.requests = client.requests_sent
        self.summary.unreachable = {o: e.first_error for o, e in client.down_hosts.items()}
        self.summary.stopped = {name: limiter.stopped_reason
                                for name, limiter in client.limiters.items()
                                if limiter.stopped_reason}

    def cdx_keys(self, snapshots, originals, archived_links):
        """The original URLs the CDX plan is made of (`preserver plan` makes the same).
        Excluded URLs are never asked about; embeds stay out: 12,249 of them under
        youtube.com/embed/ would earn a prefix query of all of YouTube's embeds (the index
        answers those that another query covers)."""
        kept = self._not_excluded
        return itertools.chain((_original(u) for u in kept(snapshots)), kept(originals),
                               (_original(u) for u in kept(archived_links)),
                               self._image_firsts())

    async def _look_elsewhere(self, client: HttpClient, saver: ImageSaver, checked: list[str],
                              budget: Budget) -> None:
        """Snapshots and images the archive lacks, asked of other archives' TimeMaps."""
        from .memento import OtherArchives

        db = self.ledger.db
        not_found = {row[0] for row in db.execute(
            "select url from urls where status = 'not_found'")}
        images = {row[0] for row in db.execute("select url from images")}
        lacking = [u for u in checked if u in not_found and parse_wayback_url(u)]
        others = OtherArchives(client, self.config.memento.timemaps)
        found_or_not: Counter = Counter()  # for the progress line; the ledger has the rows

        async def ask(url: str):
            wayback = parse_wayback_url(url)
            rows = await others.find(url, wayback.original, wayback.timestamp)
            found = next((r for r in rows if r["memento_url"]), None)
            outcome = None
            if found and url in images:
                outcome = await saver.save(url, elsewhere=found["memento_url"])
            return rows, outcome

        def record(done) -> None:
            rows, outcome = done
            self.ledger.record_alternates(rows)
            found_or_not["found" if any(r["memento_url"] for r in rows) else "not_found"] += 1
            if outcome is not None:
                self.ledger.record_image(outcome.row)
                self.summary.images[f"{outcome.row['status']} elsewhere"] += 1
            self.progress.advance("elsewhere")

        self.progress.start("elsewhere", len(lacking), self.config.live.per_host_per_second)
        await _pool(lacking, ask, record, budget)
        self.progress.finish("elsewhere", f"{len(lacking)} asked of other archives "
                                          f"({counts_text(found_or_not)})")

    async def save_pages(self, limit: int | None, budget: Budget | None = None) -> None:
        """Save Page Now for live originals the archive lacks (opt-in; see preserver.saves)."""
        from .archive import Archive
        from .client import HttpClient
        from .saves import PageSaver, candidates, keys_from_environment

        budget = budget or Budget()
        async with HttpClient(self.config) as client:
            budget.client = client
            archive = Archive(client, self.config.archive.base_url, self.config.archive.kind)
            saver = PageSaver(client, archive, self.config, keys_from_environment())
            urls = candidates(self.ledger.db, self.config.save.max_capture_age_days, limit)
            self.progress.start("saves", len(urls), self.config.archive.save_per_minute / 60)

            def record(row: dict) -> None:
                self.ledger.record_save(row)
                self.summary.saves[row["status"]] += 1
                self.progress.advance("saves")

            await _pool(urls, saver.save, record, budget, workers=2)
            self.summary.requests = client.requests_sent
        self.progress.finish("saves", f"{len(urls)} submitted ({counts_text(self.summary.saves)})")

    def _not_excluded(self, urls):
        return (url for url in urls if self.exclusions.match(url) is None) \
            if self.exclusions.patterns else urls

    def _due(self, role: str, wanted: bool = True) -> Worklist:
        """The corpus's URLs of this role that are due, stalest first (empty if not wanted)."""
        worklist = Worklist(self.ledger.db, role)
        if wanted:
            worklist.fill(due_sql(_CORPUS_URLS), {"role": role,
                                                  **due_params(self.config.schedule)})
        return worklist

    async def _check_snapshots(self, archive: Archive, index: CaptureIndex, urls,
                               budget: Budget, use_index: bool = True,
                               phase: str = "snapshots") -> None:
        """Snapshots (and archived body links and embeds): from the index where it covers
        them; excluded ones without a request."""
        if not urls and phase != "snapshots":
            return
        counter = getattr(self.summary, phase)
        self.progress.start(phase, len(urls), self.config.archive.replay_per_minute / 60)
        remote, batch, local = [], [], 0
        for url in itertools.chain(urls, [None]):  # None: the end, write the last batch
            wayback = parse_wayback_url(url)
            excluded = self.exclusions.result(url) if url is not None else None
            if excluded is not None:
                batch.append(excluded)
            elif wayback is not None and use_index and index.covers(wayback.original):
                batch.append(index.snapshot_result(url, wayback))
            elif url is not None:
                remote.append(url)
            if len(batch) >= BATCH or (url is None and batch):
                self.ledger.record_checks(batch)  # in batches: not 50,000 results in memory
                counter.update(r.status.value for r in batch)
                self.progress.advance(phase, len(batch))
                local, batch = local + len(batch), []
                await asyncio.sleep(0)  # let the downloads running alongside move on
        await _pool(remote, archive.check_snapshot,
                    self._recorder(counter, phase), budget)
        self.progress.finish(phase, f"{len(urls)} due, {local} answered from the CDX "
                                    f"index ({counts_text(counter)})")

    async def _check_originals(self, client: HttpClient, index: CaptureIndex, urls,
                               budget: Budget, phase: str = "originals") -> None:
        """Originals on the live web, with their archive coverage (live body links: without)."""
        if not urls and phase != "originals":
            return
        from .live import check_live

        counter = getattr(self.summary, phase)

        async def check(url: str) -> CheckResult:
            excluded = self.exclusions.result(url)
            if excluded is not None:
                return excluded
            result = await check_live(client, url)
            if phase != "originals":
                return result
            try:
                if not index.covers(url):
                    await index.fetch_exact(url)
                result.coverage = index.coverage(url)
            except RequestFailed as exc:
                result.error = "; ".join(filter(None, [result.error, f"CDX: {exc}"]))
            return result

        self.progress.start(phase, len(urls), self.config.live.per_host_per_second)
        await _pool(urls, check, self._recorder(counter, phase), budget)
        self.progress.finish(phase, f"{len(urls)} due ({counts_text(counter)})")

    def _image_work(self, saver: ImageSaver, image_urls: list[str] | None = None,
                    due_only: bool = True, fixity: bool = True) -> Worklist:
        """The images to fetch, as a worklist of canonical keys: one per image that is not
        saved yet (and is due), whatever spellings the corpus uses for it (`image_urls`, or
        every image of the corpus). `temp.image_urls` maps each key to its spellings. A saved
        image costs one stat; only unsaved URLs are canonicalised. A whole run first re-hashes
        its fixity sample (`fixity`; a plan does not)."""
        db = self.ledger.db
        if image_urls is None and fixity:
            self._check_fixity()
        with db.conn:
            db.execute("drop table if exists temp.image_urls")
            # urgent: corrupt, or its file was found damaged: fetched whatever the schedule
            db.execute("create temp table image_urls (url text primary key, saved int, "
                       "urlkey text, urgent int default 0)")
            if image_urls is None:
                db.execute("insert into temp.image_urls (url, saved, urgent) select c.url, "
                           f"i.status = 'saved', coalesce(i.status = '{ImageStatus.CORRUPT}' "
                           f"or i.damaged_at is not null, 0) from ({_CORPUS_URLS}) c "
                           "left join images i on i.url = c.url", {"role": "image"})
            else:
                db.conn.executemany("insert or ignore into temp.image_urls (url, saved) "
                                    "values (?, 0)", [(u,) for u in image_urls])
                db.execute("update temp.image_urls set saved = 1 where url in "
                           "(select url from images where status = 'saved')")
        self._unmark_broken(saver)
        self.summary.images["already_saved"] += db.execute(
            "select count(*) from temp.image_urls where saved").fetchone()[0]
        with db.conn:
            db.execute("delete from temp.image_urls where saved")
        self._canonicalise_image_urls()
        self._copy_other_spellings(saver)
        groups = "select min(url) as url, urlkey from temp.image_urls group by urlkey"
        if due_only:  # the urgent first (usually none), then those the schedule says are due
            worklist, urgent = Worklist(db, "images"), "select urlkey from temp.image_urls " \
                "where urgent"
            if db.execute(f"{urgent} limit 1").fetchone():
                worklist.fill(f"select urlkey from temp.image_urls where urlkey in ({urgent}) "
                              "group by urlkey order by min(url)")
                groups = groups.replace("group by", f"where urlkey not in ({urgent}) group by")
            return worklist.fill(due_sql(groups, "c.urlkey"), due_params(self.config.schedule))
        return Worklist(db, "images").fill(f"select urlkey from ({groups}) order by url")

    def _check_fixity(self) -> None:
        """Before the image work is drawn up: files shared by two images (an older version's
        paths), then a budgeted sample of files re-hashed (see preserver.fixity)."""
        from .fixity import release_shared_files, verify_sample

        media = self.config.media_path
        shared = release_shared_files(self.ledger, media)
        counts = verify_sample(self.ledger, media, self.config.media.fixity_bytes_per_run)
        self.summary.fixity.update({k: v for k, v in counts.items() if v})
        if shared:
            self.summary.fixity["shared"] = shared
        if counts["checked"]:
            log.info("fixity: re-hashed %d saved files (%.1f MB)", counts["checked"],
                     counts["bytes"] / 1e6)
        if counts["changed"] or counts["vanished"]:
            log.warning("fixity: %d saved files changed and %d vanished: fetching them again",
                        counts["changed"], counts["vanished"])

    def _unmark_broken(self, saver: ImageSaver) -> None:
        """Saved in the ledger but gone (or changed size) on disk: damaged, fetch again now."""
        rows = self.ledger.db.execute(
            "select i.url, i.local_path, i.bytes from images i join temp.image_urls w "
            "on w.url = i.url where w.saved")
        broken = [(url,) for url, path, size in rows if not saver.file_intact(path, size)]
        if broken:
            self.summary.fixity["gone_or_resized"] += len(broken)
        self.ledger.mark_damaged(broken, "the file vanished or changed size on disk: fetched "
                                         "again", regression=True)
        with self.ledger.db.conn:
            self.ledger.db.conn.executemany(
                "update temp.image_urls set saved = 0, urgent = 1 where url = ?", broken)

    def _canonicalise_image_urls(self) -> None:
        db, last = self.ledger.db, 0
        while rows := db.execute("select rowid, url from temp.image_urls where rowid > ? "
                                 "order by rowid limit ?", [last, BATCH]).fetchall():
            with db.conn:
                db.conn.executemany("update temp.image_urls set urlkey = ? where rowid = ?",
                                    [(canonical_key(_original(u)), r) for r, u in rows])
            last = rows[-1][0]
        with db.conn:
            db.execute("create index temp.image_urls_urlkey on image_urls (urlkey)")

    def _copy_other_spellings(self, saver: ImageSaver) -> None:
        """URLs naming an image already saved under another spelling: no download."""
        db = self.ledger.db
        keys = [key for (key,) in db.execute(
            "select distinct w.urlkey from temp.image_urls w where exists (select 1 from images "
            "i where i.urlkey = w.urlkey and i.status = 'saved')")]
        for key in keys:
            saved_row = self._saved_image(saver, key)
            if saved_row is None:
                continue
            urls = self._image_group(key)
            self.summary.images["already_saved"] += len(urls)
            self.ledger.record_images([{**saved_row, "url": url, "original_url": _original(url)}
                                       for url in urls])
            with db.conn:
                db.execute("delete from temp.image_urls where urlkey = ?", [key])

    def _image_group(self, urlkey: str) -> list[str]:
        """Every spelling of one image in this run's work."""
        return [url for (url,) in self.ledger.db.execute(
            "select url from temp.image_urls where urlkey = ? order by url", [urlkey])]

    def _image_firsts(self):
        """The first spelling of each image to fetch (for the CDX plan)."""
        rows = self.ledger.db.execute(
            "select min(url) from temp.image_urls where urlkey in "
            "(select item from temp.worklist_images) group by urlkey")
        return (_original(url) for (url,) in rows)

    def _saved_image(self, saver: ImageSaver, urlkey: str) -> dict | None:
        """A saved, intact image with this canonical key (another spelling of it)."""
        for row in self.ledger.db.query(
                "select * from images where urlkey = ? and status = 'saved'", [urlkey]):
            if saver.file_intact(row["local_path"], row["bytes"]):
                return row
        return None

    async def _save_images(self, saver: ImageSaver, index: CaptureIndex,
                           image_keys: Worklist, budget: Budget) -> None:
        from .fixity import free_path

        async def save(urlkey: str):
            urls = self._image_group(urlkey)
            excluded = next(filter(None, map(self.exclusions.result, urls)), None)
            if excluded is not None:  # not fetched under any of its spellings
                return urlkey, urls, excluded
            wayback = parse_wayback_url(urls[0])  # every spelling has this canonical key
            free_path(self.ledger, self.config.media_path, urlkey, _original(urls[0]))
            if wayback is None or not index.covers(wayback.original, urlkey):
                return urlkey, urls, await saver.save(urls[0])
            capture = index.nearest(wayback.original, wayback.timestamp, urlkey)
            if capture is None:
                return urlkey, urls, saver.missing(urls[0])
            outcome = await saver.save(urls[0], capture)
            if outcome.row["status"] == ImageStatus.CORRUPT:  # bytes not as indexed
                others = _next_nearest(index.captures_of(wayback.original, urlkey),
                                       wayback.timestamp, capture)
                outcome = await saver.save_intact(urls[0], outcome, others)
            return urlkey, urls, outcome

        def record(done) -> None:
            urlkey, urls, outcome = done
            if isinstance(outcome, CheckResult):  # excluded: its URLs say so; no image row
                self.ledger.record_checks([replace(outcome, url=url) for url in urls])
                self.summary.images[outcome.status.value] += len(urls)
                self.progress.advance("images")
                return
            if outcome.check.not_sent:  # the class stopped: the image stays due
                self.summary.left_due["images"] += 1
                return
            # one download serves every URL of the same image
            self.ledger.record_images(
                [{**outcome.row, "url": url, "original_url": _original(url),
                  "urlkey": urlkey} for url in urls],
                checks=[replace(outcome.check, url=url) for url in urls])
            self.summary.images[outcome.row["status"]] += len(urls)
            self.progress.advance("images")

        self.progress.start("images", len(image_keys),
                            self.config.archive.replay_per_minute / 60)
        await _pool(image_keys, save, record, budget)
        self.progress.finish("images", f"{len(image_keys)} to fetch "
                                       f"({counts_text(self.summary.images)})")

    def _recorder(self, counter: Counter, phase: str):
        def record(result: CheckResult) -> None:
            if result.not_sent:  # the class stopped: nothing asked, the URL stays due
                self.summary.left_due[phase] += 1
                return
            self.ledger.record_check(result)
            counter[result.status.value] += 1
            self.progress.advance(phase)
        return record


async def _pool(items, work, record, budget: Budget | None = None,
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


@dataclass
class Targets:
    """What an audit checks: URLs named on the command line or found in named articles."""

    snapshots: list[str] = field(default_factory=list)
    originals: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    embeds: list[str] = field(default_factory=list)
    articles: list[str] = field(default_factory=list)  # ledger paths of the named articles


def _next_nearest(captures: list, timestamp: str, tried) -> list:
    """The other captures of an image worth fetching (not error pages, not redirects, not
    `tried`), nearest in time to `timestamp` first."""
    return sorted((c for c in captures if c.timestamp != tried.timestamp and not c.is_error
                   and not c.is_redirect), key=lambda c: time_distance(c.timestamp, timestamp))


def split_links(body_links: list[str]) -> tuple[list[str], list[str]]:
    """(archived body links, live http(s) body links); other schemes are neither."""
    archived = [u for u in body_links if parse_wayback_url(u)]
    live = [u for u in body_links if not parse_wayback_url(u) and is_http_url(u)]
    return archived, live


def _original(url: str) -> str:
    wayback = parse_wayback_url(url)
    return wayback.original if wayback else url


