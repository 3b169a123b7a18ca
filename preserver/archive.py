"""Requests to a Wayback-compatible archive: replay checks and CDX queries.

Requests go to the configured `[archive] base_url`, never to web.archive.org directly, so a
mirror or a local test archive can stand in. The snapshot check asks the replay endpoint for the
capture with `id_` (raw bytes, no rewriting) and does not follow redirects, because the archive's
redirect is the answer: a 302 without `Memento-Datetime` means "not at that timestamp, here is
the nearest"; a 3xx *with* `Memento-Datetime` is an archived redirect (the site itself redirected
when captured). Likewise any answer with `Memento-Datetime` is a capture, and its 404, 429 or 503
is the site's answer when captured (a verdict about the snapshot); a 2xx without it is the
archive's own page, not a capture: its exclusion page (`excluded`) or an error page (no verdict).
CDX pages count only when complete and well-formed (`parse_cdx_json`).
"""

from __future__ import annotations

import json
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

from .client import HttpClient
from .errors import RequestFailed
from .status import CheckResult, UrlStatus, status_for_http
from .urls import WaybackURL, http_date_timestamp, parse_wayback_url

CDX_PATH = "/cdx/search/cdx"
MAX_CDX_PAGES = 1000
CDX_FIELDS = "urlkey,timestamp,original,mimetype,statuscode,digest,length"
NOT_A_MEMENTO_MAX_BYTES = 1_000_000  # an exclusion or error page is read to tell which
# what the Wayback Machine says when a site's owner had it excluded: the replay's page (200,
# no Memento-Datetime) and the CDX's 403 (seen in recorded archive.org traffic)
EXCLUSION_MARKERS = ("This URL has been excluded from the Wayback Machine",
                     "AdministrativeAccessControlException", "Blocked Site Error")


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

    def served_capture(self, response, asked: WaybackURL) -> WaybackURL | None:
        """Which capture an answer really is: pywb serves the nearest capture in place (with
        Content-Location and Memento-Datetime) where the Wayback Machine redirects. None when
        the answer is no memento at all (no `Memento-Datetime`: an exclusion or error page):
        never the asked timestamp by default."""
        when = http_date_timestamp(response.headers.get("memento-datetime"))
        if when is None:
            return None
        served = self.parse_replay(response.headers.get("content-location", "")) or \
            self.parse_replay(response.url)
        return WaybackURL((served.timestamp if served else None) or when, "", asked.original)

    async def check_snapshot(self, snapshot_url: str) -> CheckResult:
        """ok (exact capture), redirected (nearest or archived redirect), not_found, ..."""
        wayback = parse_wayback_url(snapshot_url)
        try:
            response = await self._replay_answer(snapshot_url)
        except RequestFailed as exc:
            return CheckResult.failed(snapshot_url, exc, archive=True)
        result = CheckResult(snapshot_url, status_for_http(response.status_code),
                             response.status_code, attempts=response.attempts,
                             elapsed_ms=response.elapsed_ms)
        self._read_answer(result, response, wayback)
        return result

    async def _replay_answer(self, snapshot_url: str):
        """The replay's answer, headers only; the body too when it is a 2xx without
        `Memento-Datetime` (an exclusion or error page: its words tell which)."""
        url = self.replay_url(snapshot_url)
        response = await self.client.get(url, "replay", follow_redirects=False,
                                         read_body=False)
        if 200 <= response.status_code < 300 and not response.is_memento:
            response = await self.client.get(url, "replay", follow_redirects=False,
                                             max_bytes=NOT_A_MEMENTO_MAX_BYTES)
        return response

    def _read_answer(self, result: CheckResult, response, wayback: WaybackURL) -> None:
        code = response.status_code
        served = self.served_capture(response, wayback)
        if 200 <= code < 300 and served is None:
            read_not_a_memento(result, response)
        elif result.status == UrlStatus.OK:
            result.capture_timestamp = served.timestamp
            result.final_url = served.canonical("")
            if served.timestamp != wayback.timestamp:
                result.status = UrlStatus.REDIRECTED
                result.error = f"no capture at {wayback.timestamp}; nearest is {served.timestamp}"
        elif result.status == UrlStatus.REDIRECTED:
            self._read_redirect(result, response, wayback)
        elif served is not None:  # the capture is of an error page: a verdict, not an outage
            result.status = archived_status(code)
            result.capture_timestamp = served.timestamp
            result.error = f"archived HTTP {code}: the site answered {code} when captured " \
                           f"at {served.timestamp}"
        else:
            result.error = f"archive answered HTTP {code}"
            result.inconclusive = response.is_archive_trouble

    def _read_redirect(self, result: CheckResult, response, wayback) -> None:
        location = response.headers.get("location", "")
        target = self.parse_replay(location)
        if "memento-datetime" in response.headers:
            result.capture_timestamp = http_date_timestamp(
                response.headers["memento-datetime"]) or wayback.timestamp
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
                raise _cdx_refusal(response)
            rows, resume_key = parse_cdx_json(response.body, self.kind)
            del response  # the body is no longer needed while the caller stores the page
            yield rows, resume_key
            if not resume_key:
                return
        raise RequestFailed(UrlStatus.SERVER_ERROR, f"CDX query {url} passed {MAX_CDX_PAGES} pages")


def read_not_a_memento(result: CheckResult, response) -> None:
    """A 2xx without `Memento-Datetime` is the archive speaking, not a capture: an exclusion
    (a verdict about the URL, `excluded`) or an error page (no verdict: inconclusive)."""
    reason = exclusion_reason(response.body)
    if reason:
        result.status, result.error = UrlStatus.EXCLUDED, f"excluded by the archive: {reason}"
    else:
        result.status = UrlStatus.SERVER_ERROR
        result.inconclusive = True
        result.error = (f"the archive answered HTTP {response.status_code} without "
                        "Memento-Datetime: not a capture (an error page?)")


def exclusion_reason(body: bytes) -> str | None:
    """The archive's words if `body` is its exclusion page or blocked-site answer."""
    text = (body or b"")[:NOT_A_MEMENTO_MAX_BYTES].decode("utf-8", "replace")
    for marker in EXCLUSION_MARKERS:
        at = text.lower().find(marker.lower())
        if at >= 0:  # from the marker to the end of its line or HTML element
            return text[at:].split("\n")[0].split("<")[0].strip()[:200]
    return None


def archived_status(code: int) -> UrlStatus:
    """The status of a capture whose archived answer was an error: 404/410 not_found,
    another 4xx (an archived 429 included) client_error, 5xx server_error."""
    if code in (404, 410):
        return UrlStatus.NOT_FOUND
    return UrlStatus.CLIENT_ERROR if code < 500 else UrlStatus.SERVER_ERROR


def _cdx_refusal(response) -> RequestFailed:
    """A CDX answer other than 200: the blocked-site 403 is a verdict about the URL
    (`excluded`, not a reason to slow down); anything else is the archive's trouble."""
    code = response.status_code
    reason = exclusion_reason(response.body) if code == 403 else None
    if reason:
        return RequestFailed(UrlStatus.EXCLUDED, f"excluded by the archive: CDX answered "
                                                 f"HTTP 403 {reason}", code)
    return RequestFailed(status_for_http(code), f"CDX answered HTTP {code}", code)


class MalformedCdx(RequestFailed):
    """A CDX page that is not a complete, well-formed answer (an empty body, `{}`, cut
    JSON, an HTML error page): it says nothing, least of all "nothing archived"."""

    def __init__(self, why: str, body: bytes):
        super().__init__(UrlStatus.SERVER_ERROR,
                         f"malformed CDX answer ({why}; {len(body or b'')} bytes, "
                         f"starts {(body or b'')[:40]!r})")


def parse_cdx_json(body: bytes, kind: str = "wayback") -> tuple[list[CdxRow], str | None]:
    """(rows, resume key or None) from a CDX `output=json` answer; MalformedCdx unless the
    answer is complete and well-formed.

    The Wayback Machine's: an array of arrays, the first row naming the fields (`[]` alone when
    nothing matches); `[]` then `[key]` at the end carry the resume key. Only a whole array
    says where the data ends, so an empty body is an error. pywb's (`kind="pywb"`): one JSON
    object per line, with `url`, `mime` and `status` for `original`, `mimetype` and
    `statuscode`, and an empty body when nothing matches."""
    if kind == "pywb":
        return _parse_cdx_lines(body), None
    try:
        rows = json.loads(body or b"")
    except ValueError as exc:
        raise MalformedCdx(f"not JSON: {exc}", body) from None
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise MalformedCdx("not an array of arrays", body)
    resume_key = None
    if len(rows) >= 2 and rows[-2] == [] and len(rows[-1]) == 1:
        resume_key = rows[-1][0]
        rows = rows[:-2]
        if not isinstance(resume_key, str) or not resume_key:
            raise MalformedCdx("a resume key that is not a string", body)
    if not rows:
        return [], resume_key
    header = rows[0]
    if not all(isinstance(name, str) for name in header) or "timestamp" not in header \
            or not ({"urlkey", "original"} & set(header)):
        raise MalformedCdx("no header row", body)
    if any(len(r) != len(header) for r in rows[1:]):
        raise MalformedCdx(f"a row without the header's {len(header)} fields", body)
    where = [header.index(name) if name in header else None for name in CdxRow._fields]
    return [_cdx_row(r, where) for r in rows[1:]], resume_key


def _cdx_row(values: list, where: list[int | None]) -> CdxRow:
    return CdxRow(*(values[i] if i is not None else None for i in where))


_PYWB_FIELDS = {"url": "original", "mime": "mimetype", "status": "statuscode"}


def _parse_cdx_lines(body: bytes) -> list[CdxRow]:
    rows = []
    for line in (body or b"").splitlines():
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise MalformedCdx(f"a line that is not JSON: {exc}", body) from None
            if not isinstance(record, dict) or "timestamp" not in record \
                    or not ({"urlkey", "url"} & set(record)):
                raise MalformedCdx("a line that is not a CDX record", body)
            named = {_PYWB_FIELDS.get(k, k): v for k, v in record.items()}
            rows.append(CdxRow(*(named.get(name) for name in CdxRow._fields)))
    return rows
