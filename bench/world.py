"""The world a benchmark talks to: a local Wayback archive with scaled limits, and a dead site.

Everything runs on 127.0.0.1 with the test servers of `tests/servers` (reused, not copied).
The archive holds a capture for most snapshots and images of the generated corpus, with the
mix of exact captures, nearest-capture redirects and gaps that a real corpus meets. Its limits
are the real archive's per-IP limits (shared/reference/wayback.md) times `scale`, enforced over
a window of 60/scale seconds, so bursts keep their real shape (30 CDX requests, then 429s) and
only the clock runs faster. hkcnews.com is dead: its origins point at a closed port (connection
refused, the way a dead host answers) or, with `live="404"`, at a site answering 404 to
everything.
"""

from __future__ import annotations

import hashlib
import random
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bench.corpus import TS_FORMAT, Article
from tests.servers import LiveSite, Request, Response, WaybackArchive, url_key
from tests.servers.cdx import CdxError, CdxQuery, run_query

# Requests per minute per IP at archive.org. Availability has no published number; 30/min
# (like CDX) is a generous assumption: in 2026 it 429'd through 45 s cool-downs.
REAL_PER_MINUTE = {"cdx": 30, "replay": 600, "availability": 30}
REAL_REPLAY_CONCURRENCY = 4  # more than 3 to 4 parallel downloads draws 429s
CDX_POOL = ("cdx", "timemap")  # one shared pool at archive.org
ORIGINS = ("https://www.hkcnews.com", "https://hkcnews.com")

SNAPSHOT_MISSING, SNAPSHOT_ELSEWHERE = 0.03, 0.05
IMAGE_MISSING, IMAGE_ELSEWHERE = 0.03, 0.03
EXTRA_CAPTURES = (1, 3)  # per original, at other timestamps

PNG_HEAD = (b"\x89PNG\r\n\x1a\n"  # signature, then an IHDR chunk: 640 x 480, 8-bit RGB
            b"\x00\x00\x00\rIHDR\x00\x00\x02\x80\x00\x00\x01\xe0\x08\x02\x00\x00\x00")
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
GIF_HEAD = b"GIF89a\x80\x02\xe0\x01\xf7\x00\x00"


class IndexedArchive(WaybackArchive):
    """The test archive, answering exact-match CDX queries from its per-URL index.

    The answer is the same; the stock endpoint scans every capture (about 20 ms of this
    process's CPU per query at 10,000 articles), which would be billed to the client.
    """

    def _cdx(self, request: Request) -> Response:
        try:
            query = CdxQuery.from_params(request.params())
        except CdxError:
            return super()._cdx(request)
        if query.match_type != "exact":
            return super()._cdx(request)
        body, content_type = run_query(self.captures(query.url), request.params(),
                                       self.cdx_page_size)
        return Response(200, body, content_type=content_type)


@dataclass(frozen=True)
class Limits:
    """The real archive's limits times `scale`, and the latency of every answer."""

    scale: float
    latency_ms: float

    @property
    def window(self) -> float:
        return 60.0 / self.scale

    def per_minute(self, endpoint: str) -> float:
        """Scaled requests per (real) minute."""
        return REAL_PER_MINUTE[endpoint] * self.scale

    def per_second(self, endpoint: str) -> float:
        rate = self.per_minute(endpoint) / 60.0
        if endpoint == "replay" and self.latency_ms > 0:  # 4 in flight at a time at most
            rate = min(rate, REAL_REPLAY_CONCURRENCY / (self.latency_ms / 1000.0))
        return rate


@dataclass
class Facts:
    """What the archive holds, for the report and the lower bound."""

    snapshots: Counter = field(default_factory=Counter)  # exact / elsewhere / missing
    images: Counter = field(default_factory=Counter)  # by distinct image
    captures: int = 0

    @property
    def distinct_images(self) -> int:
        return sum(self.images.values())


def apply_limits(archive: WaybackArchive, limits: Limits) -> None:
    """(Re)install the scaled limits with fresh windows; also clears scripted faults."""
    archive.clear_faults()
    archive.rate_limit(CDX_POOL, REAL_PER_MINUTE["cdx"], window=limits.window)
    archive.rate_limit("replay", REAL_PER_MINUTE["replay"], window=limits.window)
    archive.rate_limit("availability", REAL_PER_MINUTE["availability"], window=limits.window)
    archive.concurrency_limit("replay", REAL_REPLAY_CONCURRENCY)
    archive.latency = limits.latency_ms / 1000.0


def reset(archive: WaybackArchive, limits: Limits) -> None:
    """A fresh request log and fresh limit windows before each contender."""
    archive.clear_requests()
    apply_limits(archive, limits)


def other_timestamp(ts: str, rng: random.Random, days: tuple[int, int]) -> str:
    when = datetime.strptime(ts, TS_FORMAT)
    offset = timedelta(days=rng.randint(*days), seconds=rng.randint(1, 86_399))
    return (when + offset * rng.choice((-1, 1))).strftime(TS_FORMAT)


def page_body(article: Article) -> bytes:
    title = article.path.rsplit("/", 1)[-1]
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1><p>{'眾新聞 ' * 40}</p></article></body></html>"
            ).encode()


def image_body(original: str) -> tuple[bytes, str]:
    """A real image header and a few hundred bytes, distinct per image."""
    filler = hashlib.sha256(original.encode()).digest() * 10
    ext = original.partition("?")[0].rsplit(".", 1)[-1].lower()
    if ext == "png":
        return PNG_HEAD + filler, "image/png"
    if ext == "gif":
        return GIF_HEAD + filler, "image/gif"
    return JPEG_HEAD + filler + b"\xff\xd9", "image/jpeg"


def add_article(archive: WaybackArchive, article: Article, rng: random.Random, facts: Facts):
    roll = rng.random()
    if roll < SNAPSHOT_MISSING:
        facts.snapshots["missing"] += 1  # nothing at all: any capture would be redirected to
        return
    body = page_body(article)
    if roll < SNAPSHOT_MISSING + SNAPSHOT_ELSEWHERE:
        facts.snapshots["elsewhere"] += 1
        archive.add(article.embedded, other_timestamp(article.timestamp, rng, (1, 30)), body)
    else:
        facts.snapshots["exact"] += 1
        archive.add(article.embedded, article.timestamp, body)
    for _ in range(rng.randint(*EXTRA_CAPTURES)):
        archive.add(article.original, other_timestamp(article.timestamp, rng, (31, 900)), body)


def add_images(archive: WaybackArchive, articles: list[Article], rng: random.Random,
               facts: Facts) -> None:
    first: dict[str, tuple[str, str]] = {}  # image key -> (original, timestamp) first named
    for article in articles:
        for image in article.images:
            first.setdefault(url_key(image.original), (image.original, image.timestamp))
    for original, ts in first.values():
        roll = rng.random()
        if roll < IMAGE_MISSING:
            facts.images["missing"] += 1
            continue
        body, mimetype = image_body(original)
        if roll < IMAGE_MISSING + IMAGE_ELSEWHERE:
            facts.images["elsewhere"] += 1
            ts = other_timestamp(ts, rng, (1, 30))
        else:
            facts.images["exact"] += 1
        archive.add(original, ts, body, mimetype)


def fill(archive: WaybackArchive, articles: list[Article], seed: int = 20260101) -> Facts:
    rng = random.Random(seed)
    facts = Facts()
    for article in articles:
        add_article(archive, article, rng, facts)
    add_images(archive, articles, rng, facts)
    facts.captures = len(archive.captures())
    return facts


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class World:
    archive: WaybackArchive
    limits: Limits
    facts: Facts
    live_base: str  # where the dead origins point
    live_mode: str  # "refused" or "404"
    site: LiveSite | None = None

    @property
    def origins(self) -> dict[str, str]:
        return {origin: self.live_base for origin in ORIGINS}

    def reset(self) -> None:
        reset(self.archive, self.limits)
        if self.site is not None:
            self.site.clear_requests()

    def stop(self) -> None:
        self.archive.stop()
        if self.site is not None:
            self.site.stop()


def start(articles: list[Article], limits: Limits, live_mode: str = "refused") -> World:
    archive = IndexedArchive().start()
    facts = fill(archive, articles)
    apply_limits(archive, limits)
    site = LiveSite().start() if live_mode == "404" else None
    live_base = site.base_url if site else f"http://127.0.0.1:{closed_port()}"
    return World(archive, limits, facts, live_base, live_mode, site)
