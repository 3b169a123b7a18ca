"""The CDX search API (`/cdx/search/cdx`) as pure functions over a list of captures.

Bulk prefix queries with resume keys are how the project covers 49k articles within the
archive's 30-requests-a-minute CDX limit, so the fake must page, filter, collapse and format
exactly as archive.org does: JSON array of arrays with a header row (plain `[]` when empty),
text lines otherwise, and a resume key after an empty row when more remains.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .model import Capture, url_key

__all__ = ["FIELDS", "CdxError", "CdxQuery", "run_query"]

FIELDS: dict[str, Callable[[Capture], str]] = {
    "urlkey": lambda c: c.urlkey,
    "timestamp": lambda c: c.timestamp,
    "original": lambda c: c.url,
    "mimetype": lambda c: c.mimetype,
    "statuscode": lambda c: str(c.status),
    "digest": lambda c: c.digest,
    "length": lambda c: str(len(c.body)),
}
MATCH_TYPES = ("exact", "prefix", "host", "domain")
JSON = "application/json"


class CdxError(ValueError):
    """A malformed query; the archive answers 400."""


@dataclass
class Filter:
    field: str
    pattern: re.Pattern[str]
    negate: bool

    @classmethod
    def parse(cls, text: str) -> Filter:
        negate = text.startswith("!")
        name, sep, regex = text.removeprefix("!").partition(":")
        if not sep or name not in FIELDS:
            raise CdxError(f"bad filter {text!r}")
        try:
            return cls(name, re.compile(regex), negate)
        except re.error as exc:
            raise CdxError(f"bad filter regex {regex!r}: {exc}") from None

    def keeps(self, capture: Capture) -> bool:
        return bool(self.pattern.fullmatch(FIELDS[self.field](capture))) != self.negate


@dataclass
class CdxQuery:
    url: str
    match_type: str = "exact"
    fields: list[str] = field(default_factory=lambda: list(FIELDS))
    json: bool = False
    filters: list[Filter] = field(default_factory=list)
    collapses: list[tuple[str, int | None]] = field(default_factory=list)
    from_ts: str = ""
    to_ts: str = ""
    limit: int | None = None
    show_resume_key: bool = False
    resume_after: tuple[str, str, int] | None = None
    key: str = field(init=False)  # the SURT key (or key prefix) the url stands for

    def __post_init__(self) -> None:
        self.key = url_key(self.url)
        if self.match_type == "prefix" and self.url.endswith("/") and not self.key.endswith("/"):
            self.key += "/"  # like pywb: a trailing slash the SURT dropped still limits the prefix

    @classmethod
    def from_params(cls, params: Iterable[tuple[str, str]]) -> CdxQuery:
        multi: dict[str, list[str]] = {}
        for name, value in params:
            multi.setdefault(name, []).append(value)
        one = {name: values[-1] for name, values in multi.items()}
        if not one.get("url"):
            raise CdxError("missing url")
        url, match_type = _url_and_match_type(one["url"], one.get("matchType"))
        return cls(
            url=url,
            match_type=match_type,
            fields=_fields(one.get("fl", "")),
            json=one.get("output") == "json",
            filters=[Filter.parse(f) for f in multi.get("filter", [])],
            collapses=[_collapse(c) for c in multi.get("collapse", [])],
            from_ts=one.get("from", ""),
            to_ts=one.get("to", ""),
            limit=_int(one.get("limit")),
            show_resume_key=one.get("showResumeKey", "").lower() == "true",
            resume_after=decode_resume_key(one["resumeKey"]) if one.get("resumeKey") else None,
        )

    def matches(self, capture: Capture) -> bool:
        return (
            self._url_matches(capture.urlkey)
            and capture.timestamp >= self.from_ts.ljust(14, "0")
            and (not self.to_ts or capture.timestamp[: len(self.to_ts)] <= self.to_ts)
            and all(f.keeps(capture) for f in self.filters)
        )

    def _url_matches(self, key: str) -> bool:
        if self.match_type == "exact":
            return key == self.key
        if self.match_type == "prefix":
            return key.startswith(self.key)
        host, wanted_host = key.split(")", 1)[0], self.key.split(")", 1)[0]
        if self.match_type == "host":
            return host == wanted_host
        return host == wanted_host or host.startswith(wanted_host + ",")


def _url_and_match_type(url: str, match_type: str | None) -> tuple[str, str]:
    implied = "exact"
    if url.endswith("*"):
        url, implied = url[:-1], "prefix"
    elif url.startswith("*."):
        url, implied = url[2:], "domain"
    match_type = match_type or implied
    if match_type not in MATCH_TYPES:
        raise CdxError(f"bad matchType {match_type!r}")
    return url, match_type


def _fields(fl: str) -> list[str]:
    names = [name.strip() for name in fl.split(",") if name.strip()] or list(FIELDS)
    unknown = [name for name in names if name not in FIELDS]
    if unknown:
        raise CdxError(f"unknown field(s) {unknown}")
    return names


def _collapse(text: str) -> tuple[str, int | None]:
    name, _, length = text.partition(":")
    if name not in FIELDS:
        raise CdxError(f"bad collapse {text!r}")
    return name, _int(length)


def _int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise CdxError(f"not a number: {text!r}") from None


def encode_resume_key(capture: Capture) -> str:
    raw = f"{capture.urlkey} {capture.timestamp} {capture.seq}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_resume_key(key: str) -> tuple[str, str, int]:
    try:
        urlkey, timestamp, seq = base64.urlsafe_b64decode(key.encode()).decode().rsplit(" ", 2)
        return urlkey, timestamp, int(seq)
    except (ValueError, binascii.Error):
        raise CdxError(f"bad resumeKey {key!r}") from None


def collapse(captures: list[Capture], name: str, length: int | None) -> list[Capture]:
    """Drop each row whose field (first `length` chars) equals the previous row's."""
    kept: list[Capture] = []
    previous = None
    for capture in captures:
        value = FIELDS[name](capture)[:length]
        if value != previous:
            kept.append(capture)
        previous = value
    return kept


def select(
    captures: Iterable[Capture], query: CdxQuery, page_size: int
) -> tuple[list[Capture], str]:
    """The rows of one page, and the resume key ('' when none is due)."""
    rows = sorted((c for c in captures if query.matches(c)), key=lambda c: c.sort_key)
    for name, length in query.collapses:
        rows = collapse(rows, name, length)
    if query.limit is not None and query.limit < 0:
        return rows[query.limit :], ""
    if query.resume_after is not None:
        rows = [c for c in rows if c.sort_key > query.resume_after]
    size = min(page_size, query.limit) if query.limit is not None else page_size
    page, rest = rows[:size], rows[size:]
    more = bool(rest) and bool(page) and query.show_resume_key
    return page, encode_resume_key(page[-1]) if more else ""


def render(page: list[Capture], resume_key: str, query: CdxQuery) -> tuple[bytes, str]:
    """The answer body and its Content-Type."""
    rows = [[FIELDS[name](c) for name in query.fields] for c in page]
    if query.json:
        lines = [query.fields, *rows, *([[], [resume_key]] if resume_key else [])] if rows else []
        return ("[" + ",\n".join(json.dumps(line) for line in lines) + "]").encode(), JSON
    # A text field must not contain spaces; the archive stores URLs escaped.
    text = "".join(" ".join(v.replace(" ", "%20") for v in row) + "\n" for row in rows)
    if resume_key:
        text += f"\n{resume_key}\n"
    return text.encode(), "text/plain"


def run_query(
    captures: Iterable[Capture], params: Iterable[tuple[str, str]], page_size: int
) -> tuple[bytes, str]:
    """Parse, select and render: the whole endpoint minus HTTP. Raises CdxError."""
    query = CdxQuery.from_params(params)
    page, resume_key = select(captures, query, page_size)
    return render(page, resume_key, query)
