"""Checking an original URL on the live web.

Redirects are followed (each hop passes the safety checks in `client`). A 200 is not taken at
its word: a deep link that lands on the site's home page, or a page whose title says "not
found", is a soft 404 — dead sites and domain parkers answer that way.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .client import HttpClient, Response
from .errors import RequestFailed
from .status import CheckResult, UrlStatus, status_for_http

SNIFF_BYTES = 256_000
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_NOT_FOUND = re.compile(
    r"\b(404|not found|page not found|no longer available|domain (is )?for sale)\b"
    r"|找不到|頁面不存在",
    re.I,
)


async def check_live(client: HttpClient, url: str) -> CheckResult:
    """Status of one page on the live web."""
    try:
        response = await client.get(url, "live", max_bytes=SNIFF_BYTES)
    except RequestFailed as exc:
        result = CheckResult.failed(url, exc)
        result.method = "live"
        return result
    status = _status_of(url, response)
    result = CheckResult(url, status, response.status_code, attempts=response.attempts,
                         elapsed_ms=response.elapsed_ms, method="live",
                         inconclusive=response.status_code == 429)  # the site is busy
    if response.redirects:
        result.final_url = response.redirects[-1]
    if status == UrlStatus.SOFT_404:
        result.error = "answered 200 but the page says it is not there (soft 404)"
    elif not status.is_good:
        result.error = f"HTTP {response.status_code}"
    return result


def _status_of(url: str, response: Response) -> UrlStatus:
    status = status_for_http(response.status_code)
    if status != UrlStatus.OK:
        return status
    if response.redirects and _is_home_page(response.redirects[-1], url):
        return UrlStatus.SOFT_404
    if _title_says_not_found(response.body):
        return UrlStatus.SOFT_404
    return UrlStatus.REDIRECTED if response.redirects else UrlStatus.OK


def _is_home_page(final: str, original: str) -> bool:
    final_path = urlsplit(final).path.strip("/")
    return final_path == "" and urlsplit(original).path.strip("/") != ""


def _title_says_not_found(body: bytes) -> bool:
    match = _TITLE.search(body[:SNIFF_BYTES])
    if not match:
        return False
    title = match.group(1).decode("utf-8", "replace")
    return bool(_NOT_FOUND.search(title))
