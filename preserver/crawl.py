"""The run: scan the corpus, check every snapshot and original, save every image.

Each phase reads its work from the ledger (so `preserver check` can follow a `scan` made
earlier) and writes each result as soon as it has it (so a killed run keeps what it did).
Concurrency is a pool of workers; the real pacing is done by the limiters in `client`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from .archive import Archive
from .articles import read_article
from .captures import CaptureIndex
from .client import HttpClient
from .config import Config
from .errors import RequestFailed
from .images import ImageSaver
from .ledger import Ledger, LedgerLock, open_ledger
from .live import check_live
from .memento import OtherArchives
from .progress import LineProgress
from .saves import PageSaver, candidates, keys_from_environment
from .schedule import Budget, due_urls
from .status import CheckResult, ParseStatus, RunStatus
from .storage import clean_partial_files
from .urls import canonical_key, is_http_url, parse_wayback_url

log = logging.getLogger("preserver")
WORKERS = 16
SCAN_BATCH = 2000  # articles written per transaction
PARALLEL_SCAN_FILES = 2000  # below this, worker processes cost more than they save
SCAN_CHUNK = 250
SCAN_CHUNKS_AHEAD = 8


@dataclass
class RunSummary:
    articles: Counter = field(default_factory=Counter)  # parse_status -> n
    snapshots: Counter = field(default_factory=Counter)  # url status -> n
    originals: Counter = field(default_factory=Counter)
    images: Counter = field(default_factory=Counter)  # image status -> n
    saves: Counter = field(default_factory=Counter)  # save status -> n
    links: Counter = field(default_factory=Counter)  # body link status -> n
    elsewhere: Counter = field(default_factory=Counter)  # found / not_found in other archives
    requests: int = 0
    regressions: int = 0
    unreachable: dict = field(default_factory=dict)  # host -> reason
    budget_spent: bool = False

    def as_dict(self) -> dict:
        return {
            "articles": sum(self.articles.values()), "parse": dict(self.articles),
            "snapshots": dict(self.snapshots), "originals": dict(self.originals),
            "images": dict(self.images), "images_saved": self.images.get("saved", 0),
            "saves": dict(self.saves), "links": dict(self.links),
            "requests": self.requests, "regressions": self.regressions,
            "unreachable_hosts": self.unreachable, "budget_spent": self.budget_spent,
        }


class Crawler:
    def __init__(self, config: Config, ledger: Ledger, progress: LineProgress | None = None):
        self.config = config
        self.ledger = ledger
        self.summary = RunSummary()
        self.progress = progress or LineProgress()

    # -- scan ---------------------------------------------------------------------------
    def scan(self) -> None:
        """Read every new or changed *.md under the corpus folder into the ledger.

        A file whose size and mtime match the ledger is not read again; articles whose file
        is gone are marked removed (their history stays)."""
        root = self.config.corpus_path
        if not root.is_dir():
            raise FileNotFoundError(f"corpus folder not found: {root}")
        known = self.ledger.file_states()
        in_ledger = {row[0] for row in self.ledger.db.execute("select path from articles")}
        changed = []
        for file in iter_articles(root):
            if _unchanged(file, known.pop(file.relative_to(root).as_posix(), None)):
                self.summary.articles["unchanged"] += 1
            else:
                changed.append(file)
        self.progress.start("scan", len(changed))
        with self.ledger.bulk_load(len(changed)):
            self._read_into_ledger(root, changed, in_ledger)
        if known:
            self.ledger.mark_removed(sorted(known))
            self.summary.articles["removed"] = len(known)
        self.progress.finish("scan", f"{sum(self.summary.articles.values())} articles "
                                     f"({_counts(self.summary.articles)})")

    def _read_into_ledger(self, root: Path, files: list[Path], in_ledger: set[str]) -> None:
        batch: list = []
        for article in read_articles(root, files, self.config.security.max_article_bytes):
            batch.append(article)
            self.summary.articles[article.parse_status.value] += 1
            if article.parse_status == ParseStatus.ERROR:
                log.warning("%s: %s", article.path, article.parse_error)
            if len(batch) >= SCAN_BATCH:
                self.ledger.record_articles(batch, in_ledger)
                self.progress.advance("scan", len(batch))
                batch = []
        self.ledger.record_articles(batch, in_ledger)

    # -- network phases -----------------------------------------------------------------
    async def check_and_save(self, check: bool = True, images: bool = True,
                             budget: Budget | None = None, audit: Targets | None = None,
                             links: bool = False) -> None:
        """Check what is due and save what is missing, asking the archive as little as it can:
        one bulk CDX pass first, then only what the index cannot answer. An audit names its
        URLs instead, checks them now whatever the schedule says, and asks the replay itself
        about each snapshot rather than the cached index."""
        budget = budget or Budget()
        async with HttpClient(self.config) as client:
            budget.client = client
            archive = Archive(client, self.config.archive.base_url, self.config.archive.kind)
            index = CaptureIndex(self.ledger.db, archive, self.config)
            saver = ImageSaver(client, archive, self.config.media_path,
                               self.config.security.max_image_bytes)
            if audit is None:
                snapshots = self._due("snapshot") if check else []
                originals = self._due("original") if check else []
                body_links = self._due("link") if check and links else []
                groups = self._image_groups_to_fetch(saver) if images else []
            else:
                snapshots, originals, body_links = audit.snapshots, audit.originals, []
                groups = self._image_groups_to_fetch(saver, audit.images, due_only=False)
            archived_links = [u for u in body_links if parse_wayback_url(u)]
            live_links = [u for u in body_links if not parse_wayback_url(u) and is_http_url(u)]
            keys = itertools.chain((_original(u) for u in snapshots + archived_links), originals,
                                   (_original(urls[0]) for urls in groups))
            await index.refresh(index.plan(keys)[0], budget)
            await self._check_snapshots(archive, index, snapshots, budget,
                                        use_index=audit is None)
            await self._check_snapshots(archive, index, archived_links, budget, phase="links")
            # the whole corpus's worth of URLs: kept only if other archives are to be asked
            lookups = snapshots if self.config.memento.timemaps else []
            del snapshots, archived_links
            # live pages and archived images pace on different limiters: run side by side,
            # so a slow live host does not hold up the archive (or the other way round)
            await asyncio.gather(self._check_originals(client, index, originals, budget),
                                 self._save_images(saver, index, groups, budget),
                                 self._check_originals(client, index, live_links, budget,
                                                       phase="links"))
            if self.config.memento.timemaps and not budget.exhausted():
                await self._look_elsewhere(client, saver, lookups + list(_flatten(groups)),
                                           budget)
            self.summary.requests = client.requests_sent
            self.summary.unreachable = {o: e.first_error for o, e in client.down_hosts.items()}
        self.summary.regressions = self.ledger.regressions
        self.summary.budget_spent = budget.exhausted()

    async def _look_elsewhere(self, client: HttpClient, saver: ImageSaver, checked: list[str],
                              budget: Budget) -> None:
        """Snapshots and images the archive lacks, asked of other archives' TimeMaps."""
        db = self.ledger.db
        not_found = {row[0] for row in db.execute(
            "select url from urls where status = 'not_found'")}
        images = {row[0] for row in db.execute("select url from images")}
        lacking = [u for u in checked if u in not_found and parse_wayback_url(u)]
        others = OtherArchives(client, self.config.memento.timemaps)

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
            self.summary.elsewhere[
                "found" if any(r["memento_url"] for r in rows) else "not_found"] += 1
            if outcome is not None:
                self.ledger.record_image(outcome.row)
                self.summary.images[f"{outcome.row['status']} elsewhere"] += 1
            self.progress.advance("elsewhere")

        self.progress.start("elsewhere", len(lacking), self.config.live.per_host_per_second)
        await _pool(lacking, ask, record, budget)
        self.progress.finish("elsewhere", f"{len(lacking)} asked of other archives "
                                          f"({_counts(self.summary.elsewhere)})")

    async def save_pages(self, limit: int | None, budget: Budget | None = None) -> None:
        """Save Page Now for live originals the archive lacks (opt-in; see preserver.saves)."""
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
        self.progress.finish("saves", f"{len(urls)} submitted ({_counts(self.summary.saves)})")

    def _due(self, role: str) -> list[str]:
        return due_urls(self.ledger.db, self._urls(role), self.config.schedule)

    async def _check_snapshots(self, archive: Archive, index: CaptureIndex, urls: list[str],
                               budget: Budget, use_index: bool = True,
                               phase: str = "snapshots") -> None:
        """Snapshots (and archived body links): from the index where it covers them."""
        if not urls and phase != "snapshots":
            return
        counter = self.summary.snapshots if phase == "snapshots" else self.summary.links
        remote, local = [], []
        for url in urls:
            wayback = parse_wayback_url(url)
            if use_index and index.covers(wayback.original):
                local.append(index.snapshot_result(url, wayback))
            else:
                remote.append(url)
        self.progress.start(phase, len(urls), self.config.archive.replay_per_minute / 60)
        for start in range(0, len(local), SCAN_BATCH):
            self.ledger.record_checks(local[start : start + SCAN_BATCH])
            self.progress.advance(phase, len(local[start : start + SCAN_BATCH]))
        counter.update(r.status.value for r in local)
        await _pool(remote, archive.check_snapshot,
                    self._recorder(counter, phase), budget)
        self.progress.finish(phase, f"{len(urls)} due, {len(local)} answered from the CDX "
                                    f"index ({_counts(counter)})")

    async def _check_originals(self, client: HttpClient, index: CaptureIndex, urls: list[str],
                               budget: Budget, phase: str = "originals") -> None:
        """Originals on the live web, with their archive coverage (live body links: without)."""
        if not urls and phase != "originals":
            return
        counter = self.summary.originals if phase == "originals" else self.summary.links

        async def check(url: str) -> CheckResult:
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
        self.progress.finish(phase, f"{len(urls)} due ({_counts(counter)})")

    def _image_groups_to_fetch(self, saver: ImageSaver, image_urls: list[str] | None = None,
                               due_only: bool = True) -> list[list[str]]:
        """Groups of image URLs naming one image that is not saved yet (and is due): those of
        `image_urls`, or of the whole corpus. A saved image costs one stat and no memory (the
        corpus's 133k image URLs stay in the ledger); only unsaved URLs are canonicalised."""
        db = self.ledger.db
        broken = {url for url, path, size in db.execute(
            "select url, local_path, bytes from images where status = 'saved'")
            if not saver.file_intact(path, size)}
        if image_urls is None:
            total, unsaved = self._unsaved_images(broken)
        else:
            wanted = set(image_urls)
            saved = {url for (url,) in db.execute(
                "select url from images where status = 'saved'") if url in wanted} - broken
            total, unsaved = len(image_urls), [u for u in image_urls if u not in saved]
        self.summary.images["already_saved"] += total - len(unsaved)
        any_saved = db.execute("select 1 from images where status = 'saved' limit 1").fetchone()
        pending = []
        for key, urls in same_image_groups(unsaved).items():
            saved_row = self._saved_image(saver, key) if any_saved else None
            if saved_row is None:
                pending.append(urls)
                continue
            self.summary.images["already_saved"] += len(urls)
            for url in urls:  # another spelling of a saved image
                self.ledger.record_image({**saved_row, "url": url, "original_url": _original(url)})
        if not due_only:
            return pending
        due = set(due_urls(db, [urls[0] for urls in pending], self.config.schedule))
        return [urls for urls in pending if urls[0] in due]

    def _unsaved_images(self, broken: set[str]) -> tuple[int, list[str]]:
        """(how many image URLs the corpus has, those not saved or saved but broken)."""
        rows = self.ledger.db.execute(
            "select l.url, i.status = 'saved' from (select distinct l.url from links l "
            "join articles a on a.path = l.article_path where l.role = 'image' "
            "and a.parse_status != 'error' and a.removed_at is null) l "
            "left join images i on i.url = l.url order by l.url")
        total, unsaved = 0, []
        for url, saved in rows:
            total += 1
            if not saved or url in broken:
                unsaved.append(url)
        return total, unsaved

    def _saved_image(self, saver: ImageSaver, urlkey: str) -> dict | None:
        """A saved, intact image with this canonical key (another spelling of it)."""
        for row in self.ledger.db.query(
                "select * from images where urlkey = ? and status = 'saved'", [urlkey]):
            if saver.file_intact(row["local_path"], row["bytes"]):
                return row
        return None

    async def _save_images(self, saver: ImageSaver, index: CaptureIndex,
                           groups: list[list[str]], budget: Budget) -> None:
        async def save(urls: list[str]):
            wayback = parse_wayback_url(urls[0])
            if wayback is None or not index.covers(wayback.original):
                return urls, await saver.save(urls[0])
            capture = index.nearest(wayback.original, wayback.timestamp)
            if capture is None:
                return urls, saver.missing(urls[0])
            return urls, await saver.save(urls[0], capture)

        def record(done) -> None:
            urls, outcome = done
            # one download serves every URL of the same image
            self.ledger.record_images(
                [{**outcome.row, "url": url, "original_url": _original(url),
                  "urlkey": canonical_key(_original(url))} for url in urls],
                checks=[replace(outcome.check, url=url) for url in urls])
            self.summary.images[outcome.row["status"]] += len(urls)
            self.progress.advance("images")

        self.progress.start("images", len(groups), self.config.archive.replay_per_minute / 60)
        await _pool(groups, save, record, budget)
        self.progress.finish("images", f"{len(groups)} to fetch ({_counts(self.summary.images)})")

    def _recorder(self, counter: Counter, phase: str):
        def record(result: CheckResult) -> None:
            self.ledger.record_check(result)
            counter[result.status.value] += 1
            self.progress.advance(phase)
        return record

    def _urls(self, role: str) -> list[str]:
        rows = self.ledger.db.execute(
            "select distinct l.url from links l join articles a on a.path = l.article_path "
            "where l.role = ? and a.parse_status != 'error' and a.removed_at is null "
            "order by l.url", [role])
        return [row[0] for row in rows]


async def _pool(items, work, record, budget: Budget | None = None,
                workers: int = WORKERS) -> None:
    """Run `work` on every item with a bounded number of workers; `record` each result.
    When the budget is spent no new item starts; those in flight finish and are recorded."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while budget is None or not budget.exhausted():
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            record(await work(item))

    await asyncio.gather(*(worker() for _ in range(min(workers, len(items)) or 1)))


@dataclass
class Targets:
    """What an audit checks: URLs named on the command line or found in named articles."""

    snapshots: list[str] = field(default_factory=list)
    originals: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    articles: list[str] = field(default_factory=list)  # ledger paths of the named articles


@dataclass
class RunOutcome:
    status: RunStatus
    summary: dict
    error: str | None = None
    verdicts: list[dict] = field(default_factory=list)  # audits: one row per thing checked


def run_locked(config: Config, command: str, budget: Budget | None = None, *, scan: bool = True,
               check: bool = True, images: bool = True, progress: LineProgress | None = None,
               audit=None, save_limit: int | None = None, save: bool = False,
               links: bool = False) -> RunOutcome:
    """One run, holding the ledger's lock: recorded in `runs` from start to finish, whatever
    happens. SIGTERM and SIGINT stop it within moments: what is done stays committed and the
    run is marked `interrupted`. Raises LedgerLockedError (writing nothing) if another run
    holds the ledger."""
    with LedgerLock(config.ledger_path), _signals_interrupt():
        ledger = Ledger(open_ledger(config.ledger_path), config.schedule)
        ledger.start_run(command, str(config.corpus_path))
        crawler = Crawler(config, ledger, progress)
        status, error, verdicts = RunStatus.COMPLETED, None, []
        try:
            removed = clean_partial_files(config.media_path)
            if removed:
                log.info("removed %d partial files left by an interrupted run", removed)
            if audit is not None:  # an AuditPlan (preserver.audit)
                targets = audit.read_targets(config, ledger)
                _run_async(crawler.check_and_save(budget=budget, audit=targets))
                verdicts = audit.verdicts(ledger, targets)
            if scan:
                crawler.scan()
            if check or images:
                _run_async(crawler.check_and_save(check=check, images=images, budget=budget,
                                                  links=links))
            if save:
                _run_async(crawler.save_pages(save_limit, budget))
        except (KeyboardInterrupt, asyncio.CancelledError):
            status, error = RunStatus.INTERRUPTED, "interrupted by a signal"
        except Exception as exc:  # recorded in the ledger, then reported; never silent
            status, error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
            log.exception("run failed")
        finally:
            crawler.progress.close()
        summary = crawler.summary.as_dict()
        ledger.finish_run(status, summary, error)
    return RunOutcome(status, summary, error, verdicts)


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


def _flatten(groups: list[list[str]]):
    return (url for urls in groups for url in urls)


def _original(url: str) -> str:
    wayback = parse_wayback_url(url)
    return wayback.original if wayback else url


def same_image_groups(urls: list[str]) -> dict[str, list[str]]:
    """Image URLs grouped by the image they name: the same original at several capture
    timestamps, or under `www.` and without, is one image, fetched once."""
    groups: dict[str, list[str]] = {}
    for url in urls:
        wayback = parse_wayback_url(url)
        groups.setdefault(canonical_key(wayback.original if wayback else url), []).append(url)
    return groups


def read_articles(root: Path, files: list[Path], max_bytes: int):
    """Read files in order; a large scan parses in worker processes while we write."""
    if len(files) < PARALLEL_SCAN_FILES:
        yield from (read_article(root, file, max_bytes) for file in files)
        return
    chunks = [files[i : i + SCAN_CHUNK] for i in range(0, len(files), SCAN_CHUNK)]
    context = multiprocessing.get_context("fork")  # no threads exist yet; cheapest start
    pool = ProcessPoolExecutor(os.cpu_count() or 2, mp_context=context,
                               initializer=_worker_setup)
    finished = False
    pending: collections.deque = collections.deque()
    try:
        for chunk in chunks:  # a few chunks ahead of the writer, not the whole corpus in memory
            pending.append(pool.submit(_read_chunk, (root, chunk, max_bytes)))
            if len(pending) > SCAN_CHUNKS_AHEAD:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
        finished = True
    finally:  # interrupted: drop the chunks not started, do not wait for the others
        pool.shutdown(wait=finished, cancel_futures=True)


def _worker_setup() -> None:
    """Ctrl-C is the parent's to handle (a worker dying of it breaks the pool mid-shutdown),
    and a parse worker must not outlive a killed run (Linux: PR_SET_PDEATHSIG)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the worker ends when its task queue closes


def _read_chunk(job) -> list:
    root, files, max_bytes = job
    return [read_article(root, file, max_bytes) for file in files]


def iter_articles(root: Path):
    """Every *.md file under root, in a stable order, without following directory symlinks."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".md") and not name.startswith("."):
                yield Path(folder) / name


def _unchanged(file: Path, known: tuple[int, int] | None) -> bool:
    if known is None:
        return False
    try:
        stat = file.stat()
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns) == known


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"

