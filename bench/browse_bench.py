"""Browse a ledger the size of the real corpus: its size, and each Datasette page's load time.

    python bench/browse_bench.py [--articles 49158] [--repeat 5] [--writer-pace 9]
                                 [--label before] [--out BENCHMARKS.md] [--keep]

The ledger is the one issue 15's budgeted first run left (49,158 articles, stopped by a signal
after 140,743 URLs checked: every snapshot from the CDX index, then images; the dead site's host
given up). It is not made by a real `preserver run` against bench/world.py's archive: at this
size that takes about half an hour of this machine's two cores, too long to repeat before and
after each change to the ledger. Instead the parts of such a run are played through
preserver's own code and write API, so the rows are those a run writes, in whatever shape the
ledger stores them (no raw SQL writes anything): `preserver scan` of a generated corpus
(bench/corpus.py); bench/world.py's archive contents (the captures, gaps and nearest captures
the run would meet) fed page by page to `CaptureIndex.refresh`, which stores `captures` and
`cdx_queries`; every snapshot answered by `CaptureIndex.snapshot_result`, every embed checked,
both written with `Ledger.record_checks` in batches; then images, key by key in the corpus's
order, until the run's 140,743 URLs (scaled to --articles) are reached: saved (from the
nearest capture when the exact one is missing), `missing` where the index has none
(`ImageSaver.missing`), a few invalid and failed (list_bench.MIX), written with
`Ledger.record_images` with their checks. The run is recorded as interrupted.

Then a real `preserver serve` (its own settings, read from /-/settings.json and printed) is
timed page by page with full HTML GETs: the index, the database page, every table and view the
shipped metadata.yaml describes, `article_health?verdict=images missing`, every canned query
with a realistic parameter, and /chart. A facet timed out when the page says so or when its
`.json` form lacks it; an HTTP 400 "took too long" is the SQL time limit. The same pages are
timed again while another process writes the ledger as a run's image phase does: holding the
ledger's lock, one `Ledger.record_images` transaction per image (its checks included) at
archive.org's replay pace (preserver's default 540 a minute), for the images the first run did
not reach. (A real `preserver run` is not the writer for the same reason as above; its image
phase is where a cron run spends its time.) `preserver report` and `preserver list` (text and
JSON) are timed on the idle ledger. The section goes into --out between markers (replaced when
present, else appended); bench/run.py keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/browse_bench.py` puts bench/, not the repo, first
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import yaml  # noqa: E402

from bench import corpus, list_bench, world  # noqa: E402
from bench.run import BIN, child_env, git_head, machine, measure, scrub  # noqa: E402
from preserver.archive import Archive, CdxRow  # noqa: E402
from preserver.captures import CaptureIndex  # noqa: E402
from preserver.config import ArchiveConfig, load_config  # noqa: E402
from preserver.images import ImageSaver, sniff_image_type  # noqa: E402
from preserver.ledger import ARTICLE_COLUMNS, Ledger, LedgerLock, now, open_ledger  # noqa: E402
from preserver.scan import corpus_files, read_articles  # noqa: E402
from preserver.serve import METADATA, PLACEHOLDER, database_name  # noqa: E402
from preserver.status import CheckResult, ImageStatus, RunStatus, UrlStatus  # noqa: E402
from preserver.storage import media_relpath  # noqa: E402
from preserver.urls import canonical_key, parse_wayback_url  # noqa: E402
from tests.servers import WaybackArchive  # noqa: E402
from tests.servers.cdx import FIELDS  # noqa: E402

BEGIN, END = "<!-- browse-bench: begin -->", "<!-- browse-bench: end -->"
TITLE = "## Browsing the ledger (`bench/browse_bench.py`)"
# issue 15's stopped first run: 49,158 articles, 140,743 URLs checked (every snapshot from the
# CDX index, then about 94,668 image requests; the dead site's host given up early)
ISSUE_ARTICLES, ISSUE_URLS_CHECKED = 49_158, 140_743
BATCH = 2000  # results a run writes per transaction (crawl's batches)
IMAGE_BATCH = 200  # images per transaction while building (a run writes one; same rows)
ARCHIVE = "https://web.archive.org"
EXTRA_PAGES = [("article_health", {"verdict": "images missing"})]  # issue 15's second row
CATEGORY, DATE = ARTICLE_COLUMNS.index("category"), ARTICLE_COLUMNS.index("date")
LISTINGS = [("preserver report", ["report"]), ("preserver list", ["list"]),
            ("preserver list --format json", ["list", "--format", "json"])]


# -- the ledger a budgeted first run leaves -----------------------------------------------

class IndexFeed:
    """The CDX side of `preserver.archive.Archive`, answered from the world's captures
    without HTTP: pages of CdxRows for a prefix or exact query, in the index's order."""

    def __init__(self, archive: WaybackArchive):
        captures = sorted(archive.captures(), key=lambda c: c.sort_key)
        self.rows = [CdxRow(*(FIELDS[name](c) for name in CdxRow._fields)) for c in captures]
        self.keys = [row.urlkey for row in self.rows]

    def select(self, url: str, match_type: str) -> list[CdxRow]:
        key = canonical_key(url if "://" in url else f"http://{url}")
        start = bisect.bisect_left(self.keys, key)
        end = start
        while end < len(self.keys) and (self.keys[end].startswith(key) if match_type == "prefix"
                                        else self.keys[end] == key):
            end += 1
        return self.rows[start:end]

    async def cdx_pages(self, url: str, match_type: str, *, page_size: int,
                        resume_key: str | None = None, from_ts: str | None = None):
        rows = self.select(url, match_type)
        start = int(resume_key or 0)
        for at in range(start, max(len(rows), 1), page_size):
            more = at + page_size < len(rows)
            yield rows[at:at + page_size], str(at + page_size) if more else None


@dataclass
class Corpus:
    """The generated corpus as the scan read it: each role's distinct URLs, first seen first."""

    roles: dict[str, list[str]] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)  # article path -> category
    dates: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path, max_bytes: int) -> Corpus:
        found: dict[str, dict[str, None]] = {}
        read = cls()
        files = [path for path, _ in corpus_files(root)]
        for article in read_articles(root, files, max_bytes):
            read.categories[article.path] = article.values[CATEGORY] or ""
            read.dates[article.path] = article.values[DATE] or ""
            for _, url, role, _ in article.links:
                found.setdefault(role, {})[url] = None
        read.roles = {role: list(urls) for role, urls in found.items()}
        return read

    def image_groups(self) -> list[tuple[str, list[str]]]:
        """(canonical key, its spellings) of every image, as a run fetches them: one each."""
        groups: dict[str, list[str]] = {}
        for url in self.roles.get("image", []):
            wayback = parse_wayback_url(url)
            groups.setdefault(canonical_key(wayback.original if wayback else url), []).append(url)
        return list(groups.items())


def original_of(url: str) -> str:
    wayback = parse_wayback_url(url)
    return wayback.original if wayback else url


def image_outcome(index: CaptureIndex, urls: list[str]) -> tuple[dict, CheckResult]:
    """The image row and check a run's fetch of this image would write (no file is kept:
    the readers never open one)."""
    url, saver = urls[0], ImageSaver(None, None, Path("media"), 0)
    wayback = parse_wayback_url(url)
    capture = index.nearest(wayback.original, wayback.timestamp) if wayback else None
    if capture is None:
        outcome = saver.missing(url)
        return outcome.row, outcome.check
    pick = list_bench.status_for(url, "image")
    row = {**ImageSaver._blank(url), "capture_timestamp": capture.timestamp,
           "source_url": Archive(None, ARCHIVE).capture_url(capture.timestamp, capture.original)}
    check = CheckResult(url, UrlStatus.OK, 200, capture_timestamp=capture.timestamp, attempts=1,
                        elapsed_ms=300 + len(url) % 700, method="replay")
    if capture.timestamp != wayback.timestamp:
        check.status, check.final_url = UrlStatus.REDIRECTED, \
            Archive(None, ARCHIVE).capture_url(capture.timestamp, capture.original)
    if pick == "failed":  # the archive's 503: no verdict
        check = replace(check, status=UrlStatus.SERVER_ERROR, http_status=503,
                        inconclusive=True, error="HTTP 503")
        return {**row, "status": ImageStatus.FAILED, "error": "HTTP 503"}, check
    if pick == "invalid":
        error = "not an image: served as text/html, starts with b'<!DOCTYPE html>'"
        check.error = error
        return {**row, "status": ImageStatus.INVALID, "content_type": "text/html",
                "error": error}, check
    body, _ = world.image_body(capture.original)
    kind = sniff_image_type(body)
    stamp = now()
    return {**row, "status": ImageStatus.SAVED, "local_path": media_relpath(wayback.original, kind),
            "content_type": kind, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body),
            "saved_at": stamp, "verified_at": stamp, "digest_ok": 1}, check


def record_image_groups(ledger: Ledger, index: CaptureIndex,
                        groups: list[tuple[str, list[str]]]) -> Counter:
    rows, checks, counts = [], [], Counter()
    for key, urls in groups:
        row, check = image_outcome(index, urls)
        rows += [{**row, "url": u, "original_url": original_of(u), "urlkey": key} for u in urls]
        checks += [replace(check, url=u) for u in urls]
        counts[str(row["status"])] += len(urls)
    ledger.record_images(rows, checks=checks)
    return counts


def live_result(url: str, role: str) -> CheckResult:
    """A live check (an embed off the archive): list_bench.MIX's pick for the role."""
    status = UrlStatus(list_bench.status_for(url, role))
    http = {UrlStatus.OK: 200, UrlStatus.NOT_FOUND: 404, UrlStatus.SOFT_404: 200}.get(status)
    return CheckResult(url, status, http, attempts=1, elapsed_ms=40 + len(url) % 200,
                       method="live", error=None if status.is_good else f"{status} (bench)")


def in_batches(ledger: Ledger, results) -> None:
    batch = []
    for result in results:
        batch.append(result)
        if len(batch) >= BATCH:
            ledger.record_checks(batch)
            batch = []
    ledger.record_checks(batch)


def images_reached(read: Corpus, urls_checked: int) -> int:
    """How many image keys (in a run's order) the first run fetched: the URLs it checked
    beyond every snapshot and embed are images."""
    room = urls_checked - len(read.roles.get("snapshot", [])) - len(read.roles.get("embed", []))
    reached = 0
    for _, urls in read.image_groups():
        room -= len(urls)
        if room < 0:
            break
        reached += 1
    return reached


def first_run(config_path: Path, read: Corpus, archive: WaybackArchive,
              image_keys: int) -> dict:
    """Play a budgeted first run through preserver's write API; returns what it wrote."""
    config = load_config(config_path)
    db = open_ledger(config.ledger_path)
    groups = read.image_groups()[:image_keys]
    with LedgerLock(config.ledger_path):
        ledger = Ledger(db, config.schedule)
        ledger.start_run("run", str(config.corpus_path))
        index = CaptureIndex(db, IndexFeed(archive), config)
        keys = [*map(original_of, read.roles.get("snapshot", [])),
                *read.roles.get("original", []),
                *(original_of(urls[0]) for _, urls in groups)]
        queries, sparse = index.plan(keys)

        async def fetch() -> None:
            await index.refresh(queries)
            for url in sparse:
                await index.fetch_exact(url)

        asyncio.run(fetch())
        in_batches(ledger, (index.snapshot_result(url, parse_wayback_url(url))
                            for url in read.roles.get("snapshot", [])
                            if parse_wayback_url(url)))
        in_batches(ledger, (index.snapshot_result(url, parse_wayback_url(url))
                            if parse_wayback_url(url) else live_result(url, "embed")
                            for url in read.roles.get("embed", [])))
        images = Counter()
        for at in range(0, len(groups), IMAGE_BATCH):
            images += record_image_groups(ledger, index, groups[at:at + IMAGE_BATCH])
        requests = images["saved"] + images["invalid"] + images["failed"]
        ledger.finish_run(RunStatus.INTERRUPTED, {
            "articles": len(read.categories), "images_saved": images.get("saved", 0),
            "requests": requests}, error="stopped by a signal (SIGTERM)")
    db.execute("pragma wal_checkpoint(truncate)")
    db.close()
    return {"image keys": len(groups), "queries": len(queries), "sparse": len(sparse),
            **{f"image {k}": v for k, v in images.items()}}


# -- the concurrent writer ----------------------------------------------------------------

def writer(config_path: Path, work: Path, pace: float) -> int:
    """A run's image phase: one `record_images` transaction per image at `pace` a second,
    holding the ledger's lock, until SIGTERM; prints what it wrote as JSON."""
    config = load_config(config_path)
    groups = [tuple(g) for g in json.loads(work.read_text(encoding="utf-8"))]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    db = open_ledger(config.ledger_path)
    written, started = 0, time.monotonic()
    with LedgerLock(config.ledger_path):
        ledger = Ledger(db, config.schedule)
        ledger.start_run("run", str(config.corpus_path))
        index = CaptureIndex(db, None, config)
        print("writing", file=sys.stderr, flush=True)
        while not stop and groups:
            record_image_groups(ledger, index, [groups[written % len(groups)]])
            written += 1
            time.sleep(max(0.0, started + written / pace - time.monotonic()))
        ledger.finish_run(RunStatus.INTERRUPTED, {"images_saved": written, "requests": written},
                          error="stopped by a signal (SIGTERM)")
    db.close()
    print(json.dumps({"images": written, "seconds": round(time.monotonic() - started, 1)}))
    return 0


@dataclass
class Writer:
    proc: subprocess.Popen
    out: Path

    @classmethod
    def start(cls, folder: Path, config: Path, groups: list, pace: float) -> Writer:
        work = folder / "writer-work.json"
        work.write_text(json.dumps(groups, ensure_ascii=False), encoding="utf-8")
        out = folder / "writer.stdout"
        with out.open("wb") as fo, (folder / "writer.stderr").open("wb") as fe:
            proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--writer",
                                     str(work), "--config", str(config), "--writer-pace",
                                     str(pace)], stdout=fo, stderr=fe, env=child_env())
        deadline = time.monotonic() + 120
        while b"writing" not in (folder / "writer.stderr").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the writer did not start: "
                                 + (folder / "writer.stderr").read_text(errors="replace"))
            time.sleep(0.2)
        return cls(proc, out)

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        return json.loads(self.out.read_text().strip().splitlines()[-1])


# -- Datasette, page by page --------------------------------------------------------------

@dataclass
class Page:
    label: str
    path: str  # as requested, HTML
    json_path: str | None = None  # its .json form (tables and views): the same facets
    facets: tuple[str, ...] = ()  # those the metadata configures


def pages(db_name: str, params: dict[str, str]) -> tuple[list[Page], list[str]]:
    """Every page the shipped metadata.yaml makes, and the query parameters left empty."""
    metadata = yaml.safe_load(METADATA.read_text(encoding="utf-8"))
    database = metadata["databases"][PLACEHOLDER]
    listed = [Page("index page `/`", "/"), Page("database page", f"/{db_name}")]
    tables = [(name, {}) for name in database.get("tables", {})] + EXTRA_PAGES
    for name, query in tables:
        facets = database["tables"].get(name, {}).get("facets", [])
        qs = urlencode(query)
        label = f"`{name}`" + (f" `?{'&'.join(f'{k}={v}' for k, v in query.items())}`"
                               if query else "")
        listed.append(Page(label, f"/{db_name}/{name}" + (f"?{qs}" if qs else ""),
                           f"/{db_name}/{name}.json" + (f"?{qs}" if qs else ""),
                           tuple(facets)))
    unknown = []
    for name, canned in database.get("queries", {}).items():
        names = list(dict.fromkeys(re.findall(r":(\w+)", canned["sql"])))
        unknown += [n for n in names if n not in params]
        values = {n: params.get(n, "") for n in names}
        shown = ", ".join(f"{k}={v if len(v) < 40 else v[:37] + '…'}" for k, v in values.items())
        listed.append(Page(f"query `{name}` ({shown})", f"/{db_name}/{name}?{urlencode(values)}"))
    listed.append(Page("`/chart`", "/chart"))
    return listed, unknown


@dataclass
class Timed:
    times: list[float] = field(default_factory=list)
    status: set[int] = field(default_factory=set)
    too_long: bool = False  # Datasette's SQL time limit stopped the page's query
    timed_out: Counter = field(default_factory=Counter)  # facet -> loads it timed out in
    json_timed_out: set[str] = field(default_factory=set)  # missing from the .json form

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def cell(self) -> str:
        mark = "" if self.status == {200} else f" (HTTP {'/'.join(map(str, sorted(self.status)))})"
        return f"{self.median:.2f} ({min(self.times):.2f}–{max(self.times):.2f}){mark}"

    def facets(self) -> str:
        named = [f"{f} {n}/{len(self.times)}" for f, n in sorted(self.timed_out.items())]
        named += [f"{f} (.json)" for f in sorted(self.json_timed_out - set(self.timed_out))]
        return ", ".join(named) or "none"


def time_page(client: httpx.Client, page: Page, timed: Timed, ask_json: bool) -> None:
    """One full GET of the page into `timed`; with ask_json, its .json form as well."""
    start = time.perf_counter()
    response = client.get(page.path)
    body = response.text  # read to the end, as a browser's first request does
    timed.times.append(time.perf_counter() - start)
    timed.status.add(response.status_code)
    timed.too_long |= "took too long" in body
    found = re.search(r"These facets timed out: ([^<]*)<", body)
    if found:
        timed.timed_out.update(f.strip() for f in found.group(1).split(","))
    if page.json_path and ask_json:  # Datasette 0.65's JSON leaves a timed-out facet out
        answer = client.get(page.json_path)
        if answer.status_code == 200:
            data = answer.json()
            timed.json_timed_out |= set(data.get("facets_timed_out", []))
            timed.json_timed_out |= {f for f in page.facets
                                     if f not in data.get("facet_results", {})}
        timed.too_long |= "took too long" in answer.text


@dataclass
class Server:
    proc: subprocess.Popen
    base: str

    @classmethod
    def start(cls, config: Path, folder: Path) -> Server:
        port = world.closed_port()  # a free port: nothing listens on it yet
        with (folder / "serve.stdout").open("wb") as fo, \
                (folder / "serve.stderr").open("wb") as fe:
            proc = subprocess.Popen([str(BIN / "preserver"), "serve", "--config", str(config),
                                     "--port", str(port)], stdout=fo, stderr=fe,
                                    env=child_env())
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit("preserver serve ended: "
                                 + (folder / "serve.stderr").read_text(errors="replace"))
            try:
                if httpx.get(f"{base}/-/versions.json", timeout=5).status_code == 200:
                    return cls(proc, base)
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        proc.kill()
        raise SystemExit("preserver serve did not answer within 120 s")

    def settings(self) -> dict:
        return httpx.get(f"{self.base}/-/settings.json", timeout=30).json()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the ledger's size and shape ----------------------------------------------------------

def size_lines(ledger: Path, articles: int) -> tuple[list[str], str]:
    """The dbstat breakdown as table rows, and a one-line summary."""
    total = sum(p.stat().st_size for p in ledger.parent.glob(ledger.name + "*")
                if p.suffix != ".lock")
    db = sqlite3.connect(f"{ledger.resolve().as_uri()}?mode=ro", uri=True)
    try:
        kinds = {name: (kind, table) for kind, name, table in db.execute(
            "select type, name, tbl_name from sqlite_master")}
        sizes = db.execute("select name, sum(pgsize) from dbstat group by name "
                           "order by 2 desc").fetchall()
        rows = {name: db.execute(f"select count(*) from [{name}]").fetchone()[0]
                for name, (kind, _) in kinds.items() if kind == "table"}
    finally:
        db.close()
    lines, small = [], 0
    for name, size in sizes:
        if size < total / 1000:
            small += size
            continue
        kind, table = kinds.get(name, ("table", name))
        count = f"{rows[name]:,}" if name in rows else ""
        lines.append(f"| {name} | {kind}{'' if kind == 'table' else f' on {table}'} | {count} | "
                     f"{size / 1e6:,.1f} | {100 * size / total:.1f} |")
    lines.append(f"| everything else (each < 0.1 %) | | | {small / 1e6:,.1f} | "
                 f"{100 * small / total:.1f} |")
    shape = ", ".join(f"{name} {count:,}" for name, count in sorted(rows.items()) if count)
    summary = (f"{total / 1e6:,.0f} MB ({total:,} bytes) for {articles:,} articles: "
               f"**{total / 1024 / articles:.1f} KB per article**; rows: {shape}")
    return lines, summary


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# -- the benchmark ------------------------------------------------------------------------

def query_params(read: Corpus, manifest: list[corpus.Article]) -> dict[str, str]:
    """A realistic value for each canned query's parameter: an article with images, its
    snapshot, category and month, the dead site, a failing status, today."""
    article = max(manifest[len(manifest) // 2:len(manifest) // 2 + 50] or manifest,
                  key=lambda a: len(a.images))
    month = read.dates.get(article.path, "")[:7]
    return {"path": article.path, "url": article.snapshot, "host": "hkcnews.com",
            "category": read.categories.get(article.path, ""), "start": month, "end": month,
            "status": "not_found", "since": datetime.now(UTC).strftime("%Y-%m-%d")}


def run(args: argparse.Namespace, folder: Path) -> str:
    started = time.monotonic()
    loads = {"start": load()}
    manifest = corpus.generate(folder / "corpus", args.articles)
    config = list_bench.scan(folder)
    cfg = load_config(config)
    read = Corpus.read(cfg.corpus_path, cfg.security.max_article_bytes)
    archive = WaybackArchive()  # never started: its captures feed the CDX index
    facts = world.fill(archive, manifest)
    groups = read.image_groups()
    keys = images_reached(read, round(ISSUE_URLS_CHECKED * args.articles / ISSUE_ARTICLES))
    built = first_run(config, read, archive, keys)
    del archive
    build_s = time.monotonic() - started
    ledger = cfg.ledger_path
    size_rows, size_summary = size_lines(ledger, args.articles)
    listed, unknown = pages(database_name(ledger), query_params(read, manifest))

    server = Server.start(config, folder)
    try:
        settings = server.settings()
        idle = {p.path: Timed() for p in listed}
        busy = {p.path: Timed() for p in listed}
        left = groups[keys:] or groups  # the images the first run did not reach
        wrote = Counter()
        with httpx.Client(base_url=server.base, timeout=600) as client:
            # idle and writing passes alternate, so a change in the machine's other load
            # falls on both alike
            for round_ in range(args.repeat):
                for page in listed:
                    time_page(client, page, idle[page.path], ask_json=round_ == 0)
                loads[f"idle pass {round_ + 1}"] = load()
                writing = Writer.start(folder, config, left, args.writer_pace)
                try:
                    time.sleep(args.writer_warmup)
                    for page in listed:
                        time_page(client, page, busy[page.path], ask_json=round_ == 0)
                    loads[f"writer pass {round_ + 1}"] = load()
                finally:
                    done = writing.stop()
                wrote.update(done)
                left = left[done["images"]:] or left
        listings = [(name, [measure([str(BIN / "preserver"), *cmd, "--config", str(config)],
                                    folder, folder / "listing", 600)
                            for _ in range(args.repeat)]) for name, cmd in LISTINGS]
    finally:
        server.stop()

    rows = []
    for page in listed:
        a, b = idle[page.path], busy[page.path]
        out, out_busy = a.facets(), b.facets()
        limit = "/".join(x for x, t in (("idle", a), ("writer", b)) if t.too_long) or "no"
        rows.append(f"| {page.label} | {a.cell()} | {b.cell()} | {out} | {out_busy} | {limit} |")
    list_rows = []
    for name, runs in listings:
        bad = [m.code for m in runs if m.code != 0]
        walls = [m.wall for m in runs]
        list_rows.append(f"| `{name}` | {statistics.median(walls):.2f} ({min(walls):.2f}–"
                         f"{max(walls):.2f}) | {statistics.median(m.cpu for m in runs):.2f} | "
                         f"{max(m.rss_mb for m in runs):.1f} |" + (f" exit {bad}" if bad else ""))
    command = shlex.join(["python", "bench/browse_bench.py", "--articles", str(args.articles),
                          "--repeat", str(args.repeat), "--writer-pace", f"{args.writer_pace:g}",
                          "--label", args.label])
    images = ", ".join(f"{k.split()[1]} {v:,}" for k, v in built.items()
                       if k.startswith("image ") and k != "image keys")
    text = "\n".join([
        f"### {args.label}",
        "",
        f"Command: `{command}`",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; total time of this benchmark "
        f"{time.monotonic() - started:,.0f} s (building the ledger {build_s:,.0f} s); "
        f"{machine()}; preserver commit {git_head()}",
        f"- load average (1/5/15 min, `uptime`): {'; '.join(f'{k} {v}' for k, v in loads.items())}"
        " (2 cores shared with other jobs: wall times are upper bounds)",
        f"- ledger: {args.articles:,} articles (`preserver scan` of bench/corpus.py's corpus), "
        f"then a budgeted first run played through preserver's write API (see the script's "
        f"docstring): {facts.captures:,} captures fed to `CaptureIndex.refresh` "
        f"({built['queries']} prefix/exact queries planned, {built['sparse']} sparse exact), "
        f"every snapshot and embed checked, the images of {built['image keys']:,} of "
        f"{len(groups):,} canonical keys fetched ({images} image URLs), no original (the dead "
        "site's host given up); the run recorded as interrupted",
        f"- size: {size_summary}",
        f"- `preserver serve` with its own settings: sql_time_limit_ms "
        f"{settings.get('sql_time_limit_ms')}, facet_time_limit_ms "
        f"{settings.get('facet_time_limit_ms')}; {args.repeat} rounds, each an idle pass then a "
        "pass with the writer, each pass one full HTML GET of every page on one connection; "
        "median (min–max) seconds; facets timed out: in how many of the page's loads it said "
        "*These facets timed out*, or (.json) missing from the facet results of its `.json` "
        "form (asked in the first round); SQL limit: a page that hit "
        "`sql_time_limit_ms` (HTTP 400 *took too long*)",
        f"- with writer: another process holding the ledger's lock, writing the images the first "
        f"run did not reach as a run's image phase does (one `Ledger.record_images` transaction "
        f"per image, with its checks) at {args.writer_pace:g} images a second (preserver's "
        f"default replay pace), started afresh for each pass {args.writer_warmup:g} s before "
        f"its first page; it wrote {wrote['images']:,} images in {wrote['seconds']:,.0f} s",
        *([f"- query parameters left empty (no realistic value known): {', '.join(unknown)}"]
          if unknown else []),
        "",
        "| page | median s idle | median s with writer | facets timed out (idle) | "
        "facets timed out (with writer) | SQL time limit hit |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Readers on the idle ledger, each {args.repeat} times in its own process (stdout to a "
        "file):",
        "",
        "| command | median wall s (min–max) | median CPU s | peak RSS MB |",
        "|---|---|---|---|",
        *list_rows,
        "",
        "The ledger's size by table and index (SQLite `dbstat`, after a checkpoint):",
        "",
        "| name | kind | rows | MB | % of file |",
        "|---|---|---|---|---|",
        *size_rows,
    ])
    return scrub(text, folder) + "\n"


def put_section(part: str, label: str, out: Path) -> None:
    """This run's part replaces the one of the same label (`### before`, `### after`) in the
    section between the markers; the other labels' parts stay, so before and after sit side
    by side."""
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    inner = text.split(BEGIN, 1)[1].split(END, 1)[0] if BEGIN in text and END in text else ""
    parts = {m.group(1): m.group(0) for m in re.finditer(r"^### ([^\n]*)\n.*?(?=^### |\Z)", inner,
                                                          re.M | re.S)}
    parts[label] = part
    section = "\n".join([BEGIN, TITLE, "", *(p.rstrip("\n") + "\n" for p in parts.values()),
                         END])
    list_bench.put_section(section, out, BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=ISSUE_ARTICLES)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--writer-pace", type=float,
                   default=ArchiveConfig().replay_per_minute / 60,
                   help="images the concurrent writer records per second")
    p.add_argument("--writer-warmup", type=float, default=3.0,
                   help="seconds the writer writes before the first page is timed")
    p.add_argument("--label", default="before",
                   help="what this measures, in the section's title (e.g. before, after)")
    p.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--writer", type=Path, help=argparse.SUPPRESS)  # the writer process
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.writer:
        return writer(args.config, args.writer, args.writer_pace)
    folder = Path(tempfile.mkdtemp(prefix="preserver-browse-bench-"))
    try:
        section = run(args, folder)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(section)
    put_section(section, args.label, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
