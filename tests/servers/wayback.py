"""A local, Wayback-Machine-compatible archive for integration tests.

The project's whole job is talking to web.archive.org: replaying snapshots (exact, nearest-capture
redirects, archived redirects), bulk CDX queries with resume keys, the availability API, TimeMaps
and Save Page Now. Tests cannot hit the real archive (rate limits, IP blocks, no determinism), and
pywb differs from archive.org in the details the client depends on (307 vs 302, CDX format, no
resume keys). So this server imitates archive.org's endpoints and formats as described in
shared/reference/wayback.md, over captures a test adds with `add()`, with every fault of
`faults.py` available per endpoint class.

Endpoint classes: replay, cdx, availability, timemap, save (SPN1 and SPN2 submit),
save_status (SPN2 polling), other (anything else: 404).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
from bisect import insort
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urljoin

from .base import BackgroundServer
from .cdx import CdxError, CdxQuery, run_query
from .messages import Request, Response
from .model import Capture, ascii_url, full_url, http_date, nearest, url_key, utc_timestamp

__all__ = ["Capture", "WaybackArchive"]

MODIFIERS = ("id_", "im_", "if_", "js_", "cs_", "oe_")
# /web/<ts><mod>/<url>, or /web/<url> (a timegate: the latest capture)
_REPLAY = re.compile(r"/web/(?:(\d{1,14})(" + "|".join(MODIFIERS) + r")?/)?(.+)", re.S)
_TIMEMAP = "/web/timemap/link/"
_LINK_FORMAT = "application/link-format"
# archive.org's answers for an excluded site (recorded traffic, see shared/reference/wayback.md):
# the replay answers 200 with this page and no Memento-Datetime or Location; the CDX answers 403
EXCLUDED_PAGE = (
    b"<!DOCTYPE html><html><head><title>Wayback Machine</title></head><body>"
    b'<div id="error"><h2>Sorry.</h2>'
    b"<p>This URL has been excluded from the Wayback Machine.</p></div></body></html>"
)
BLOCKED_SITE = (
    b"org.archive.util.io.RuntimeIOException: org.archive.wayback.exception."
    b"AdministrativeAccessControlException: Blocked Site Error\n"
)
_NOT_FOUND = (
    b"<html><body><h1>Not Found</h1>"
    b"<p>The Wayback Machine has not archived that URL.</p></body></html>"
)


@dataclass
class _SaveJob:
    """An SPN2 job: pending for a few polls, then a result that stays the same."""

    url: str
    polls: int = 0
    result: dict[str, Any] | None = field(default=None)


def json_response(data: object, status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode(), content_type="application/json")


def memento_rel(index: int, count: int) -> str:
    """`first memento`, `memento`, `last memento` (or `first last memento` for a lone one)."""
    words = ["first"] * (index == 0) + ["last"] * (index == count - 1)
    return " ".join([*words, "memento"])


class WaybackArchive(BackgroundServer):
    """Serves the captures added with `add()` the way web.archive.org would."""

    def __init__(self) -> None:
        super().__init__()
        self._by_key: dict[str, list[Capture]] = {}
        self._jobs: dict[str, _SaveJob] = {}
        self._data_lock = threading.RLock()
        self._seq = itertools.count(1)
        self.redirect_status = 302  # nearest-capture redirects; pywb uses 307
        self.cdx_page_size = 150_000  # archive.org's hard maximum of lines per CDX query
        self.spn2_pending_polls = 1  # status polls answered "pending" before the result
        self.spn2_error: str | None = None  # e.g. "error:too-many-daily-captures"
        self.spn2_error_saves = False  # with spn2_error: the capture is made anyway
        self._excluded: list[str] = []  # SURT key prefixes excluded from the archive
        # a broken index: prefix queries answer a well-formed `[]`, exact queries still work
        self.cdx_prefix_blind = False

    # -- captures ----------------------------------------------------------------------------

    def add(
        self,
        url: str,
        timestamp: str,
        body: bytes = b"",
        mimetype: str = "text/html",
        status: int = 200,
        location: str | None = None,
        orig_headers: dict[str, str] | None = None,
    ) -> Capture:
        """A capture; `status` is the site's answer when captured (an archived 404, 429 or
        503 too), `orig_headers` the site's headers, replayed as `X-Archive-Orig-*`."""
        capture = Capture(url, timestamp, body, mimetype, status, location,
                          orig_headers=dict(orig_headers or {}), seq=next(self._seq))
        with self._data_lock:
            captures = self._by_key.setdefault(capture.urlkey, [])
            insort(captures, capture, key=lambda c: (c.timestamp, c.seq))
        return capture

    def exclude(self, url: str, whole_host: bool = True) -> None:
        """Exclude a site (or, with `whole_host=False`, one URL) the way archive.org does:
        replays answer 200 with EXCLUDED_PAGE (no Memento-Datetime, no Location), CDX queries
        about it answer 403 BLOCKED_SITE, and its captures leave every other CDX answer."""
        key = url_key(url)
        with self._data_lock:
            self._excluded.append(key.split(")", 1)[0] + ")" if whole_host else key)

    def is_excluded(self, url_or_key: str, is_key: bool = False) -> bool:
        key = url_or_key if is_key else url_key(url_or_key)
        with self._data_lock:
            return any(key == e or (e.endswith(")") and key.startswith(e))
                       for e in self._excluded)

    def captures(self, url: str | None = None) -> list[Capture]:
        """All captures, or those of one URL (any form with the same SURT key), oldest first."""
        with self._data_lock:
            if url is not None:
                return list(self._by_key.get(url_key(url), []))
            return [c for captures in self._by_key.values() for c in captures]

    # -- addresses ---------------------------------------------------------------------------

    def replay_url(self, timestamp: str, url: str, mod: str = "") -> str:
        return f"{self.base_url}/web/{timestamp}{mod}/{ascii_url(url)}"

    @property
    def cdx_url(self) -> str:
        return self.base_url + "/cdx/search/cdx"

    @property
    def availability_url(self) -> str:
        return self.base_url + "/wayback/available"

    @property
    def save_url(self) -> str:
        return self.base_url + "/save"

    def timemap_url(self, url: str) -> str:
        return self.base_url + _TIMEMAP + ascii_url(url)

    # -- dispatch ----------------------------------------------------------------------------

    def classify(self, request: Request) -> str:
        path = request.path
        if path == "/cdx/search/cdx":
            return "cdx"
        if path == "/wayback/available":
            return "availability"
        if path.startswith("/web/timemap/"):
            return "timemap"
        if path.startswith("/save/status/"):
            return "save_status"
        if path == "/save" or path.startswith("/save/"):
            return "save"
        if path.startswith("/web/"):
            return "replay"
        return "other"

    def handle(self, request: Request) -> Response:
        return getattr(self, "_" + self.classify(request))(request)

    def _other(self, request: Request) -> Response:
        return Response(404, _NOT_FOUND)

    # -- replay ------------------------------------------------------------------------------

    def _replay(self, request: Request) -> Response:
        match = _REPLAY.fullmatch(request.target)
        if match and self.is_excluded(match.group(3)):
            return Response(200, EXCLUDED_PAGE, content_type="text/html; charset=utf-8")
        captures = self.captures(match.group(3)) if match else []
        if not captures:
            return Response(404, _NOT_FOUND)
        ts = match.group(1) or utc_timestamp()
        mod, original = match.group(2) or "", match.group(3)
        exact = next((i for i, c in enumerate(captures) if c.timestamp == ts), None)
        if exact is not None:
            return self._memento(captures, exact, mod)
        closest = nearest(captures, ts)
        headers = {
            "Location": self.replay_url(closest.timestamp, original, mod),
            "X-Archive-Redirect-Reason": f"found capture at {closest.timestamp}",
        }
        return Response(self.redirect_status, headers=headers)

    def _memento(self, captures: list[Capture], index: int, mod: str) -> Response:
        """Replay one capture: its status, body and type, plus Memento headers."""
        capture = captures[index]
        links = self._links(capture.url, captures, {0, index, len(captures) - 1}, "timemap")
        headers = {"Memento-Datetime": http_date(capture.timestamp), "Link": ", ".join(links)}
        headers.update({f"X-Archive-Orig-{k}": v for k, v in capture.orig_headers.items()})
        if capture.location:
            target = urljoin(full_url(capture.url), capture.location)
            headers["Location"] = self.replay_url(capture.timestamp, target, mod)
        return Response(capture.status, capture.body, headers, content_type=capture.mimetype)

    def _links(
        self, original: str, captures: list[Capture], indexes: set[int] | range, timemap_rel: str
    ) -> list[str]:
        """Memento link-values: original, timemap, timegate, then the chosen mementos."""
        url = ascii_url(original)
        links = [
            f'<{url}>; rel="original"',
            f'<{self.timemap_url(url)}>; rel="{timemap_rel}"; type="{_LINK_FORMAT}"',
            f'<{self.base_url}/web/{url}>; rel="timegate"',
        ]
        for i in sorted(indexes):
            c = captures[i]
            links.append(
                f'<{self.replay_url(c.timestamp, c.url)}>; rel="{memento_rel(i, len(captures))}";'
                f' datetime="{http_date(c.timestamp)}"'
            )
        return links

    def _timemap(self, request: Request) -> Response:
        original = request.target.removeprefix(_TIMEMAP)
        captures = self.captures(original) if request.target.startswith(_TIMEMAP) else []
        if not captures:
            return Response(404, b"", content_type=_LINK_FORMAT)
        links = self._links(original, captures, range(len(captures)), "self")
        return Response(200, (",\n".join(links) + "\n").encode(), content_type=_LINK_FORMAT)

    # -- CDX and availability ----------------------------------------------------------------

    def _cdx(self, request: Request) -> Response:
        try:
            query = CdxQuery.from_params(request.params())
            if self.is_excluded(query.key, is_key=True):
                return Response(403, BLOCKED_SITE, content_type="text/plain")
            if self.cdx_prefix_blind and query.match_type == "prefix":
                return json_response([])
            visible = [c for c in self.captures() if not self.is_excluded(c.urlkey, True)]
            body, content_type = run_query(visible, request.params(), self.cdx_page_size)
        except CdxError as exc:
            return Response(400, f"{exc}\n".encode(), content_type="text/plain")
        return Response(200, body, content_type=content_type)

    def _availability(self, request: Request) -> Response:
        url = request.param("url") or ""
        captures = self.captures(url) if url else []
        answer: dict[str, Any] = {"url": url, "archived_snapshots": {}}
        if captures:
            c = nearest(captures, request.param("timestamp") or utc_timestamp())
            answer["archived_snapshots"]["closest"] = {
                "status": str(c.status),
                "available": True,
                "url": self.replay_url(c.timestamp, c.url),
                "timestamp": c.timestamp,
            }
        return json_response(answer)

    # -- Save Page Now -----------------------------------------------------------------------

    def _save(self, request: Request) -> Response:
        if request.method == "POST":
            return self._spn2_submit(request)
        original = request.target[len("/save/") :]
        if not original:
            return Response(400, b"<html><body>No URL given</body></html>")
        capture = self.add(full_url(original), utc_timestamp(), b"saved")
        return Response(302, headers={"Location": self.replay_url(capture.timestamp, capture.url)})

    def _spn2_submit(self, request: Request) -> Response:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        url = form.get("url") or request.target.removeprefix("/save").lstrip("/")
        if not url:
            return json_response({"status": "error", "status_ext": "error:invalid-url-syntax"})
        job_id = "spn2-" + secrets.token_hex(20)
        with self._data_lock:
            self._jobs[job_id] = _SaveJob(full_url(url))
        return json_response({"url": url, "job_id": job_id})

    def _save_status(self, request: Request) -> Response:
        job_id = request.path.removeprefix("/save/status/")
        with self._data_lock:
            job = self._jobs.get(job_id)
            if job is None:
                return json_response({"status": "error", "status_ext": "error:not-found"})
            job.polls += 1
            if job.polls <= self.spn2_pending_polls:
                return json_response({"status": "pending", "job_id": job_id})
            if job.result is None:
                job.result = {"job_id": job_id, **self._finish_job(job)}
            return json_response(job.result)

    def _finish_job(self, job: _SaveJob) -> dict[str, Any]:
        error = self.spn2_error
        if not error or self.spn2_error_saves:
            capture = self.add(job.url, utc_timestamp(), b"saved")
        if error:
            return {"status": "error", "status_ext": error, "message": error}
        return {"status": "success", "timestamp": capture.timestamp, "original_url": job.url}
