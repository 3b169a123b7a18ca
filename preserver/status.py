"""Link outcomes as data: the status of a URL and of a saved image.

These strings are a contract: the ledger stores them, the Datasette views and reports filter
on them, and cron users grep for them. Add values; never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class UrlStatus(StrEnum):
    OK = "ok"  # the capture exists at exactly that timestamp / the page answers 200
    REDIRECTED = "redirected"  # the archive or site moved us elsewhere (final_url says where)
    NOT_FOUND = "not_found"  # 404/410, or nothing archived
    SOFT_404 = "soft_404"  # 200 that is really a "page not found" (or a bounce to the home page)
    CLIENT_ERROR = "client_error"  # any other 4xx
    SERVER_ERROR = "server_error"  # 5xx after retries
    RATE_LIMITED = "rate_limited"  # 429 after retries, or the endpoint class was stopped
    TIMEOUT = "timeout"  # connect/read/total deadline passed
    DNS_ERROR = "dns_error"  # the host name does not resolve
    CONNECTION_ERROR = "connection_error"  # refused, reset, or cut short
    TLS_ERROR = "tls_error"  # certificate or handshake failure
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BLOCKED = "blocked"  # refused by our safety policy (scheme, private address)
    INVALID = "invalid"  # not a URL we can request

    @property
    def is_good(self) -> bool:
        return self in (UrlStatus.OK, UrlStatus.REDIRECTED)

    @property
    def is_network_failure(self) -> bool:
        """Failures that say more about the host than about this one URL."""
        return self in (UrlStatus.DNS_ERROR, UrlStatus.CONNECTION_ERROR, UrlStatus.TLS_ERROR)


GOOD = frozenset({UrlStatus.OK.value, UrlStatus.REDIRECTED.value})
OUR_SIDE = frozenset({UrlStatus.RATE_LIMITED})
ARCHIVE_SIDE = OUR_SIDE | {UrlStatus.TIMEOUT, UrlStatus.DNS_ERROR, UrlStatus.CONNECTION_ERROR,
                           UrlStatus.TLS_ERROR, UrlStatus.SERVER_ERROR}


class ImageStatus(StrEnum):
    SAVED = "saved"  # bytes on disk, validated, hash recorded
    MISSING = "missing"  # the archive never captured it
    INVALID = "invalid"  # what came back is not an image (e.g. an HTML error page)
    TOO_LARGE = "too_large"  # over [security] max_image_bytes
    FAILED = "failed"  # network, rate limit, disk: try again next run
    # the bytes differ from the archive's CDX digest, for every capture tried: kept on disk
    # (local_path) with the digest that was expected (expected_digest); tried again next run
    CORRUPT = "corrupt"


class ParseStatus(StrEnum):
    OK = "ok"
    REPAIRED = "repaired"  # control characters dropped, then parsed
    ERROR = "error"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclass
class CheckResult:
    """The outcome of checking one URL, as the ledger records it."""

    url: str  # as the corpus writes it
    status: UrlStatus
    http_status: int | None = None
    final_url: str | None = None
    capture_timestamp: str | None = None  # the capture the archive answered with
    error: str | None = None
    attempts: int = 0
    elapsed_ms: int = 0
    coverage: dict | None = None  # captures, first_capture, last_capture (originals)
    method: str = "replay"  # how it was answered: replay, cdx, live
    inconclusive: bool = False  # said nothing about the URL itself (our side, rate limits)

    @classmethod
    def failed(cls, url: str, exc, archive: bool = False) -> CheckResult:
        """From a RequestFailed. When the archive could not be asked (network, rate limit,
        its own 5xx), the result says nothing about the capture itself: inconclusive."""
        side = ARCHIVE_SIDE if archive else OUR_SIDE
        return cls(url, exc.status, exc.http_status, error=str(exc),
                   attempts=getattr(exc, "attempts", 0), inconclusive=exc.status in side)


def status_for_http(code: int) -> UrlStatus:
    """The status of a final HTTP answer, before any soft-404 or redirect reading."""
    if 200 <= code < 300:
        return UrlStatus.OK
    if 300 <= code < 400:
        return UrlStatus.REDIRECTED
    if code in (404, 410):
        return UrlStatus.NOT_FOUND
    if code == 429:
        return UrlStatus.RATE_LIMITED
    if 400 <= code < 500:
        return UrlStatus.CLIENT_ERROR
    return UrlStatus.SERVER_ERROR
