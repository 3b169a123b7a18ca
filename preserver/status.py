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
    # never looked at: matches an exclude pattern ([live] exclude; method "config"), or the
    # archive holds it but will not show it (an exclusion page: 200 without Memento-Datetime,
    # or the CDX's 403 "Blocked Site Error"); `error` gives the reason
    EXCLUDED = "excluded"

    @property
    def is_good(self) -> bool:
        return self in (UrlStatus.OK, UrlStatus.REDIRECTED)


GOOD = frozenset({UrlStatus.OK.value, UrlStatus.REDIRECTED.value})
# Statuses that can only mean "we could not ask" when the archive is the one asked: its
# overload, its outage, our network. They never replace a verdict (see CheckResult).
ARCHIVE_SIDE = frozenset({UrlStatus.RATE_LIMITED, UrlStatus.TIMEOUT, UrlStatus.DNS_ERROR,
                          UrlStatus.CONNECTION_ERROR, UrlStatus.TLS_ERROR,
                          UrlStatus.SERVER_ERROR})
# On the live web the site itself speaks with a 5xx or a TLS failure; a 429, a timeout, a reset
# or a temporary DNS failure say nothing about the page. NXDOMAIN from a resolver that answers
# other names, and refusals confirmed by a second probe, are marked conclusive where they arise
# (`client`).
LIVE_INCONCLUSIVE = frozenset({UrlStatus.RATE_LIMITED, UrlStatus.TIMEOUT,
                               UrlStatus.DNS_ERROR, UrlStatus.CONNECTION_ERROR})


# What the views and reports call each URL status (one place says it; preserver.health and the
# Datasette views build their SQL lists from these): good (GOOD), could-not-ask (ARCHIVE_SIDE:
# inconclusive when the archive is asked), not looked at (EXCLUDED), and broken: every other
# status, a conclusive answer that the URL does not resolve.
BROKEN = frozenset(s.value for s in UrlStatus) - GOOD - ARCHIVE_SIDE - {UrlStatus.EXCLUDED.value}


def sql_list(values) -> str:
    """Statuses as an SQL list for `in (...)`, sorted: the same set always reads the same (a
    partial index applies only to a query whose WHERE repeats the index's text)."""
    return ", ".join(f"'{v}'" for v in sorted(str(v) for v in values))


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
    # said nothing about the URL itself (we could not ask): kept in `checks` as an attempt,
    # never replaces the URL's last conclusive verdict in `urls`
    inconclusive: bool = False
    # not even sent: its endpoint class was stopped for the run (nothing is recorded; the
    # URL stays due)
    not_sent: bool = False

    @classmethod
    def failed(cls, url: str, exc, archive: bool = False) -> CheckResult:
        """From a RequestFailed. When the archive could not be asked (network, rate limit,
        its own 5xx), the result says nothing about the capture itself: inconclusive. On the
        live web, only a failure `client` confirmed (`exc.conclusive`) is a verdict."""
        return cls(url, exc.status, exc.http_status, error=str(exc),
                   attempts=getattr(exc, "attempts", 0),
                   inconclusive=is_inconclusive(exc, archive),
                   not_sent=getattr(exc, "class_stopped", False)
                   and not getattr(exc, "attempts", 0))


def is_inconclusive(exc, archive: bool) -> bool:
    """Whether a RequestFailed says nothing about the URL it was for."""
    if getattr(exc, "class_stopped", False):
        return True
    if archive:
        return exc.status in ARCHIVE_SIDE
    return exc.status in LIVE_INCONCLUSIVE and not getattr(exc, "conclusive", False)


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

