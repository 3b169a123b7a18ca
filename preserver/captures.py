"""The archive's CDX index, cached in the ledger, so most questions cost no request.

At the archive's 30 CDX requests a minute, one query per URL cannot finish 49,118 articles in a
day. But the URLs cluster: every article is under `hkcnews.com/article/`, most images under
`hkcnews.com/news_新聞/`. So URLs are grouped by host and first path segment; a group with at
least `bulk_threshold` URLs is fetched with one paged prefix query (resume keys), a sparse
original gets one exact query, and everything lands in the `captures` table. "Is this capture
there, which is the nearest, how many are there" is then answered locally. URLs meet the index
through the archive's own canonical form (SURT, from the Internet Archive's `surt` package).

Queries are resumable (the resume key is saved after every page) and refreshed when older than
`cdx_max_age_days`, asking for captures since the last fetch minus that same age again (the
archive indexes some captures days after they were made).

An index answer is only believed when it is evidence. A page counts only if it is complete and
well-formed (`archive.parse_cdx_json`); a query that did not end stays `partial` and answers
nothing. A prefix query whose complete answer matches none of the URLs it was planned for is
suspect (a canonicalisation mismatch, a broken index): a few of those URLs are asked with exact
queries, and if those find captures the prefix answer is `distrusted` and answers nothing.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import sqlite_utils

from .archive import Archive
from .errors import RequestFailed
from .ledger import now
from .status import CheckResult, UrlStatus
from .urls import WaybackURL, canonical_key, encode_once, nearest_in_time

log = logging.getLogger("preserver")
SANITY_PROBES = 3  # URLs of a prefix query that matched none of them, asked one by one
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Capture:
    urlkey: str
    timestamp: str
    original: str
    mimetype: str
    statuscode: str
    digest: str

    @property
    def is_redirect(self) -> bool:
        return self.statuscode.startswith("3")

    @property
    def is_error(self) -> bool:
        return self.statuscode[:1] in ("4", "5")


@dataclass(frozen=True)
class Query:
    url: str  # as sent: "hkcnews.com/article" or an exact URL
    match_type: str  # "prefix" or "exact"
    key_prefix: str  # the SURT every URL it covers starts with (exact: the whole key)
    # a few URLs it was planned for (prefix queries): checked against its answer
    samples: tuple[str, ...] = field(default=(), compare=False)


def group_of(url: str) -> Query | None:
    """The prefix query that would cover url: its host (no `www.`, its port kept) and first
    path segment. Sent without a trailing slash: `host/seg` covers the page `host/seg` (and
    `host/seg/`, whose key loses the slash) as well as everything under it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower().removeprefix("www.")
    segments = parts.path.split("/")
    if parts.scheme not in ("http", "https") or not host or len(segments) < 2 \
            or not segments[1]:
        return None
    if port and port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    prefix = f"{host}/{segments[1]}"
    return Query(encode_once(prefix), "prefix", canonical_key(f"{parts.scheme}://{prefix}"))


def exact_query(url: str) -> Query:
    return Query(encode_once(url), "exact", canonical_key(url))


class CaptureIndex:
    """Plans, runs and answers from CDX queries stored in the ledger."""

    def __init__(self, db: sqlite_utils.Database, archive: Archive, config):
        self.db = db
        self.archive = archive
        self.page_size = config.archive.cdx_page_size
        self.bulk_threshold = config.archive.bulk_threshold
        self.max_age = dt.timedelta(days=config.schedule.cdx_max_age_days)
        self._prefixes: list[str] = []  # key prefixes of complete prefix queries
        self._exact: set[str] = set()  # keys of complete exact queries
        self._load_covered()

    # -- planning and fetching ----------------------------------------------------------
    def plan(self, urls: Iterable[str]) -> tuple[list[Query], list[str]]:
        """(queries, the URLs those do not cover), in one pass and in memory bounded by the
        number of groups, not of URLs (the whole corpus streams through here). Many distinct
        URLs under one host and first path segment get one prefix query; a sparse URL named
        many times (every article links `hkcnews.com/aboutus/` at its own timestamp) gets one
        exact query; the remaining sparse URLs are left to be asked one by one."""
        threshold = self.bulk_threshold
        members: dict[Query | None, collections.Counter] = {}  # until a group is dense
        dense: dict[Query, None] = {}  # insertion-ordered set
        for url in urls:
            group = group_of(url)
            if group in dense:
                continue
            seen = members.setdefault(group, collections.Counter())
            seen[url] += 1
            if group is not None and len(seen) >= threshold:
                dense[replace(group, samples=tuple(seen))] = None
                del members[group]
        by_key: dict[str, list[str]] = {}
        times: collections.Counter = collections.Counter()
        for seen in members.values():
            for url, count in seen.items():
                key = canonical_key(url)
                by_key.setdefault(key, []).append(url)
                times[key] += count
        exact = [exact_query(spellings[0]) for key, spellings in by_key.items()
                 if times[key] >= threshold]
        repeated = {q.key_prefix for q in exact}
        sparse = [u for key, spellings in by_key.items() if key not in repeated
                  for u in spellings]
        return exact + list(dense), sparse

    def pages_to_fetch(self, query: Query, urls: int) -> int:
        """At least how many pages `refresh` asks for this query (for `preserver plan`): none
        when it is fresh; one to go on with a partial query or to bring a stale one up to date
        (only newer captures); else one per `cdx_page_size` of the `urls` it covers (each has
        a capture at least)."""
        if self._is_fresh(query):
            return 0
        if self._latest(query) is not None:
            return 1
        return max(1, math.ceil(urls / self.page_size))

    def assume_complete(self, queries: list[Query]) -> None:
        """Answer `covers` as if these queries had run (for `preserver plan`)."""
        self._prefixes += [q.key_prefix for q in queries if q.match_type == "prefix"]
        self._exact |= {q.key_prefix for q in queries if q.match_type == "exact"}

    async def refresh(self, queries: list[Query], budget=None) -> None:
        """Run every query that is not fresh, page by page; a failure leaves it resumable."""
        for query in queries:
            if budget is not None and budget.exhausted():
                return
            if self._is_fresh(query):
                continue
            try:
                query_id, hits = await self._run(query)
                if query.samples and hits == 0:
                    await self._check_prefix(query, query_id, budget)
            except RequestFailed as exc:
                log.warning("CDX query %s stopped: %s (resumes next time)", query.url, exc)
        self._load_covered()

    async def fetch_exact(self, url: str) -> None:
        """One exact query for a sparse URL (raises RequestFailed; `excluded` when the
        archive blocks the site)."""
        query = exact_query(url)
        if not self._is_fresh(query):
            await self._run(query)
        row = self._latest(query)
        if row and row["status"] == "excluded":
            raise RequestFailed(UrlStatus.EXCLUDED, row["error"])
        self._exact.add(query.key_prefix)

    def _is_fresh(self, query: Query) -> bool:
        row = self._latest(query)
        if not row or row["status"] not in ("complete", "excluded"):
            return False
        return _age(row["fetched_at"]) < self.max_age

    def _latest(self, query: Query) -> dict | None:
        rows = list(self.db.query(
            "select * from cdx_queries where url = ? and match_type = ? order by id desc limit 1",
            [query.url, query.match_type]))
        return rows[0] if rows else None

    async def _run(self, query: Query) -> tuple[int, int | None]:
        """Run (or go on with) one query to its end: (its row id, how many rows of its answer
        are captures of `query.samples`; None when the answer is only what is new)."""
        previous = self._latest(query)
        resume_key, from_ts, query_id = None, None, None
        if previous and previous["status"] == "partial":  # a killed or stopped run: go on
            resume_key, from_ts, query_id = (previous["resume_key"], previous["from_ts"],
                                             previous["id"])
        elif previous and previous["status"] == "complete":  # stale: what is new, and what
            # the archive indexed late (captures made up to max_age before the last fetch)
            since = _parsed(previous["fetched_at"]) - self.max_age
            from_ts = since.strftime("%Y%m%d")
        if query_id is None:
            query_id = self.db["cdx_queries"].insert({
                "url": query.url, "match_type": query.match_type, "key_prefix": query.key_prefix,
                "started_at": now(), "from_ts": from_ts, "pages": 0, "rows": 0,
                "status": "partial"}).last_pk
        sample_keys = {canonical_key(u) for u in query.samples}
        hits = self._sample_hits(query_id, sample_keys) if resume_key else 0
        pages = self.archive.cdx_pages(query.url, query.match_type, page_size=self.page_size,
                                       resume_key=resume_key, from_ts=from_ts)
        try:
            async for rows, next_key in pages:
                hits += sum(1 for r in rows if r.urlkey in sample_keys)
                self._store_page(query_id, rows, next_key)
        except RequestFailed as exc:
            excluded = exc.status == UrlStatus.EXCLUDED  # a verdict: fresh for max_age
            self.db["cdx_queries"].update(query_id, {"error": str(exc), **(
                {"status": "excluded", "fetched_at": now()} if excluded else {})})
            if not excluded:
                raise
            return query_id, None
        return query_id, None if from_ts else hits

    def _sample_hits(self, query_id: int, keys: set[str]) -> int:
        """Captures of these keys that earlier pages of the query brought."""
        if not keys:
            return 0
        return self.db.execute(
            f"select count(*) from captures where query_id = ? and urlkey in "
            f"({', '.join('?' * len(keys))})", [query_id, *keys]).fetchone()[0]

    async def _check_prefix(self, query: Query, query_id: int, budget) -> None:
        """A complete prefix answer that matched none of the URLs it was meant for: before it
        may call any of them `not_found` or `missing`, ask a few of them exactly. Captures
        found (or no answer) mean the prefix answer cannot be believed: it is marked so and
        answers nothing; its URLs go to exact queries and replays."""
        probes = list(query.samples)[:SANITY_PROBES]
        try:
            for url in probes:
                if budget is not None and budget.exhausted():
                    raise RequestFailed(UrlStatus.RATE_LIMITED, "the run's budget ran out")
                await self.fetch_exact(url)
        except RequestFailed as exc:
            status, why = "unverified", f"the exact queries to check it failed ({exc})"
        else:
            found = [url for url in probes if self.captures_of(url)]
            if not found:
                log.info("CDX prefix query %s matched none of %d URLs under it; exact queries "
                         "for %d of them agree", query.url, len(query.samples), len(probes))
                return
            status, why = "distrusted", (f"exact queries found captures of {len(found)} of "
                                         f"the {len(probes)} asked (a canonicalisation "
                                         "mismatch or a broken index?)")
        message = (f"the prefix answer matched none of the {len(query.samples)} URLs it was "
                   f"planned for, but {why}: not used")
        log.warning("CDX query %s: %s", query.url, message)
        self.db["cdx_queries"].update(query_id, {"status": status, "error": message})

    def _store_page(self, query_id: int, rows: list, next_key: str | None) -> None:
        with self.db.atomic():
            self.db.conn.executemany(
                "insert or ignore into captures (urlkey, timestamp, original, mimetype, "
                "statuscode, digest, length, query_id) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [(*r[:4], r.statuscode or "", r.digest or "", _int(r.length), query_id)
                 for r in rows if r.urlkey and r.timestamp])  # '': none given (key columns)
            self.db.execute(
                "update cdx_queries set pages = pages + 1, rows = rows + ?, resume_key = ?, "
                "status = ?, fetched_at = case when ? is null then ? else fetched_at end, "
                "error = null where id = ?",
                [len(rows), next_key, "partial" if next_key else "complete", next_key, now(),
                 query_id])

    def _load_covered(self) -> None:
        rows = self.db.execute("select distinct match_type, key_prefix from cdx_queries "
                               "where status = 'complete'").fetchall()
        self._prefixes = [key for kind, key in rows if kind == "prefix"]
        self._exact = {key for kind, key in rows if kind == "exact"}

    # -- answers ------------------------------------------------------------------------
    def covers(self, url: str, key: str | None = None) -> bool:
        """Has a complete query fetched every capture this URL could have? (`key`: its
        canonical key, when the caller has it already.)"""
        key = key or canonical_key(url)
        return key in self._exact or any(key.startswith(p) for p in self._prefixes)

    def captures_of(self, url: str, key: str | None = None) -> list[Capture]:
        rows = self.db.execute(
            "select urlkey, timestamp, original, mimetype, statuscode, digest from captures "
            "where urlkey = ? order by timestamp", [key or canonical_key(url)]).fetchall()
        return [Capture(*row) for row in rows]

    def coverage(self, url: str) -> dict:
        count, first, last = self.db.execute(
            "select count(*), min(timestamp), max(timestamp) from captures where urlkey = ?",
            [canonical_key(url)]).fetchone()
        return {"captures": count, "first_capture": first, "last_capture": last}

    def nearest(self, url: str, timestamp: str, key: str | None = None) -> Capture | None:
        """The capture the archive would replay for url at timestamp: exact, else nearest in
        time (preferring captures that are not error pages)."""
        captures = self.captures_of(url, key)
        exact = [c for c in captures if c.timestamp == timestamp]
        if exact:
            return exact[0]
        pool = [c for c in captures if not c.is_error] or captures
        return nearest_in_time(pool, timestamp)

    def snapshot_result(self, snapshot_url: str, wayback: WaybackURL) -> CheckResult:
        """The snapshot check, answered from the index (no request)."""
        capture = self.nearest(wayback.original, wayback.timestamp)
        result = CheckResult(snapshot_url, UrlStatus.NOT_FOUND, method="cdx")
        if capture is None:
            result.error = "the CDX index has no capture of this URL"
            return result
        result.capture_timestamp = capture.timestamp
        result.final_url = wayback.canonical("") if capture.timestamp == wayback.timestamp \
            else WaybackURL(capture.timestamp, "", wayback.original).canonical("")
        if capture.is_error:
            result.error = f"the capture is of an HTTP {capture.statuscode} page"
        elif capture.timestamp != wayback.timestamp:
            result.status = UrlStatus.REDIRECTED
            result.error = f"no capture at {wayback.timestamp}; nearest is {capture.timestamp}"
        elif capture.is_redirect:
            result.status = UrlStatus.REDIRECTED
            result.error = f"archived redirect (HTTP {capture.statuscode} when captured)"
        else:
            result.status = UrlStatus.OK
        return result


def _parsed(iso: str) -> dt.datetime:
    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _age(iso: str | None) -> dt.timedelta:
    if not iso:
        return dt.timedelta.max
    return dt.datetime.now(dt.UTC) - _parsed(iso)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
