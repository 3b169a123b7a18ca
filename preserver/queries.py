"""The SQL that reads the ledger for a run: what is due, and the image work's temporary table.

preserver.ledger owns the ledger's shape and every write to it; this module owns the reads the
network phases are built on, so that a phase says what it wants (the snapshots due, the images
not saved yet) and the SQL that finds them lives in one place beside the schema. The corpus's
URLs stay in the ledger: each query fills a `Worklist` (a temporary table) instead of a list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import sqlite_utils

from .config import ScheduleConfig
from .ledger import CURRENT_LINKS
from .status import GOOD, ImageStatus
from .worklist import Worklist

BATCH = 2000  # rows canonicalised per transaction
_FAR_PAST = "0000"
# The distinct URLs of one `:role` named by the corpus's current articles.
CORPUS_URLS = f"select distinct l.url as url from {CURRENT_LINKS} and l.role = :role"

_GOOD_SQL = ", ".join(f"'{status}'" for status in sorted(GOOD))
_DUE_WHERE = f"""
    u.url is null or u.checked_at is null
    or u.last_attempt_conclusive = 0
    or (julianday(:now) - julianday(u.checked_at)) * 24 >= case
        when u.status in ({_GOOD_SQL}) then :ok_hours
        else min(:failed_hours * (1 << min(40, max(0, coalesce(nullif(
                 u.consecutive_failures, 0), 1) - 1))), :ok_hours) end"""


def due_sql(candidates: str, columns: str = "c.url") -> str:
    """A select of `columns` of the rows of `candidates` (a select with a `url` column) that
    are due (preserver.schedule says when), stalest (or never checked) first. Parameters:
    `due_params(policy)`."""
    return (f"select {columns} from ({candidates}) c left join urls u on u.url = c.url "
            f"where {_DUE_WHERE} order by coalesce(u.checked_at, '{_FAR_PAST}'), c.url")


def due_params(policy: ScheduleConfig, at: dt.datetime | None = None) -> dict:
    at = at or dt.datetime.now(dt.UTC)
    return {"now": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "ok_hours": policy.recheck_ok_days * 24,
            "failed_hours": policy.recheck_failed_hours}


def due_urls(db: sqlite_utils.Database, role: str, policy: ScheduleConfig,
             wanted: bool = True) -> Worklist:
    """The corpus's URLs of this role that are due, stalest first (empty if not wanted)."""
    worklist = Worklist(db, role)
    if wanted:
        worklist.fill(due_sql(CORPUS_URLS), {"role": role, **due_params(policy)})
    return worklist


def worklist_statuses(db: sqlite_utils.Database, name: str) -> Iterator[tuple[str, str | None]]:
    """(item, its status in `urls` or None) for every item of the worklist `name`, read as
    they are iterated."""
    return db.execute(f"select w.item, u.status from temp.worklist_{name} w "
                      "left join urls u on u.url = w.item")


def urls_with_status(db: sqlite_utils.Database, status: str) -> set[str]:
    return {url for (url,) in db.execute("select url from urls where status = ?", [status])}


def image_urls(db: sqlite_utils.Database) -> set[str]:
    """Every URL with a row in `images` (whatever its status)."""
    return {url for (url,) in db.execute("select url from images")}


def saved_images(db: sqlite_utils.Database, urlkey: str) -> list[dict]:
    """The `images` rows saved under this canonical key (any spelling of the image)."""
    return list(db.query("select * from images where urlkey = ? and status = 'saved'",
                         [urlkey]))


def save_candidates(db: sqlite_utils.Database, captured_before: str, verified_after: str,
                    limit: int | None = None) -> list[str]:
    """Originals that answer on the live web, with no capture since `captured_before` (a
    14-digit timestamp) and no save verified since `verified_after` (ISO time)."""
    good = ", ".join("?" * len(GOOD))
    rows = db.execute(
        "select distinct u.url from urls u join links l on l.url = u.url "
        f"where l.role = 'original' and u.status in ({good}) "
        "and (coalesce(u.captures, 0) = 0 or u.last_capture < ?) "
        "and u.url not in (select url from saves where status = 'verified' "
        "and requested_at > ?) order by u.url",
        [*sorted(GOOD), captured_before, verified_after]).fetchall()
    urls = [row[0] for row in rows]
    return urls[:limit] if limit else urls


class ImageWork:
    """`temp.image_urls`: this run's image URLs not saved yet, each with its canonical key
    (`urlkey`: every spelling of one image shares it), and `urgent` for those fetched whatever
    the schedule says (corrupt, or their file was found damaged). The worklist of keys to
    fetch is `temp.worklist_images`."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    def create(self) -> None:
        with self.db.conn:
            self.db.execute("drop table if exists temp.image_urls")
            self.db.execute("create temp table image_urls (url text primary key, saved int, "
                            "urlkey text, urgent int default 0)")

    def fill_from_corpus(self) -> None:
        """Every image URL of the corpus, with whether it is saved and whether urgent."""
        with self.db.conn:
            self.db.execute(
                "insert into temp.image_urls (url, saved, urgent) select c.url, "
                f"i.status = 'saved', coalesce(i.status = '{ImageStatus.CORRUPT}' "
                f"or i.damaged_at is not null, 0) from ({CORPUS_URLS}) c "
                "left join images i on i.url = c.url", {"role": "image"})

    def fill_named(self, urls: list[str]) -> None:
        with self.db.conn:
            self.db.conn.executemany("insert or ignore into temp.image_urls (url, saved) "
                                     "values (?, 0)", [(u,) for u in urls])
            self.db.execute("update temp.image_urls set saved = 1 where url in "
                            "(select url from images where status = 'saved')")

    def saved_files(self) -> list[tuple[str, str, int]]:
        """(url, local_path, bytes) of the URLs the ledger says are saved."""
        return self.db.execute(
            "select i.url, i.local_path, i.bytes from images i join temp.image_urls w "
            "on w.url = i.url where w.saved").fetchall()

    def mark_unsaved(self, urls: list[tuple[str]]) -> None:
        """Saved in the ledger but not intact on disk: to fetch again, urgently."""
        with self.db.conn:
            self.db.conn.executemany(
                "update temp.image_urls set saved = 0, urgent = 1 where url = ?", urls)

    def drop_saved(self) -> int:
        """Leave out the URLs already saved; how many there were."""
        saved = self.db.execute("select count(*) from temp.image_urls where saved").fetchone()[0]
        with self.db.conn:
            self.db.execute("delete from temp.image_urls where saved")
        return saved

    def canonicalise(self, key_of: Callable[[str], str]) -> None:
        """Set each URL's `urlkey` to key_of(url), a page at a time, then index it."""
        db, last = self.db, 0
        while rows := db.execute("select rowid, url from temp.image_urls where rowid > ? "
                                 "order by rowid limit ?", [last, BATCH]).fetchall():
            with db.conn:
                db.conn.executemany("update temp.image_urls set urlkey = ? where rowid = ?",
                                    [(key_of(u), r) for r, u in rows])
            last = rows[-1][0]
        with db.conn:
            db.execute("create index temp.image_urls_urlkey on image_urls (urlkey)")

    def keys_saved_elsewhere(self) -> list[str]:
        """Keys of images already saved under another spelling."""
        return [key for (key,) in self.db.execute(
            "select distinct w.urlkey from temp.image_urls w where exists (select 1 from "
            "images i where i.urlkey = w.urlkey and i.status = 'saved')")]

    def drop_key(self, urlkey: str) -> None:
        with self.db.conn:
            self.db.execute("delete from temp.image_urls where urlkey = ?", [urlkey])

    def group(self, urlkey: str) -> list[str]:
        """Every spelling of one image in this run's work."""
        return [url for (url,) in self.db.execute(
            "select url from temp.image_urls where urlkey = ? order by url", [urlkey])]

    def worklist(self, policy: ScheduleConfig | None) -> Worklist:
        """The keys to fetch, first spelling first: with a schedule `policy`, the urgent
        (usually none) and then those due; without, all of them."""
        worklist = Worklist(self.db, "images")
        groups = "select min(url) as url, urlkey from temp.image_urls group by urlkey"
        if policy is None:
            return worklist.fill(f"select urlkey from ({groups}) order by url")
        urgent = "select urlkey from temp.image_urls where urgent"
        if self.db.execute(f"{urgent} limit 1").fetchone():
            worklist.fill(f"select urlkey from temp.image_urls where urlkey in ({urgent}) "
                          "group by urlkey order by min(url)")
            groups = groups.replace("group by", f"where urlkey not in ({urgent}) group by")
        return worklist.fill(due_sql(groups, "c.urlkey"), due_params(policy))

    def firsts(self) -> list[str]:
        """The first spelling of each image in the worklist."""
        return [url for (url,) in self.db.execute(
            "select min(url) from temp.image_urls where urlkey in "
            "(select item from temp.worklist_images) group by urlkey")]

    def url_count(self) -> int:
        """How many URLs the worklist's images are named by."""
        return self.db.execute("select count(*) from temp.image_urls where urlkey in "
                               "(select item from temp.worklist_images)").fetchone()[0]
