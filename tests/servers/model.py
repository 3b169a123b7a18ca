"""What the fake archive stores, and the canonical forms the real archive indexes it by.

The Wayback Machine finds captures by SURT key, not by the URL string: http and https, `www.`,
host case, raw non-ASCII and its UTF-8 percent-encoding all meet under one key. Timestamps are
14 digits, and partial ones are padded before measuring distance. Getting these forms right is
the point of the fake archive, so they live here, apart from the HTTP plumbing.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

import surt

__all__ = [
    "Capture",
    "ascii_url",
    "full_url",
    "http_date",
    "nearest",
    "timestamp_datetime",
    "url_key",
    "utc_timestamp",
]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):/+")
_TIMESTAMP = re.compile(r"\d{14}")
# Everything printable in ASCII except space stays as is, so existing %XX escapes survive.
_URL_SAFE = "!#$%&'()*+,-./:;=?@[]^_`{|}~"


def full_url(url: str) -> str:
    """Give a URL a scheme and two slashes: `http:/x.com/a` and `x.com/a` -> `http://x.com/a`.

    Archive paths arrive like this because proxies collapse `//` and people drop the scheme.
    """
    match = _SCHEME.match(url)
    if match:
        return f"{match.group(1).lower()}://{url[match.end() :]}"
    return "http://" + url


def url_key(url: str) -> str:
    """The SURT key the archive indexes a URL under (surt percent-encodes raw non-ASCII as UTF-8
    and lower-cases escapes, so raw CJK and `%E6%96%B0` give the same key)."""
    return surt.surt(full_url(url))


def ascii_url(url: str) -> str:
    """Percent-encode what cannot go in an HTTP header (non-ASCII as UTF-8, spaces, controls),
    leaving existing escapes and URL punctuation untouched."""
    return quote(url, safe=_URL_SAFE)


def timestamp_datetime(ts: str) -> datetime:
    """A 1-14 digit timestamp as a UTC datetime, padded and clamped the way the archive reads it:
    `2021` -> 2021-01-01 00:00:00, month 13 -> December, 31 February -> 28/29 February."""
    digits = ts + "00000101000000"[len(ts) :]
    year = max(int(digits[0:4]), 1)
    month = min(max(int(digits[4:6]), 1), 12)
    day = min(max(int(digits[6:8]), 1), calendar.monthrange(year, month)[1])
    hour, minute, second = (min(int(digits[i : i + 2]), 59) for i in (8, 10, 12))
    return datetime(year, month, day, min(hour, 23), minute, second, tzinfo=UTC)


def http_date(ts: str) -> str:
    """RFC 1123 date of a timestamp, as in Memento-Datetime: `Fri, 01 Jan 2021 00:00:00 GMT`."""
    return format_datetime(timestamp_datetime(ts), usegmt=True)


def utc_timestamp() -> str:
    """The current UTC time as a 14-digit timestamp."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


@dataclass
class Capture:
    """One archived response. `url` keeps the original URL exactly as given."""

    url: str
    timestamp: str
    body: bytes = b""
    mimetype: str = "text/html"
    status: int = 200
    location: str | None = None  # archived redirects (3xx): where the site redirected
    # the site's own headers when captured; replayed as `X-Archive-Orig-<name>`, as
    # archive.org does (an archived 429's Retry-After is not the archive's)
    orig_headers: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    seq: int = field(default=0, repr=False, compare=False)  # insertion order, breaks ties
    urlkey: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _TIMESTAMP.fullmatch(self.timestamp):
            raise ValueError(f"timestamp must be 14 digits, got {self.timestamp!r}")
        self.urlkey = url_key(self.url)

    @property
    def digest(self) -> str:
        """Base32 SHA-1 of the body, as in the CDX `digest` field."""
        return base64.b32encode(hashlib.sha1(self.body).digest()).decode()

    @property
    def sort_key(self) -> tuple[str, str, int]:
        return (self.urlkey, self.timestamp, self.seq)

    def seconds_from(self, ts: str) -> float:
        return abs((timestamp_datetime(self.timestamp) - timestamp_datetime(ts)).total_seconds())


def nearest(captures: list[Capture], ts: str) -> Capture:
    """The capture closest in time to `ts` (1-14 digits); the earlier one on a tie."""
    return min(sorted(captures, key=lambda c: c.timestamp), key=lambda c: c.seconds_from(ts))
