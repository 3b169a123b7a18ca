"""index.md of `preserver export site`: the articles by health, worst first, each linked to
its copy, with the best other capture of an article whose snapshot is broken. Also the site's
layout the index links into (articles/, media/), which `export_site.py` writes."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from urllib.parse import quote

import sqlite_utils

ARTICLES, MEDIA, INDEX = "articles", "media", "index.md"


VERDICT_NOTES = {
    "snapshot broken": "The Wayback snapshot the article cites is gone. The best other capture "
                       "preserver knows is given where there is one.",
    "images missing": "Some images could not be saved: they keep their Wayback URL.",
    "unreadable": "preserver could not read the file: it is copied as it is.",
    "archive unreachable": "The last check could not reach the archive: health unknown.",
    "not checked yet": "Read, but not checked against the archive yet.",
    "original gone": "The original site no longer serves the page; snapshot and images hold.",
    "ok": "Snapshot, original and every image hold.",
    "not scanned yet": "Not in the ledger yet (run `preserver scan`).",
}


def build_index(db: sqlite_utils.Database, files: list[str], refs: Counter):
    """index.md, as chunks of bytes: the articles by health (worst first), each linked to its
    copy. Two passes over the view (counts, then lines) and written as it is made, so that
    neither the rows nor the text is held (at 10,000 articles they were a sixth of the
    export's memory)."""
    exported = set(files)
    counts: Counter = Counter()
    listed: set[str] = set()
    for verdict, path in db.execute(
            "select verdict, path from article_health order by severity"):
        if path in exported:
            counts[verdict] += 1
            listed.add(path)
    unscanned = [p for p in files if p not in listed]
    del listed
    if unscanned:
        counts["not scanned yet"] = len(unscanned)
    lines = ["# Articles", "",
             f"{len(files):,} articles, copied by `preserver export site`. "
             f"{refs['local']:,} image references point to copies under `{MEDIA}/`; "
             f"{refs['wayback']:,} keep their Wayback URL (the image is not saved).", "",
             "| health | articles |", "|---|---:|"]
    lines += [f"| [{v}](#{_anchor(v)}) | {n:,} |" for v, n in counts.items()]
    yield "\n".join(lines).encode()
    current = None
    rows = db.query("select h.path, h.title, h.verdict, h.problems, h.date, h.url, s.final_url, "
                    "s.capture_timestamp from article_health h left join urls s on s.url = h.url "
                    "order by h.severity, h.date desc, h.path")
    unscanned_rows = ({"path": p, "title": None, "verdict": "not scanned yet", "problems": None,
                       "date": None, "url": None} for p in unscanned)
    for row in itertools.chain(rows, unscanned_rows):
        if row["path"] not in exported:
            continue
        if row["verdict"] != current:
            current = row["verdict"]
            yield f"\n\n## {current}\n\n{VERDICT_NOTES.get(current, '')}\n".encode()
        yield f"\n{_index_line(db, row)}".encode()
    yield b"\n"


def _index_line(db: sqlite_utils.Database, row: dict) -> str:
    link = f"{ARTICLES}/{quote(row['path'], safe='/')}"
    parts = [f"- [{_escape(row['title'] or row['path'])}]({link})"]
    parts += [_escape(row[k]) for k in ("date", "problems") if row.get(k)]
    if row["verdict"] == "snapshot broken":
        parts.append(_other_captures(db, row))
    elif row.get("url"):
        parts.append(f"[snapshot]({_url(row['url'])})")
    return " · ".join(parts)


def _other_captures(db: sqlite_utils.Database, row: dict) -> str:
    """The nearest capture the archive answered with, and other archives' mementos."""
    found = []
    if row.get("final_url") and row["final_url"] != row["url"]:
        found.append(f"[nearest capture {row['capture_timestamp'] or ''}]"
                     f"({_url(row['final_url'])})")
    found += [f"[{_escape(archive)} {timestamp or ''}]({_url(memento)})"
              for archive, memento, timestamp in db.execute(
                  "select archive, memento_url, memento_timestamp from alternates "
                  "where url = ? and memento_url is not null order by archive", [row["url"]])]
    return ("other captures: " + ", ".join(found)) if found else "no other capture known"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def _escape(text: str) -> str:
    """Text that stays plain inside a Markdown list item: specials escaped, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text))).strip()


def _url(url: str) -> str:
    """A URL that a Markdown link destination holds in one piece."""
    return quote(url, safe="-._~:/?#[]@!$&'*+,;=%")


def _anchor(heading: str) -> str:
    return heading.replace(" ", "-")

