"""Requests to a Wayback-compatible archive: replay checks and CDX queries.

Requests go to the configured `[archive] base_url`, never to web.archive.org directly, so a
mirror or a local test archive can stand in. The snapshot check asks the replay endpoint for the
capture with `id_` (raw bytes, no rewriting) and does not follow redirects, because the archive's
redirect is the answer: a 302 without `Memento-Datetime` means "not at that timestamp, here is
the nearest"; a 3xx *with* `Memento-Datetime` is an archived redirect (the site itself redirected
when captured).
"""

from __future__ import annotations

import json
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

from .client import HttpClient
from .errors import RequestFailed
from .status import CheckResult, UrlStatus, archive_could_not_answer, status_for_http
from .urls import WaybackURL, http_date_timestamp, parse_wayback_url

CDX_PATH = "/cdx/search/cdx"
MAX_CDX_PAGES = 1000
CDX_FIELDS = "urlkey,timestamp,original,mimetype,statuscode,digest,length"


class CdxRow(NamedTuple):
    """One CDX line (a tuple, not a dict: a page holds up to `cdx_page_size` of them)."""

    urlkey: str | None
    timestamp: str | None
    original: str | None
    mimetype: str | None
    statuscode: str | None
    digest: str | None
    length: str | None


class Archive:
    """One Wayback-compatible archive: the Wayback Machine (`/web/...`, `/cdx/search/cdx`) or
    a pywb collection (`base_url` ends with the collection: `/<coll>/...`, `/<coll>/cdx`)."""

    def __init__(self, client: HttpClient, base_url: str, kind: str = "wayback"):
        self.client = client
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        self.replay_prefix = self.base_url + ("/web" if kind == "wayback" else "")
        self.cdx_url = self.base_url + (CDX_PATH if kind == "wayback" else "/cdx")
        self._prefix_path = urlsplit(self.replay_prefix).path

    def replay_url(self, snapshot_url: str, modifier: str = "id_") -> str:
        wayback = parse_wayback_url(snapshot_url)
        return self.capture_url(wayback.timestamp, wayback.original, modifier)

    def capture_url(self, timestamp: str, original: str, modifier: str = "id_") -> str:
        return f"{self.replay_prefix}/{timestamp}{modifier}/{original}"

    def parse_replay(self, url: str) -> WaybackURL | None:
        """A replay URL of this archive (absolute, or a path) as a WaybackURL; None if not."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if not path.startswith(self._prefix_path + "/"):
            return None
        return parse_wayback_url("/web" + path[len(self._prefix_path):])

    def served_capture(self, response, asked: WaybackURL) -> WaybackURL:
        """Which capture a 200 really is: pywb serves the nearest capture in place (with
        Content-Location and Memento-Datetime) where the Wayback Machine redirects."""
        served = self.parse_replay(response.headers.get("content-location", "")) or \
            self.parse_replay(response.url)
        when = http_date_timestamp(response.headers.get("memento-datetime"))
        timestamp = (served.timestamp if served else None) or when or asked.timestamp
        return WaybackURL(timestamp, "", asked.original)

    async def check_snapshot(self, snapshot_url: str) -> CheckResult:
        """ok (exact capture), redirected (nearest or archived redirect), not_found, ..."""
        wayback = parse_wayback_url(snapshot_url)
        try:
            response = await self.client.get(self.replay_url(snapshot_url), "replay",
                                             follow_redirects=False, read_body=False)
        except RequestFailed as exc:
            return CheckResult.failed(snapshot_url, exc, archive=True)
        result = CheckResult(snapshot_url, status_for_http(response.status_code),
                             response.status_code, attempts=response.attempts,
                             elapsed_ms=response.elapsed_ms,
                             inconclusive=archive_could_not_answer(response.status_code,
                                                                   response.headers))
        if result.status == UrlStatus.OK:
            served = self.served_capture(response, wayback)
            result.capture_timestamp = served.timestamp
            result.final_url = served.canonical("")
            if served.timestamp != wayback.timestamp:
                result.status = UrlStatus.REDIRECTED
                result.error = f"no capture at {wayback.timestamp}; nearest is {served.timestamp}"
        elif result.status == UrlStatus.REDIRECTED:
            self._read_redirect(result, response, wayback)
        else:
            result.error = f"archive answered HTTP {response.status_code}"
        return result

    def _read_redirect(self, result: CheckResult, response, wayback) -> None:
        location = response.headers.get("location", "")
        target = self.parse_replay(location)
        if "memento-datetime" in response.headers:
            result.capture_timestamp = wayback.timestamp
            result.error = f"archived redirect: the site redirected to {location} when captured"
            result.final_url = target.canonical("") if target else location
        elif target is not None:
            result.capture_timestamp = target.timestamp
            result.final_url = target.canonical("")
            reason = response.headers.get("x-archive-redirect-reason", "")
            result.error = f"no capture at {wayback.timestamp}; nearest is {target.timestamp}" + (
                f" ({reason})" if reason else "")
        else:
            result.error = f"archive redirected outside the archive: {location}"

    async def cdx_pages(self, url: str, match_type: str, *, page_size: int,
                        resume_key: str | None = None, from_ts: str | None = None):
        """Yield (CdxRows, resume key or None) for each page of one CDX query.

        Raises RequestFailed when a page cannot be read; the caller keeps the last resume key
        so the query can go on from there (in this run or the next)."""
        for _ in range(MAX_CDX_PAGES):
            params = {"url": url, "matchType": match_type, "output": "json"}
            if self.kind == "wayback":  # pywb has no resume keys: one answer holds it all
                params.update(fl=CDX_FIELDS, limit=str(page_size), showResumeKey="true")
            if resume_key:
                params["resumeKey"] = resume_key
            if from_ts:
                params["from"] = from_ts
            response = await self.client.get(f"{self.cdx_url}?{urlencode(params)}", "cdx",
                                             max_bytes=200_000_000)
            if response.status_code != 200:
                raise RequestFailed(status_for_http(response.status_code),
                                    f"CDX answered HTTP {response.status_code}",
                                    response.status_code)
            rows, resume_key = parse_cdx_json(response.body)
            del response  # the body is no longer needed while the caller stores the page
            yield rows, resume_key
            if not resume_key:
                return
        raise RequestFailed(UrlStatus.SERVER_ERROR, f"CDX query {url} passed {MAX_CDX_PAGES} pages")


def parse_cdx_json(body: bytes) -> tuple[list[CdxRow], str | None]:
    """(rows, resume key or None) from a CDX `output=json` answer.

    The Wayback Machine's: an array of arrays, the first row naming the fields; `[]` then
    `[key]` at the end carry the resume key. pywb's: one JSON object per line, with `url`,
    `mime` and `status` for `original`, `mimetype` and `statuscode`."""
    stripped = (body or b"").lstrip()
    if stripped.startswith(b"{"):
        return _parse_cdx_lines(stripped), None
    try:
        rows = json.loads(body or b"[]")
    except ValueError as exc:
        raise RequestFailed(UrlStatus.SERVER_ERROR, f"CDX answer is not JSON: {exc}") from None
    if not isinstance(rows, list) or not rows:
        return [], None
    resume_key = None
    if len(rows) >= 2 and rows[-2] == [] and len(rows[-1]) == 1:
        resume_key = rows[-1][0]
        rows = rows[:-2]
    if not rows:
        return [], resume_key
    where = [rows[0].index(name) if name in rows[0] else None for name in CdxRow._fields]
    return [_cdx_row(r, where) for r in rows[1:] if r], resume_key


def _cdx_row(values: list, where: list[int | None]) -> CdxRow:
    return CdxRow(*(values[i] if i is not None and i < len(values) else None for i in where))


_PYWB_FIELDS = {"url": "original", "mime": "mimetype", "status": "statuscode"}


def _parse_cdx_lines(body: bytes) -> list[CdxRow]:
    rows = []
    for line in body.splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise RequestFailed(UrlStatus.SERVER_ERROR,
                                    f"CDX line is not JSON: {exc}") from None
            named = {_PYWB_FIELDS.get(k, k): v for k, v in record.items()}
            rows.append(CdxRow(*(named.get(name) for name in CdxRow._fields)))
    return rows
