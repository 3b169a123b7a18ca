"""URLs as the corpus writes them, and Wayback snapshot URLs.

The corpus holds URLs with raw CJK characters, `%20` and `%EF%BF%BD` mixed in one string. They
are stored byte-faithfully (exactly as written) and turned into a request URL by
`encode_once`, which percent-encodes what must be encoded and leaves existing escapes alone, so
nothing reaches a server encoded twice. Wayback URLs (`/web/<ts><mod>/<original>`) are parsed
here and nowhere else.
"""

from __future__ import annotations

import calendar
import datetime as dt
import email.utils
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, urljoin, urlsplit

T = TypeVar("T")
ARCHIVE_HOSTS = frozenset({"web.archive.org", "wayback.archive.org"})
CANONICAL_ARCHIVE = "https://web.archive.org"

# Characters a URL may carry unescaped (RFC 3986 reserved + unreserved); '%' is handled apart.
_SAFE = "-._~:/?#[]@!$&'()*+,;=%"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NEEDS_ENCODING = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]|%(?![0-9A-Fa-f]{2})")
_WAYBACK_PATH = re.compile(r"^/web/(?P<ts>[0-9]{1,14})(?P<mod>[a-z]{2}_)?/(?P<original>.+)$", re.S)
_SCHEME_SLASH = re.compile(r"^(https?):/+", re.I)
_HAS_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
# http(s)://host[:port] then a path, query, fragment or the end: what urlsplit reads as an
# http(s) URL with a host (anything else is left to urlsplit)
_PLAIN_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]*)?(?:[/?#]|\Z)", re.I)
_ARCHIVE_PREFIX = re.compile(r"https?://(?:web|wayback)\.archive\.org(?=/web/)", re.I)


def encode_once(url: str) -> str:
    """Percent-encode a URL exactly once.

    Non-ASCII characters become their UTF-8 escapes, spaces and other unsafe bytes are escaped,
    and an existing valid `%XX` escape is kept as it is. A lone `%` becomes `%25`.
    """
    if not _NEEDS_ENCODING.search(url):
        return url
    return quote(_LONE_PERCENT.sub("%25", url), safe=_SAFE, errors="surrogatepass")


@dataclass(frozen=True)
class WaybackURL:
    """A parsed snapshot URL: https://web.archive.org/web/<timestamp><modifier>/<original>."""

    timestamp: str  # 1 to 14 digits, as written
    modifier: str  # "", "id_", "im_", ...
    original: str  # the embedded original URL, as written

    def replay_path(self, modifier: str | None = None, timestamp: str | None = None) -> str:
        """The path (and query) of this capture on any Wayback-compatible archive."""
        mod = self.modifier if modifier is None else modifier
        ts = self.timestamp if timestamp is None else timestamp
        return f"/web/{ts}{mod}/{self.original}"

    def canonical(self, modifier: str | None = None) -> str:
        """This capture as an archive.org URL (how the ledger names it)."""
        return CANONICAL_ARCHIVE + self.replay_path(modifier)


def parse_wayback_url(url: str) -> WaybackURL | None:
    """Parse an absolute or archive-relative Wayback snapshot URL; None if it is not one.

    Never raises. Accepts `http(s)://web.archive.org/web/...` and `/web/...`; a single slash
    after the embedded scheme (`https:/host`) is read as two, as the archive does.
    """
    return _parse_wayback_url(url) if isinstance(url, str) else None


@functools.lru_cache(maxsize=4096)  # an image URL is parsed in several steps of its save
def _parse_wayback_url(url: str) -> WaybackURL | None:
    if url.startswith("/web/"):
        path = url
    elif prefix := _ARCHIVE_PREFIX.match(url):
        path = url[prefix.end():]
    else:
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or (parts.hostname or "") not in ARCHIVE_HOSTS:
            return None
        path = url[url.index(parts.netloc) + len(parts.netloc) :]
    match = _WAYBACK_PATH.match(path)
    if not match:
        return None
    original = _SCHEME_SLASH.sub(lambda m: m.group(1) + "://", match["original"], count=1)
    if not _HAS_SCHEME.match(original):
        original = "http://" + original  # the archive reads a bare host as http
    if not is_http_url(original):
        return None
    return WaybackURL(match["ts"], match["mod"] or "", original)


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host; never raises."""
    if isinstance(url, str) and _PLAIN_HTTP_URL.match(url):  # the usual case, cheaply
        return True
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def resolve_link(href: str, page_url: str) -> str:
    """Resolve a body link against the article's snapshot; `/web/...` goes to archive.org."""
    href = href.strip()
    if href.startswith("/web/"):
        return CANONICAL_ARCHIVE + href
    if href.startswith(("https://", "http://")):
        return href  # already absolute: nothing to join
    try:
        return urljoin(page_url, href)
    except ValueError:
        return href


def same_original(a: str, b: str) -> bool:
    """Do two original URLs name the same page, ignoring scheme, `www.`, host case, encoding?"""
    return a == b or canonical_key(a) == canonical_key(b)


@functools.lru_cache(maxsize=4096)  # asked several times while one image is saved
def canonical_key(url: str) -> str:
    """The archive's canonical form (SURT) of a URL, so that spellings of one page meet."""
    import surt

    try:
        return surt.surt(encode_once(url))
    except Exception:  # surt raises assorted errors on junk; a junk URL is its own key
        return url


def rebase(url: str, origins: dict[str, str]) -> str:
    """Swap the scheme://host[:port] of url for a configured stand-in origin, if any."""
    for origin, stand_in in origins.items():
        prefix = origin.rstrip("/")
        if url.lower().startswith(prefix.lower()) and url[len(prefix):][:1] in ("", "/", "?"):
            return stand_in.rstrip("/") + url[len(prefix):]
    return url


def http_date_timestamp(value: str | None) -> str | None:
    """An HTTP date (`Memento-Datetime`, a TimeMap's datetime) as a 14-digit timestamp."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).strftime("%Y%m%d%H%M%S")
    except (TypeError, ValueError):
        return None


def timestamp_datetime(timestamp: str) -> dt.datetime:
    """A 1-14 digit archive timestamp as a UTC datetime, padded and clamped the way the
    archive reads it: `2021` is 2021-01-01 00:00:00, month 13 December, 31 February the last
    day of February."""
    digits = (timestamp + "00000101000000"[len(timestamp):])[:14]
    if not digits.isdigit():
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    year = max(int(digits[0:4]), 1)
    month = min(max(int(digits[4:6]), 1), 12)
    day = min(max(int(digits[6:8]), 1), calendar.monthrange(year, month)[1])
    hour, minute, second = (min(int(digits[i:i + 2]), limit)
                            for i, limit in ((8, 23), (10, 59), (12, 59)))
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def time_distance(a: str, b: str) -> float:
    """Seconds between two archive timestamps (real time: not the difference of the digits,
    which puts 20191231230000 nearer to 20191231000000 than to 20200101000000)."""
    return abs((timestamp_datetime(a) - timestamp_datetime(b)).total_seconds())


def nearest_in_time(items: Iterable[T], timestamp: str) -> T | None:
    """The item (anything with a `.timestamp`) nearest to `timestamp` in real time; the first
    in order on a tie. The one nearest-capture rule of preserver (CDX index, TimeMaps)."""
    return min(items, key=lambda item: time_distance(item.timestamp, timestamp), default=None)
