"""What the exports share: the ledger, read while no run writes, and a consistent copy of it.

An export reads the ledger and the media folder together; a run writing meanwhile could
replace an image between its row and its file. So an export holds the run lock (`LedgerLock`)
from start to end: a run started meanwhile exits 3, and an export started during a run waits
for it up to `wait_seconds`, then gives up with `LedgerLockedError` (exit 3). The ledger itself
is only read, through a read-only connection in one read transaction (one consistent
snapshot; a read-only connection otherwise rebuilds its view of a run's WAL at every query);
the copy is made with SQLite's backup API.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import time
from pathlib import Path

from .errors import ExportError, LedgerLockedError
from .ledger import LedgerLock

LOCK_POLL_SECONDS = 0.5


@contextlib.contextmanager
def ledger_for_export(ledger_path: Path, wait_seconds: float = 0.0):
    """Hold the run lock (waiting up to wait_seconds for a run to end) and yield a read-only
    connection to the ledger."""
    if not ledger_path.is_file():
        raise ExportError(f"no ledger yet at {ledger_path}: run `preserver run` first")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            lock = LedgerLock(ledger_path).__enter__()
            break
        except LedgerLockedError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            time.sleep(min(LOCK_POLL_SECONDS, left))
    try:
        db = read_only(ledger_path)
        try:
            yield db
        finally:
            db.close()
    finally:
        lock.__exit__(None, None, None)


def read_only(ledger_path: Path) -> sqlite3.Connection:
    """A connection that cannot write (the URI form keeps CJK and `?` in paths intact), in
    one read transaction."""
    db = sqlite3.connect(ledger_path.resolve().as_uri() + "?mode=ro", uri=True,
                         isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("BEGIN")
    return db


def backup_ledger(db: sqlite3.Connection, target: Path) -> None:
    """A consistent, self-contained copy of the ledger (SQLite's online backup, then out of
    WAL mode so the copy needs no -wal/-shm files beside it), written under a temporary name
    and renamed into place."""
    temp = target.with_name(f".{target.name}.part")
    temp.unlink(missing_ok=True)
    copy = sqlite3.connect(temp)
    try:
        db.backup(copy)
        copy.execute("pragma journal_mode = delete")
    finally:
        copy.close()
    os.replace(temp, target)


def ledger_counts(db: sqlite3.Connection) -> dict[str, object]:
    """What the collection holds, for the exports' descriptions."""
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "articles": one("select count(*) from articles where removed_at is null"),
        "images_referenced": one(
            "select count(distinct l.url) from links l join articles a on a.path = "
            "l.article_path and a.removed_at is null where l.role = 'image'"),
        "images_saved": one("select count(*) from images where status = 'saved'"),
        "image_files": one("select count(distinct local_path) from images "
                           "where status = 'saved'"),
        "runs": one("select count(*) from runs"),
        "last_run": one("select max(finished_at) from runs"),
    }


def iso_timestamp(timestamp: str | None) -> str | None:
    """A 14-digit archive timestamp (or a shorter prefix of one) as ISO-8601 UTC."""
    if not timestamp or not timestamp.isdigit() or len(timestamp) < 4:
        return None
    padded = (timestamp + "0101000000"[len(timestamp) - 4:])[:14]
    try:
        when = dt.datetime.strptime(padded, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
