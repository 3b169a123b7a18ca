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
from urllib.parse import urlencode, urlsplit

from .client import HttpClient
from .errors import RequestFailed
from .status import CheckResult, UrlStatus, status_for_http
from .urls import parse_wayback_url

CDX_PATH = "/cdx/search/cdx"
MAX_CDX_PAGES = 1000
CDX_FIELDS = "urlkey,timestamp,original,mimetype,statuscode,digest,length"


class Archive:
    def __init__(self, client: HttpClient, base_url: str):
        self.client = client
        self.base_url = base_url.rstrip("/")

    def replay_url(self, snapshot_url: str, modifier: str = "id_") -> str:
        wayback = parse_wayback_url(snapshot_url)
        return self.base_url + wayback.replay_path(modifier)

    async def check_snapshot(self, snapshot_url: str) -> CheckResult:
        """ok (exact capture), redirected (nearest or archived redirect), not_found, ..."""
        wayback = parse_wayback_url(snapshot_url)
        try:
            response = await self.client.get(self.replay_url(snapshot_url), "replay",
                                             follow_redirects=False, read_body=False)
        except RequestFailed as exc:
            return CheckResult.failed(snapshot_url, exc)
        result = CheckResult(snapshot_url, status_for_http(response.status_code),
                             response.status_code, attempts=response.attempts,
                             elapsed_ms=response.elapsed_ms)
        if result.status == UrlStatus.OK:
            result.capture_timestamp = wayback.timestamp
            result.final_url = wayback.canonical("")
        elif result.status == UrlStatus.REDIRECTED:
            self._read_redirect(result, response, wayback)
        else:
            result.error = f"archive answered HTTP {response.status_code}"
        return result

    def _read_redirect(self, result: CheckResult, response, wayback) -> None:
        location = response.headers.get("location", "")
        target = parse_wayback_url(urlsplit(location)._replace(scheme="", netloc="").geturl())
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
        """Yield (rows as dicts, resume key or None) for each page of one CDX query.

        Raises RequestFailed when a page cannot be read; the caller keeps the last resume key
        so the query can go on from there (in this run or the next)."""
        for _ in range(MAX_CDX_PAGES):
            params = {"url": url, "matchType": match_type, "output": "json", "fl": CDX_FIELDS,
                      "limit": str(page_size), "showResumeKey": "true"}
            if resume_key:
                params["resumeKey"] = resume_key
            if from_ts:
                params["from"] = from_ts
            response = await self.client.get(f"{self.base_url}{CDX_PATH}?{urlencode(params)}",
                                             "cdx", max_bytes=200_000_000)
            if response.status_code != 200:
                raise RequestFailed(status_for_http(response.status_code),
                                    f"CDX answered HTTP {response.status_code}",
                                    response.status_code)
            rows, resume_key = parse_cdx_json(response.body)
            yield rows, resume_key
            if not resume_key:
                return
        raise RequestFailed(UrlStatus.SERVER_ERROR, f"CDX query {url} passed {MAX_CDX_PAGES} pages")


def parse_cdx_json(body: bytes) -> tuple[list[dict], str | None]:
    """(rows as {field: value}, resume key or None) from a CDX `output=json` answer: the first
    row names the fields; `[]` then `[key]` at the end carry the resume key."""
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
    header = rows[0]
    return [dict(zip(header, r, strict=False)) for r in rows[1:] if r], resume_key
