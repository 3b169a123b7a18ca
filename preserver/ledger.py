"""The SQLite ledger: the one module that knows the database's shape.

`ensure_schema()` is idempotent: it creates the tables, indexes and views that are missing and
adds new columns to old ledgers, so any version of preserver can open any older ledger. The
ledger runs in WAL mode so Datasette can read it while a run writes. All times are ISO-8601 UTC
text; all paths are relative to the corpus root. `urls` holds the current state of each distinct
URL; `checks` is append-only: every check ever made stays.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple

import sqlite_utils

from . import health
from .config import ScheduleConfig
from .errors import LedgerLockedError, LedgerMissingError
from .schedule import is_dead
from .status import ARCHIVE_SIDE, BROKEN, GOOD, ImageStatus, RunStatus, UrlStatus, sql_list

SCHEMA = {
    "runs": {
        "id": int, "started_at": str, "finished_at": str, "status": str, "command": str,
        "corpus_path": str, "articles": int, "checks": int, "images_saved": int,
        "requests": int, "regressions": int, "summary": str, "error": str,
    },
    "articles": {
        "path": str, "title": str, "date": str, "author": str, "category": str, "tags": str,
        "url": str, "original_url": str, "snapshot_timestamp": str, "url_mismatch": int,
        "parse_status": str, "parse_error": str, "sha256": str, "size": int,
        "image_count": int, "link_count": int, "scanned_at": str, "run_id": int,
        "mtime_ns": int, "removed_at": str,
        "embed_count": int,  # videos and iframes (Hugo shortcodes, <iframe>, <video>)
    },
    "links": {"article_path": str, "url": str, "role": str, "position": int},
    "urls": {
        "url": str, "status": str, "http_status": int, "final_url": str,
        "capture_timestamp": str, "checked_at": str, "attempts": int, "elapsed_ms": int,
        "error": str, "first_seen_at": str, "first_failed_at": str, "last_ok_at": str,
        "consecutive_failures": int, "previous_status": str, "captures": int,
        "first_capture": str, "last_capture": str, "method": str, "dead": int,
        # the latest attempt, conclusive or not: status and checked_at above keep the last
        # conclusive verdict while an outage only adds attempts
        "last_attempt_at": str, "last_attempt_status": str, "last_attempt_error": str,
        "last_attempt_conclusive": int,  # 0: the verdict above is older than the last attempt
    },
    "checks": {
        "id": int, "run_id": int, "url": str, "checked_at": str, "status": str,
        "http_status": int, "final_url": str, "elapsed_ms": int, "attempts": int, "error": str,
        "method": str, "conclusive": int,  # 0: an attempt that said nothing about the URL
    },
    "images": {
        "url": str, "original_url": str, "local_path": str, "sha256": str, "bytes": int,
        "content_type": str, "status": str, "source_url": str, "capture_timestamp": str,
        "saved_at": str, "checked_at": str, "error": str, "digest_ok": int,
        "urlkey": str,  # SURT of the original: spellings of one image share it
        "expected_digest": str,  # corrupt: the CDX digest the bytes should have had
        "verified_at": str,  # when the file's sha256 was last found as recorded
        "damaged_at": str,  # when its file was found changed, gone or shared: fetch again
    },
    "migrations": {  # one-off repairs of older ledgers, each done once (preserver.fixity)
        "name": str, "done_at": str, "run_id": int, "note": str,
    },
    "fixity": {  # one row per saved file re-hashed (preserver.fixity), pass or fail
        "id": int, "run_id": int, "local_path": str, "url": str, "checked_at": str,
        "expected_sha256": str, "actual_sha256": str, "bytes": int, "ok": int, "error": str,
    },
    "captures": {  # the archive's CDX index, as far as we have fetched it
        "urlkey": str, "timestamp": str, "original": str, "mimetype": str,
        "statuscode": str, "digest": str, "length": int, "query_id": int,
    },
    "saves": {  # Save Page Now requests and what the CDX index said afterwards
        "id": int, "run_id": int, "url": str, "requested_at": str, "method": str,
        "job_id": str, "answer": str, "status": str, "capture_timestamp": str,
        "verified_at": str, "error": str,
    },
    "alternates": {  # captures in other archives (Memento TimeMaps) of what the Wayback lacks
        "url": str, "archive": str, "memento_url": str, "memento_timestamp": str,
        "mementos": int, "checked_at": str, "error": str,
    },
    "cdx_queries": {  # one row per prefix or exact CDX query: resumable, refreshed when stale
        "id": int, "url": str, "match_type": str, "key_prefix": str, "started_at": str,
        "fetched_at": str, "resume_key": str, "from_ts": str, "pages": int, "rows": int,
        "status": str, "error": str,
    },
}
PRIMARY_KEYS = {
    "runs": "id", "articles": "path", "links": None, "urls": "url",
    "checks": "id", "images": "url", "captures": None, "cdx_queries": "id", "saves": "id",
    "alternates": ("url", "archive"), "fixity": "id", "migrations": "name",
}
# links by url, covering role and article: lookups by URL, and the report's distinct URLs per
# role read it in order instead of sorting some 340,000 links (a 50,000-article corpus)
LINKS_URL_COLUMNS = ["url", "role", "article_path"]
LINKS_URL_INDEX = "idx_links_" + "_".join(LINKS_URL_COLUMNS)
# dropped from older ledgers: LINKS_URL_INDEX covers the first, urls (status, checked_at) the
# second (and serves "URLs with one status", newest first, without a sort)
SUPERSEDED_INDEXES = ["idx_links_url", "idx_urls_status"]
INDEXES = [
    ("links", LINKS_URL_COLUMNS), ("links", ["article_path"]), ("urls", ["status", "checked_at"]),
    ("checks", ["url"]), ("checks", ["run_id"]), ("images", ["status"]), ("images", ["urlkey"]),
    ("articles", ["parse_status"]), ("fixity", ["local_path"]), ("images", ["verified_at"]),
    ("cdx_queries", ["url", "match_type"]),
]
# statuses that never make a URL "newly broken": good ones, and those that say nothing about it
NOT_A_REGRESSION = GOOD | {UrlStatus.RATE_LIMITED.value, UrlStatus.EXCLUDED.value}
REGRESSED_URLS = f"last_ok_at is not null and status not in ({sql_list(NOT_A_REGRESSION)})"
# a URL's host, lowercased (what follows :// up to the next slash)
URL_HOST = ("lower(substr(substr(url, instr(url, '://') + 3), 1, "
            "instr(substr(url, instr(url, '://') + 3) || '/', '/') - 1))")
# images by file, case-insensitively: who else is on this path (also on a case-insensitive disk)
RAW_INDEXES = {"idx_images_local_path_nocase": "images (local_path collate nocase)",
               # the few URLs failing now that were ok once (newly_broken)
               "idx_urls_regressed": f"urls (url) where {REGRESSED_URLS}",
               # URLs by host ("URLs on one host" repeats the expression word for word)
               "idx_urls_host": f"urls ({URL_HOST})"}
SAME_FILE = "local_path = ? collate nocase and local_path = ?"  # exact, through that index
UNIQUE_INDEXES: list[tuple[str, list[str]]] = []
# Tables stored WITHOUT ROWID, keyed the way they are read: the key is the table, no index
# copies it. captures: by urlkey, then time; its key is the old unique index (statuscode and
# digest are '' where the CDX gave none: a key column cannot be null)
WITHOUT_ROWID = {"captures": ("urlkey", "timestamp", "statuscode", "digest")}
# Long URLs (percent-encoded CJK titles, 400-1,000 bytes) in index b-trees: with 4 KiB pages an
# index entry over about 1 KB spills onto an overflow page of its own, mostly empty
PAGE_SIZE = 16_384
VIEWS = {
    # What every status means, to join on and to read (preserver/status.py is the contract).
    "status_meanings": """
        select column1 as kind, column2 as status, column3 as good, column4 as meaning
        from (values
          ('url', 'ok', 1, 'resolves: the archive holds a capture at exactly this timestamp, '
             || 'or the page answers 200'),
          ('url', 'redirected', 1, 'resolves elsewhere: the archive answered with another '
             || 'capture (capture_timestamp) or the site redirected (final_url)'),
          ('url', 'not_found', 0, 'gone: HTTP 404 or 410, or nothing archived'),
          ('url', 'soft_404', 0, 'answers 200, but with a "not found" page or a bounce to the '
             || 'home page'),
          ('url', 'client_error', 0, 'refused with another 4xx (403 forbidden, 401, ...)'),
          ('url', 'server_error', 0, 'the server answered 5xx after every retry'),
          ('url', 'rate_limited', 0, 'not checked: rate-limited (429) or stopped to avoid an IP '
             || 'block; the next run tries again'),
          ('url', 'timeout', 0, 'no answer in time'),
          ('url', 'dns_error', 0, 'the host name does not resolve (or there was no network)'),
          ('url', 'connection_error', 0, 'connection refused, reset or cut short'),
          ('url', 'tls_error', 0, 'TLS certificate or handshake failure'),
          ('url', 'too_many_redirects', 0, 'a redirect loop, or more than [live] max_redirects'),
          ('url', 'blocked', 0, 'never requested: not http(s), or a private address'),
          ('url', 'invalid', 0, 'not a URL that can be requested'),
          ('url', 'excluded', 0, 'not checked, by choice or by the archive: an exclude pattern '
             || '([live] exclude, --exclude; method config), or the archive''s exclusion page or '
             || 'CDX 403 "Blocked Site Error"; error says which. Not a failure'),
          ('image', 'saved', 1, 'saved under the media folder, checked to be an image, hashed'),
          ('image', 'missing', 0, 'the archive never captured this image'),
          ('image', 'invalid', 0, 'the archive served something that is not an image (an '
             || 'error page)'),
          ('image', 'too_large', 0, 'larger than [security] max_image_bytes: not saved'),
          ('image', 'failed', 0, 'could not be fetched or written this time; the next run '
             || 'tries again'),
          ('image', 'corrupt', 0, 'the bytes differ from the archive''s CDX digest for every '
             || 'capture tried: kept on disk, expected_digest says what they should be; the '
             || 'next run tries again')
        )""",
    # One row per article: snapshot, original and images rolled into one verdict; severity
    # sorts the worst first. Read from the kept `health` table (preserver.health).
    "article_health": health.VIEW_SQL,
    # Snapshots that do not resolve (now), with what is known to find another capture. (The
    # kept health rows find them, through a partial index: not every article's snapshot.)
    "broken_snapshots": f"""
        select a.title, a.path, s.status, m.meaning, s.http_status, s.error, s.checked_at,
          s.last_attempt_at, s.last_attempt_status, s.first_failed_at, s.last_ok_at,
          s.consecutive_failures, s.dead,
          o.captures as original_captures, o.last_capture as original_last_capture,
          a.date, a.category, a.snapshot_timestamp, a.url, a.original_url
        from health h
        cross join articles a on a.path = h.path
        join urls s on s.url = a.url
        left join urls o on o.url = a.original_url
        left join status_meanings m on m.kind = 'url' and m.status = s.status
        where h.snapshot_status not in ({sql_list(GOOD)}) and s.status not in ({sql_list(GOOD)})
          and a.removed_at is null""",
    # Every image of a current article that is not saved, and why. (The image links not saved
    # are kept beside the health rows, preserver.health: not every image looked up.)
    "missing_images": f"""
        select a.title, l.article_path, coalesce(i.status, u.status, 'not fetched yet')
            as status,
          coalesce(i.error, u.error, m.meaning, 'not fetched yet') as reason,
          i.capture_timestamp, coalesce(i.checked_at, u.checked_at) as checked_at, l.url,
          i.original_url, a.date, a.category
        from health_missing_images l
        cross join articles a on a.path = l.article_path and a.removed_at is null
        left join images i on i.url = l.url
        left join urls u on u.url = l.url
        left join status_meanings m on m.kind = 'image' and m.status = i.status
        where i.status is not '{ImageStatus.SAVED.value}'""",
    # URLs whose latest check failed while their check in an earlier run was ok/redirected.
    # Failures that say nothing about the URL are left out: rate limits anywhere, and the
    # archive being unreachable for a snapshot, an image or an embed; excluded URLs. (A URL
    # once ok has last_ok_at, never cleared: a partial index holds the few failing since.)
    "newly_broken": f"""
        select url, role, was, status, error,
          (select a.title from articles a where a.path =
             (select min(article_path) from links where url = n.url)) as title,
          (select min(article_path) from links where url = n.url) as article_path,
          (select count(distinct article_path) from links where url = n.url) as articles,
          broken_at, was_ok_at, run_id, previous_run_id
        from (
          select u.url, (select role from links where url = u.url limit 1) as role,
            cur.status, cur.error, cur.checked_at as broken_at, cur.run_id,
            prev.status as was, prev.checked_at as was_ok_at, prev.run_id as previous_run_id
          from urls u
          join checks cur on cur.id = (select max(id) from checks where url = u.url
                                       and coalesce(conclusive, 1))
          join checks prev on prev.id = (select max(c.id) from checks c
                                         where c.url = u.url and c.run_id < cur.run_id
                                         and coalesce(c.conclusive, 1))
          where u.last_ok_at is not null and u.status not in ({sql_list(NOT_A_REGRESSION)})
            and cur.status not in ({sql_list(NOT_A_REGRESSION)})
            and prev.status in ({sql_list(GOOD)})
        ) n
        where not (role in ('snapshot', 'image', 'embed')
                   and status in ({sql_list(ARCHIVE_SIDE - {UrlStatus.RATE_LIMITED.value})}))""",
    # How the corpus is doing, by publication year and category (from the kept health).
    # (materialized: each verdict is read once, not once per sum)
    "health_by_year": """
        with h as materialized (
          select year, category, verdict from health where verdict != 'file removed'
        )
        select year, category, count(*) as articles,
          sum(verdict in ('ok', 'original gone')) as preserved,
          round(100.0 * sum(verdict in ('ok', 'original gone')) / count(*), 1)
            as preserved_percent,
          sum(verdict = 'snapshot broken') as snapshot_broken,
          sum(verdict = 'images missing') as images_missing,
          sum(verdict in ('not checked yet', 'archive unreachable')) as not_checked,
          sum(verdict = 'unreadable') as unreadable,
          sum(verdict = 'original gone') as original_gone
        from h
        group by year, category""",
    # Snapshot status by the year of the capture the article cites (the chart page draws it),
    # from the kept health (capture_year is null where the article cites no snapshot).
    "snapshots_by_capture_year": f"""
        select capture_year, count(*) as snapshots,
          sum(snapshot_status = 'ok') as ok, sum(snapshot_status = 'redirected') as redirected,
          sum(snapshot_status in ({sql_list(BROKEN)})) as broken,
          sum(snapshot_status is null or snapshot_status in
              ({sql_list(ARCHIVE_SIDE | {UrlStatus.EXCLUDED.value})})) as not_checked
        from health
        where verdict != 'file removed' and capture_year is not null
        group by 1""",
}
# The links of current articles (file there and readable), as `links l`: a short list of paths
# to leave out rather than a join of every link with its article. Report and crawl share it.
CURRENT_LINKS = ("links l where l.article_path not in (select path from articles "
                 "where removed_at is not null or parse_status = 'error')")
BULK_LOAD_ARTICLES = 5000  # a scan of this many changed files drops and rebuilds an index
# image verdicts that only another answer from the archive may replace
ESTABLISHED_IMAGE_STATUSES = frozenset({ImageStatus.MISSING.value, ImageStatus.INVALID.value,
                                        ImageStatus.TOO_LARGE.value, ImageStatus.CORRUPT.value})


def now() -> str:
    """The current time as ISO-8601 UTC text, to the second."""
    return _iso_second(int(time.time()))


@functools.lru_cache(maxsize=2)  # called for every row written: format each second once
def _iso_second(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_ledger(path: Path) -> sqlite_utils.Database:
    """Open (creating if needed) a ledger in WAL mode with its schema in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file only; older ones: _compact
    db.enable_wal()
    db.execute("PRAGMA synchronous = NORMAL")
    ensure_schema(db)
    return db


def open_readonly(path: Path) -> sqlite_utils.Database:
    """Open a ledger for reading only (SQLite `mode=ro`): readers (`report`, `list`,
    `serve`) never write, not even the schema, so they never need the run's lock. Raises
    LedgerMissingError, in words, when there is nothing to read yet or an older preserver wrote
    it (its tables or columns are not all there; a scan brings it up to date)."""
    if not path.is_file():
        raise LedgerMissingError(f"no ledger yet at {path}: run `preserver run` first")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("PRAGMA busy_timeout = 10000")
        db = sqlite_utils.Database(conn)
        missing = missing_schema(db)
    except sqlite3.DatabaseError as exc:
        raise LedgerMissingError(f"cannot read the ledger {path}: {exc}") from None
    if set(missing) >= set(SCHEMA):  # not one table
        db.close()
        raise LedgerMissingError(f"the ledger {path} has no tables yet: "
                                 "run `preserver run` first")
    if missing:
        db.close()
        raise LedgerMissingError(
            f"the ledger {path} was written by an older preserver (it lacks "
            f"{', '.join(missing)}): `preserver scan` brings it up to date (no network)")
    return db


def missing_schema(db: sqlite_utils.Database) -> list[str]:
    """The tables (`name`) and columns (`table.column`) of SCHEMA, and the kept health tables,
    this ledger lacks."""
    missing = []
    for name, columns in SCHEMA.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info([{name}])")}
        missing += [name] if not have else [f"{name}.{c}" for c in columns if c not in have]
    # the kept article health the views and the report read (preserver.health)
    missing += [name for name in health.TABLES
                if not db.execute("select 1 from sqlite_master where type = 'table' and "
                                  "name = ?", [name]).fetchone()]
    return missing


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create what is missing; never drops or loses data (only indexes superseded; older
    ledgers are rebuilt smaller once, see _migrate_storage)."""
    if not db.table_names():
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    for name, columns in SCHEMA.items():
        table = db.table(name)
        if not table.exists() and name in WITHOUT_ROWID:
            _create_without_rowid(db, name, name)
        elif not table.exists():
            table.create(columns, pk=PRIMARY_KEYS[name])
        else:
            missing = {c: t for c, t in columns.items() if c not in table.columns_dict}
            for column, kind in missing.items():
                table.add_column(column, kind)
            if name == "articles" and "embed_count" in missing:
                # scanned before embeds were read: the next scan reads every file again
                db.execute("update articles set mtime_ns = null")
    for name in SUPERSEDED_INDEXES:
        db.execute(f"drop index if exists [{name}]")
    for name, columns in INDEXES:
        db.table(name).create_index(columns, if_not_exists=True)
    for name, columns in UNIQUE_INDEXES:
        db.table(name).create_index(columns, if_not_exists=True, unique=True)
    for name, definition in RAW_INDEXES.items():
        db.execute(f"create index if not exists [{name}] on {definition}")
    health.ensure(db)
    for name, sql in VIEWS.items():
        db.create_view(name, sql, replace=True)
    _migrate_storage(db)


def _create_without_rowid(db: sqlite_utils.Database, name: str, table: str) -> None:
    """Create `table` with the columns of SCHEMA[name], keyed by WITHOUT_ROWID[name]."""
    key = WITHOUT_ROWID[name]
    columns = ", ".join(f"[{c}] {'INTEGER' if kind is int else 'TEXT'}"
                        + (" NOT NULL" if c in key else "")
                        for c, kind in SCHEMA[name].items())
    db.execute(f"create table [{table}] ({columns}, primary key ({', '.join(key)})) "
               "without rowid")


def _migrate_storage(db: sqlite_utils.Database) -> None:
    """Older ledgers, once each: tables in WITHOUT_ROWID rebuilt so (one transaction each:
    killed, the old table stands), then the file rebuilt with PAGE_SIZE pages (_compact)."""
    for name, key in WITHOUT_ROWID.items():
        sql = db.execute("select sql from sqlite_master where type = 'table' and name = ?",
                         [name]).fetchone()[0]
        if "without rowid" in sql.lower():
            continue
        started, columns = time.monotonic(), ", ".join(f"[{c}]" for c in SCHEMA[name])
        values = ", ".join(f"coalesce([{c}], '')" if c in key else f"[{c}]" for c in SCHEMA[name])
        with db.atomic():
            before = db.execute(f"select count(*) from [{name}]").fetchone()[0]
            _create_without_rowid(db, name, f"{name}_new")
            db.execute(f"insert or ignore into [{name}_new] ({columns}) select {values} "
                       f"from [{name}] order by {', '.join(key)}")
            after = db.execute(f"select count(*) from [{name}_new]").fetchone()[0]
            db.execute(f"drop table [{name}]")  # and its unique index
            db.execute(f"alter table [{name}_new] rename to [{name}]")
            _record_migration(db, f"{name}-without-rowid", (
                f"{name} keyed by ({', '.join(key)}) without rowid, its unique index dropped: "
                f"{before} rows, {before - after} exact duplicates (null key columns now ''), "
                f"{time.monotonic() - started:.1f} s"))
    _compact(db)


def _compact(db: sqlite_utils.Database) -> None:
    """Rebuild a ledger with smaller pages into PAGE_SIZE pages (VACUUM: one transaction, a
    killed one leaves the file as it was). Needs the file alone: while another connection
    reads it (Datasette), it is left for the next run."""
    if db.execute("pragma page_size").fetchone()[0] == PAGE_SIZE or db.conn.in_transaction \
            or not db.execute("pragma database_list").fetchone()[2]:  # in memory
        return
    mode = db.execute("pragma journal_mode").fetchone()[0]
    started, before = time.monotonic(), _file_bytes(db)
    db.execute("PRAGMA busy_timeout = 1000")
    try:
        if db.execute("pragma journal_mode = delete").fetchone()[0] != "delete":
            return
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        db.execute("vacuum")
    except sqlite3.OperationalError:  # busy: another connection has it open
        return
    finally:
        db.execute(f"pragma journal_mode = {mode}")
        db.execute("PRAGMA busy_timeout = 10000")
    with db.atomic():
        _record_migration(db, f"page-size-{PAGE_SIZE}", (
            f"rebuilt with {PAGE_SIZE}-byte pages: {before:,} to {_file_bytes(db):,} bytes, "
            f"{time.monotonic() - started:.1f} s"))


def _file_bytes(db: sqlite_utils.Database) -> int:
    return db.execute("pragma page_count").fetchone()[0] \
        * db.execute("pragma page_size").fetchone()[0]


def _record_migration(db: sqlite_utils.Database, name: str, note: str) -> None:
    db.execute("insert or replace into migrations (name, done_at, note) values (?, ?, ?)",
               [name, now(), note])


class LedgerLock:
    """An exclusive lock beside the ledger, held for the whole run (not the database itself,
    so Datasette and `preserver report` can read while a run writes)."""

    def __init__(self, ledger_path: Path):
        self.path = ledger_path.with_name(ledger_path.name + ".lock")
        self._fd: int | None = None

    _held: set[str] = set()  # POSIX record locks do not conflict within one process

    def __enter__(self) -> LedgerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        if key in LedgerLock._held:
            raise LedgerLockedError(f"this process already holds the ledger {self.path.stem}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # a POSIX record lock belongs to this process: unlike flock(), worker processes
            # forked by the scan do not inherit it, so a killed run cannot leave it held
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LedgerLockedError(
                f"another preserver run (pid {holder}) holds the ledger {self.path.stem}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        LedgerLock._held.add(key)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            LedgerLock._held.discard(str(self.path.resolve()))


class Ledger:
    """Writes of one run. Every write is its own transaction: a killed run loses at most the
    check in flight, and the ledger stays consistent."""

    def __init__(self, db: sqlite_utils.Database, policy: ScheduleConfig | None = None):
        self.db = db
        self.policy = policy or ScheduleConfig()
        self.run_id: int | None = None
        self.regressions = 0
        self.checks = 0
        self._health_refreshed = time.monotonic()

    def refresh_health(self) -> int:
        """Bring the kept `health` rows up to date with what was written (preserver.health)."""
        self._health_refreshed = time.monotonic()
        return health.refresh(self.db)

    def _refresh_health_if_due(self) -> None:
        """During a long phase: at most every health.REFRESH_SECONDS, outside a transaction."""
        if (time.monotonic() - self._health_refreshed >= health.REFRESH_SECONDS
                and not self.db.conn.in_transaction):
            self.refresh_health()

    def start_run(self, command: str, corpus_path: str) -> int:
        self._close_abandoned_runs()
        row = {"started_at": now(), "status": RunStatus.RUNNING.value, "command": command,
               "corpus_path": corpus_path}
        self.run_id = self.db.table("runs").insert(row).last_pk
        return self.run_id

    def _close_abandoned_runs(self) -> None:
        """A run still marked `running` while we hold the lock was killed: say so."""
        self.db.execute(
            "update runs set status = ?, finished_at = coalesce(finished_at, ?), "
            "error = coalesce(error, 'the process ended without finishing (killed?)') "
            "where status = ?",
            [RunStatus.INTERRUPTED.value, now(), RunStatus.RUNNING.value],
        )

    def finish_run(self, status: RunStatus, summary: dict, error: str | None = None) -> None:
        self.db.table("runs").update(self.run_id, {
            "finished_at": now(), "status": status.value, "checks": self.checks,
            "regressions": self.regressions, "summary": json.dumps(summary, ensure_ascii=False),
            "error": error, **{k: summary.get(k) for k in ("articles", "images_saved", "requests")},
        })

    def file_states(self) -> dict[str, tuple[int, int]]:
        """path -> (size, mtime_ns) of every article scanned before, to skip unchanged files."""
        rows = self.db.execute("select path, size, mtime_ns from articles where removed_at is null")
        return {path: (size, mtime) for path, size, mtime in rows}

    def record_articles(self, articles: list[ArticleRows],
                        known: set[str] = frozenset()) -> None:
        """Replace these articles' rows and links, in one transaction. `known`: paths that
        may have links already (new files have none to delete)."""
        if not articles:
            return
        stamp = (now(), self.run_id, None)  # scanned_at, run_id, removed_at
        rows = [a.values + stamp for a in articles]
        links = [link for a in articles for link in a.links]
        with self.db.atomic():
            _write_values(self.db, "articles", ARTICLE_COLUMNS, rows, "insert or replace")
            self.db.conn.executemany("delete from links where article_path = ?",
                                     [(a.path,) for a in articles if a.path in known])
            _write_values(self.db, "links", LINK_COLUMNS, links, "insert")

    @contextlib.contextmanager
    def bulk_load(self, rows_expected: int):
        """Around a large scan: without the index on links.url, inserts are 4x cheaper and
        building the index once afterwards is cheaper still. A run killed inside gets it
        back from ensure_schema() at the next start."""
        large = rows_expected >= BULK_LOAD_ARTICLES
        if large:
            self.db.execute(f"drop index if exists [{LINKS_URL_INDEX}]")
        try:
            yield
        finally:
            if large:
                ensure_schema(self.db)

    def mark_removed(self, paths: list[str]) -> None:
        """Articles whose files are gone: kept with their history, left out of checks."""
        with self.db.atomic():
            self.db.conn.executemany("update articles set removed_at = ? where path = ?",
                                [(now(), p) for p in paths])

    def record_check(self, result) -> None:
        self.record_checks([result])

    def record_checks(self, results: list) -> None:
        """Append to `checks` and fold into each URL's current state, in one transaction.
        A check that was never sent (its class stopped) is not recorded: the URL stays due."""
        results = [r for r in results if not r.not_sent]
        if not results:
            return
        checked_at = now()
        with self.db.atomic():
            _write_rows(self.db, "checks", [{
                "run_id": self.run_id, "url": r.url, "checked_at": checked_at,
                "status": r.status.value, "http_status": r.http_status, "final_url": r.final_url,
                "elapsed_ms": r.elapsed_ms, "attempts": r.attempts, "error": r.error,
                "method": r.method, "conclusive": int(not r.inconclusive)} for r in results],
                "insert")
            states = [self._url_state(r, checked_at) for r in results]
            for keys in {tuple(s) for s in states}:  # rows with and without coverage
                _upsert_rows(self.db, "urls", "url", [s for s in states if tuple(s) == keys])
        self.checks += len(results)
        self._refresh_health_if_due()

    def _url_state(self, result, checked_at: str) -> dict:
        previous = self.db.execute(
            "select status, first_seen_at, first_failed_at, last_ok_at, consecutive_failures "
            "from urls where url = ?", [result.url]).fetchone()
        before, first_seen, first_failed, last_ok, failures = previous or (None, None, None,
                                                                          None, 0)
        attempt = {"url": result.url, "first_seen_at": first_seen or checked_at,
                   "last_attempt_at": checked_at, "last_attempt_status": result.status.value,
                   "last_attempt_error": result.error,
                   "last_attempt_conclusive": int(not result.inconclusive)}
        if result.coverage is not None:
            attempt.update(result.coverage)
        if result.inconclusive:  # an outage says nothing about the URL: the verdict stays
            return attempt
        good = result.status.value in GOOD
        if result.status == UrlStatus.EXCLUDED and result.method == "config":
            # never asked, by our choice: not a failure (the archive's exclusion is one)
            failures, first_failed = 0, None
        else:
            if before in GOOD and not good:
                self.regressions += 1
            last_ok = checked_at if good else last_ok
            first_failed = None if good else (first_failed or checked_at)
            failures = 0 if good else (failures or 0) + 1
        state = {
            **attempt,
            "status": result.status.value, "http_status": result.http_status,
            "final_url": result.final_url, "capture_timestamp": result.capture_timestamp,
            "checked_at": checked_at, "attempts": result.attempts,
            "elapsed_ms": result.elapsed_ms, "error": result.error, "method": result.method,
            "previous_status": before,
            "last_ok_at": last_ok, "first_failed_at": first_failed,
            "consecutive_failures": failures,
            "dead": int(is_dead(failures, first_failed, self.policy)),
        }
        return state

    def record_alternates(self, rows: list[dict]) -> None:
        with self.db.atomic():
            self.db.table("alternates").upsert_all(rows, pk=PRIMARY_KEYS["alternates"])

    def record_save(self, row: dict) -> None:
        with self.db.atomic():
            self.db.table("saves").insert({**row, "run_id": self.run_id})

    def record_image(self, row: dict) -> None:
        self.record_images([row])

    def record_images(self, rows: list[dict], checks: list | None = None) -> None:
        """Images (and the checks of their URLs) in one transaction. A failed fetch (the
        network, the archive's overload) does not replace what an earlier fetch established
        (`missing`, `invalid`, `too_large`): the attempt goes into `checks` only."""
        inconclusive = set()
        if checks:  # a fetch never sent (its class stopped) leaves the image due
            checks = [c for c in checks if not c.not_sent]
            sent = {c.url for c in checks}
            rows = [r for r in rows if r["url"] in sent]
            inconclusive = {c.url for c in checks if c.inconclusive}
        urls = [r["url"] for r in rows]
        before = dict(self.db.execute(
            f"select url, status from images where url in ({', '.join('?' * len(urls))})",
            urls).fetchall()) if rows else {}
        self.regressions += sum(1 for r in rows if before.get(r["url"]) == ImageStatus.SAVED
                                and r["status"] != ImageStatus.SAVED)
        rows = [r for r in rows if not _keeps_its_verdict(r, before.get(r["url"]),
                                                          r["url"] in inconclusive)]
        with self.db.atomic():
            if checks:
                self.record_checks(checks)
            stamp = now()
            _upsert_rows(self.db, "images", "url", [{**r, "checked_at": stamp} for r in rows])
        self._refresh_health_if_due()


    def migration_done(self, name: str) -> bool:
        return self.db.execute("select 1 from migrations where name = ?", [name]).fetchone() \
            is not None

    def record_migration(self, name: str, note: str) -> None:
        with self.db.atomic():
            self.db.table("migrations").upsert(
                {"name": name, "done_at": now(), "run_id": self.run_id, "note": note},
                pk="name")

    def record_fixity(self, checks: list[dict]) -> None:
        """Re-hashed files (preserver.fixity): a `fixity` row each; the images of a file that
        passed are verified now, those of one that failed are damaged (`mark_damaged`)."""
        stamp = now()
        with self.db.atomic():
            _write_rows(self.db, "fixity", [{**c, "run_id": self.run_id, "checked_at": stamp}
                                            for c in checks], "insert")
            self.db.conn.executemany(
                f"update images set verified_at = ? where {SAME_FILE} and status = ?",
                [(stamp, c["local_path"], c["local_path"], ImageStatus.SAVED.value)
                 for c in checks if c["ok"]])
            for check in checks:
                if not check["ok"]:
                    self.mark_damaged(self.db.execute(
                        f"select url from images where {SAME_FILE} and status = ?",
                        [check["local_path"], check["local_path"],
                         ImageStatus.SAVED.value]).fetchall(),
                        check["error"], regression=True)

    def mark_damaged(self, urls: list[tuple[str]], reason: str, regression: bool) -> None:
        """Saved images whose file no longer holds their bytes: `failed` with the reason, and
        `damaged_at` set, so the next image phase fetches them whatever the schedule. A file
        that changed or vanished counts as a regression; one an older version let two images
        share (`regression=False`) never held the right bytes for sure."""
        if not urls:
            return
        stamp = now()
        with self.db.atomic():
            # the rows this update changed (total_changes would count the triggers' too)
            changed = self.db.conn.executemany(
                "update images set status = ?, error = ?, damaged_at = ?, verified_at = null "
                "where url = ? and status = ?",
                [(ImageStatus.FAILED.value, reason, stamp, url, ImageStatus.SAVED.value)
                 for (url,) in urls]).rowcount
        if regression:
            self.regressions += changed


def _keeps_its_verdict(row: dict, before: str | None, inconclusive: bool) -> bool:
    """A failed fetch leaves an image's row alone when it says nothing new: the archive's
    `missing`/`invalid`/`too_large`/`corrupt` stand, and an attempt that could not ask writes no row
    where there was none (it is in `checks`). A saved image that is lost is always written."""
    if row["status"] != ImageStatus.FAILED or before == ImageStatus.SAVED:
        return False
    return before in ESTABLISHED_IMAGE_STATUSES or (inconclusive and before is None)


def _write_rows(db: sqlite_utils.Database, table: str, rows: list[dict], verb: str) -> None:
    """Bulk write of rows that all have the same keys."""
    if rows:
        columns = tuple(rows[0])
        _write_values(db, table, columns, [tuple(row[c] for c in columns) for row in rows], verb)


def _write_values(db: sqlite_utils.Database, table: str, columns: tuple[str, ...],
                  rows: list[tuple], verb: str) -> None:
    """Bulk write of tuples in the order of `columns` (the scan's hot path: sqlite-utils'
    per-row type handling costs more than SQLite itself here)."""
    if not rows:
        return
    sql = (f"{verb} into [{table}] ({', '.join(f'[{c}]' for c in columns)}) "
           f"values ({', '.join('?' for _ in columns)})")
    db.conn.executemany(sql, rows)


def _upsert_rows(db: sqlite_utils.Database, table: str, key: str, rows: list[dict]) -> None:
    """Insert, or update the given columns of, rows that all have the same keys."""
    if not rows:
        return
    columns = list(rows[0])
    updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in columns if c != key)
    sql = (f"insert into [{table}] ({', '.join(f'[{c}]' for c in columns)}) "
           f"values ({', '.join('?' for _ in columns)}) "
           f"on conflict([{key}]) do update set {updates}")
    db.conn.executemany(sql, [tuple(row[c] for c in columns) for row in rows])


ARTICLE_COLUMNS = (
    "path", "title", "date", "author", "category", "tags", "url", "original_url",
    "snapshot_timestamp", "url_mismatch", "parse_status", "parse_error", "sha256", "size",
    "mtime_ns", "image_count", "link_count", "embed_count", "scanned_at", "run_id",
    "removed_at")
LINK_COLUMNS = ("article_path", "url", "role", "position")
# json.dumps(..., ensure_ascii=False) builds a new encoder on every call; this one is built once
_JSON = json.JSONEncoder(ensure_ascii=False).encode


class ArticleRows(NamedTuple):
    """One article as the ledger stores it. A large scan builds these in its parse workers:
    plain tuples cross between processes more cheaply than the objects they come from."""

    path: str
    parse_status: str
    parse_error: str | None
    values: tuple  # ARTICLE_COLUMNS up to mtime_ns; the ledger adds the rest when it writes
    links: list[tuple]  # LINK_COLUMNS


def article_rows(article) -> ArticleRows:
    """An `articles.Article` as rows: its own, and its links (its snapshot, its original,
    its images, its body links and its embeds, numbered in that order)."""
    values = (
        article.path, article.title, article.date, article.author, article.category,
        _JSON(article.tags), article.url, article.original_url, article.snapshot_timestamp,
        int(article.url_mismatch), article.parse_status.value, article.parse_error,
        article.sha256, article.size, article.mtime_ns, len(article.images),
        len(article.links), len(article.embeds))
    roles = ([("snapshot", article.url)] if article.url else []) \
        + ([("original", article.original_url)] if article.original_url else []) \
        + [("image", u) for u in article.images] + [("link", u) for u in article.links] \
        + [("embed", u) for u in article.embeds]
    path = article.path
    links = [(path, url, role, position) for position, (role, url) in enumerate(roles)]
    return ArticleRows(path, article.parse_status.value, article.parse_error, values, links)
