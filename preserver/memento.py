"""Other archives, through Memento TimeMaps (opt-in: `[memento] archives`).

The Wayback Machine is not the only archive that crawled a dead site. For a snapshot it has
not got, or an image it never captured, each configured archive's TimeMap
(`<prefix><original url>`, `application/link-format`) is asked for the original's mementos;
the nearest one in time is recorded in the `alternates` table, and an image found there is
fetched and saved like any other. Other archives are paced like live hosts: one limiter per
archive host, `[live] per_host_per_second`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .client import HttpClient
from .errors import RequestFailed
from .ledger import now
from .urls import http_date_timestamp, nearest_in_time

_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[A-Za-z-]+\s*=\s*(?:"[^"]*"|[^;,<]*))*)')
_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|([^;,<]*))')


@dataclass(frozen=True)
class Memento:
    url: str
    timestamp: str  # 14 digits


def parse_timemap(text: str) -> list[Memento]:
    """Every memento of an `application/link-format` TimeMap (rel containing "memento")."""
    mementos = []
    for match in _LINK.finditer(text):
        params = {m[1].lower(): (m[2] if m[2] is not None else m[3]).strip()
                  for m in _PARAM.finditer(match[2])}
        if "memento" not in params.get("rel", "").split():
            continue
        timestamp = http_date_timestamp(params.get("datetime"))
        if timestamp:
            mementos.append(Memento(match[1].strip(), timestamp))
    return mementos


def nearest(mementos: list[Memento], timestamp: str) -> Memento | None:
    return nearest_in_time(mementos, timestamp)


class OtherArchives:
    def __init__(self, client: HttpClient, timemaps: dict[str, str]):
        self.client = client
        self.timemaps = timemaps

    async def find(self, url: str, original: str, timestamp: str) -> list[dict]:
        """One `alternates` row per archive asked: its nearest memento, or why there is none."""
        rows = []
        for name, prefix in self.timemaps.items():
            row = {"url": url, "archive": name, "memento_url": None, "memento_timestamp": None,
                   "mementos": 0, "checked_at": now(), "error": None}
            try:
                response = await self.client.get(prefix + original, "live", max_bytes=20_000_000)
                if response.status_code == 200:
                    found = parse_timemap(response.body.decode("utf-8", "replace"))
                    best = nearest(found, timestamp)
                    row.update(mementos=len(found), memento_url=best and best.url,
                               memento_timestamp=best and best.timestamp)
                elif response.status_code != 404:
                    row["error"] = f"TimeMap answered HTTP {response.status_code}"
            except RequestFailed as exc:
                row["error"] = str(exc)
            rows.append(row)
        return rows
