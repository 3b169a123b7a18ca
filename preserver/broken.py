"""The broken list (`preserver list`): every failing URL and the articles that cite it.

`report` counts; this names, as lychee and LinkChecker do: one row per failing URL (its role,
status, error, last conclusive check and the article paths citing it), or per article (its
failing URLs and unsaved images under it). A ledger of 49,118 articles holds some 330,000
links, so rows come straight from SQLite cursors and are written as they come: Python holds
the one URL or article being written, no more. Both forms start from the failing URLs (few,
next to every link) and look up their links by URL; the article form then lets SQLite sort
those rows by article (its sorter spills to a temporary file, not to our memory).

Failing: a URL whose status is not good (status.GOOD) and not `excluded` (never requested on
purpose), or an image whose file is not saved (images.status, whatever the check of its URL
said). What has not been checked yet is not listed (`report` counts it). Only current articles
count (ledger.CURRENT_LINKS).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO
from urllib.parse import unquote, urlsplit

import sqlite_utils

from .ledger import CURRENT_LINKS
from .status import GOOD, ImageStatus
from .urls import parse_wayback_url

FORMATS = ("text", "csv", "json", "markdown")
URL_FIELDS = ("url", "role", "status", "http_status", "error", "checked_at", "first_failed_at",
              "article_count", "articles")
ITEM_FIELDS = ("role", "url", "status", "http_status", "error", "checked_at")


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


# Excluded on purpose ([live] exclude) is no failure; excluded by the archive is one.
_BY_CHOICE = "(status = 'excluded' and method = 'config')"
# URLs that may be failing: a bad status, or an image file not saved. Few, next to every link
# of the corpus: the lists start from these (one scan of urls and of images) and look up their
# links in the links' url index, rather than join each of some 330,000 links to urls and images.
_FAILING = (f"select url from urls where status not in ({_quoted(GOOD)}) "
            f"and not {_BY_CHOICE} "
            f"union select url from images where status != '{ImageStatus.SAVED.value}' "
            f"order by url")
# One link of a current article as the list shows it. An image's status is its file's
# (saved, missing, invalid, ...) and its time when the file was last tried; any other URL's
# time is its last conclusive check (urls.checked_at: an attempt that could not ask never
# moves it). (`cross join` keeps SQLite to that order.)
_ITEM = f"""
    select l.url, l.role, l.article_path, l.position,
      coalesce(i.status, u.status) as status, u.http_status,
      case when i.status is not null then i.error else u.error end as error,
      case when i.status is not null then i.checked_at else u.checked_at end as checked_at,
      u.first_failed_at
    from ({_FAILING}) f
    cross join (select l.* from {CURRENT_LINKS}) l on l.url = f.url
    left join urls u on u.url = l.url
    left join images i on l.role = 'image' and i.url = l.url
    where coalesce(i.status, u.status) not in ({_quoted(GOOD | {ImageStatus.SAVED.value})})
      and not (i.status is null and u.status = 'excluded' and u.method = 'config')"""


@dataclass(frozen=True)
class Filters:
    """What to list: empty means everything. `since` is ISO-8601 UTC text (as the ledger
    writes times); `hosts` match a URL's host, or for a Wayback URL the original's, or any
    subdomain of them."""

    roles: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    since: str | None = None
    hosts: tuple[str, ...] = ()

    def sql(self) -> tuple[str, dict]:
        """The conditions SQL applies, on the columns of _ITEM (role and status)."""
        where, params = [], {}
        for column, values in (("role", self.roles), ("status", self.statuses)):
            if values:
                names = [f"{column}{k}" for k in range(len(values))]
                where.append(f"{column} in ({', '.join(':' + n for n in names)})")
                params.update(zip(names, values, strict=True))
        return (" where " + " and ".join(where)) if where else "", params

    def keep(self, item: dict) -> bool:
        """The conditions Python applies: `since` (in SQL the time's subquery would run twice)
        and the hosts (a Wayback URL's original is parsed out of it)."""
        if self.since and not (item["checked_at"] and item["checked_at"] >= self.since):
            return False
        return self.host_matches(item["url"])

    def host_matches(self, url: str) -> bool:
        if not self.hosts:
            return True
        wayback = parse_wayback_url(url)
        hosts = {_host(url)} | ({_host(wayback.original)} if wayback else set())
        return any(h == want or h.endswith("." + want) for h in hosts for want in self.hosts)


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def parse_since(text: str) -> str:
    """An ISO date or time (`2026-12-01`, `2026-12-01T08:00`, `...+08:00`) as the ledger's
    UTC text; a time without a zone is UTC. Raises ValueError."""
    when = dt.datetime.fromisoformat(text.strip())
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- rows -------------------------------------------------------------------------------------
def failing_urls(db: sqlite_utils.Database, filters: Filters = Filters()) -> Iterator[dict]:
    """One dict per failing (url, role), in URL order, with the paths of the articles citing
    it (in path order). The rows of one URL come together (it is looked up once in the links'
    (url, role, article_path) index): grouped here as they come, never sorted as a whole."""
    where, params = filters.sql()
    columns = URL_FIELDS[:-2]
    cursor = db.execute(f"select {', '.join(columns)}, article_path from ({_ITEM}){where}",
                        params)
    for _, rows in itertools.groupby(cursor, key=lambda r: r[:2]):
        rows = list(rows)  # one URL's citing articles
        row = dict(zip(columns, rows[0][:-1], strict=True))
        if filters.keep(row):
            yield {**row, "article_count": len(rows), "articles": [r[-1] for r in rows]}


def broken_articles(db: sqlite_utils.Database, filters: Filters = Filters()) -> Iterator[dict]:
    """One dict per current article with a failing URL or unsaved image (in path order):
    `path`, `title` and `problems`, its failing links in the order the article has them."""
    where, params = filters.sql()
    sql = (f"select f.article_path, a.title, {', '.join('f.' + c for c in ITEM_FIELDS)} "
           f"from ({_ITEM}) f join articles a on a.path = f.article_path{where} "
           f"order by f.article_path, f.position")
    cursor = db.execute(sql, params)  # the filters' columns: f's alone have these names
    for (path, title), rows in itertools.groupby(cursor, key=lambda r: r[:2]):
        problems = [dict(zip(ITEM_FIELDS, r[2:], strict=True)) for r in rows]
        problems = [p for p in problems if filters.keep(p)]
        if problems:
            yield {"path": path, "title": title, "problems": problems}


# -- formats ----------------------------------------------------------------------------------
def write_urls(rows: Iterable[dict], fmt: str, out: IO[str]) -> int:
    """Write failing URLs in a format as they come; returns how many."""
    return _WRITERS[fmt][0](rows, out)


def write_articles(articles: Iterable[dict], fmt: str, out: IO[str]) -> int:
    """Write articles with problems in a format as they come; returns how many."""
    return _WRITERS[fmt][1](articles, out)


class _Counted:
    """An iterable that counts what went through it (the writers' totals, still streaming)."""

    def __init__(self, items: Iterable):
        self.items, self.n = items, 0

    def __iter__(self):
        for item in self.items:
            self.n += 1
            yield item


def _text_urls(rows, out) -> int:
    """For people: URLs decoded (CJK as CJK); csv and json keep them as the corpus has them."""
    rows = _Counted(rows)
    for row in rows:
        out.write(f"{row['status']}  {row['role']}  {unquote(row['url'])}\n")
        detail = "; ".join(filter(None, [row["error"], row["checked_at"] and
                                         f"checked {row['checked_at']}"]))
        if detail:
            out.write(f"    {detail}\n")
        out.writelines(f"    in {path}\n" for path in row["articles"])
    out.write(f"{rows.n} failing URL{'' if rows.n == 1 else 's'}\n")
    return rows.n


def _text_articles(articles, out) -> int:
    articles = _Counted(articles)
    for article in articles:
        out.write(f"{article['path']}  {article['title'] or ''}".rstrip() + "\n")
        for p in article["problems"]:
            error = f"  ({p['error']})" if p["error"] else ""
            out.write(f"    {p['status']}  {p['role']}  {unquote(p['url'])}{error}\n")
    out.write(f"{articles.n} article{'' if articles.n == 1 else 's'} with problems\n")
    return articles.n


def _csv_urls(rows, out) -> int:
    """Articles: one path per line within the cell (a path holds any other character)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(URL_FIELDS)
    rows = _Counted(rows)
    for row in rows:
        writer.writerow([*(row[f] for f in URL_FIELDS[:-1]), "\n".join(row["articles"])])
    return rows.n


def _csv_articles(articles, out) -> int:
    """One row per problem, its article's path and title first (rows of an article adjoin)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("path", "title", *ITEM_FIELDS))
    articles = _Counted(articles)
    for article in articles:
        writer.writerows([article["path"], article["title"], *(p[f] for f in ITEM_FIELDS)]
                         for p in article["problems"])
    return articles.n


def _json_array(items, out) -> int:
    """A JSON array written an element at a time (json.load reads it whole, `jq -c '.[]'`
    one element a line)."""
    n = 0
    out.write("[")
    for n, item in enumerate(items, 1):
        out.write(("\n" if n == 1 else ",\n") + json.dumps(item, ensure_ascii=False))
    out.write("\n]\n" if n else "]\n")
    return n


def _md(value) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _markdown_urls(rows, out) -> int:
    out.write("| status | role | URL | error | checked | articles |\n"
              "|---|---|---|---|---|---|\n")
    rows = _Counted(rows)
    for row in rows:
        cells = [row["status"], row["role"], row["url"], row["error"], row["checked_at"]]
        out.write("| " + " | ".join(_md(c) for c in cells) + " | "
                  + "<br>".join(_md(p) for p in row["articles"]) + " |\n")
    out.write(f"\n{rows.n} failing URL{'' if rows.n == 1 else 's'}\n")
    return rows.n


def _markdown_articles(articles, out) -> int:
    n = 0
    for n, article in enumerate(articles, 1):
        title = f" — {_md(article['title'])}" if article["title"] else ""
        gap = "" if n == 1 else "\n"
        out.write(f"{gap}### {_md(article['path'])}{title}\n\n")
        for p in article["problems"]:
            error = f" — {_md(p['error'])}" if p["error"] else ""
            out.write(f"- **{_md(p['status'])}** {_md(p['role'])} <{_md(p['url'])}>{error}\n")
    out.write(f"\n{n} article{'' if n == 1 else 's'} with problems\n")
    return n


_WRITERS = {
    "text": (_text_urls, _text_articles),
    "csv": (_csv_urls, _csv_articles),
    "json": (_json_array, _json_array),
    "markdown": (_markdown_urls, _markdown_articles),
}
