"""What every export shares: the ledger, read while no run writes it.

An export reads the ledger and the media folder together, so it holds the ledger's lock for
its whole length: a run that starts meanwhile exits 3 as it would beside another run, and a
run already going makes the export exit 3 (or, with `wait`, wait for it). The database itself
is opened read-only (SQLite `mode=ro`), in one read transaction: an export never writes the
ledger, and sees it as it stood when it began.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from .errors import ExportError, LedgerLockedError
from .ledger import LedgerLock

log = logging.getLogger("preserver")


@contextlib.contextmanager
def locked_ledger(ledger_path: Path, wait: bool = False, poll_seconds: float = 1.0):
    """Hold the ledger's lock and yield the ledger opened read-only. Raises
    LedgerLockedError if a run holds it (unless `wait`), ExportError if there is no ledger."""
    if not ledger_path.exists():
        raise ExportError(f"no ledger yet at {ledger_path}: run `preserver run` first")
    lock = _acquire(ledger_path, wait, poll_seconds)
    try:
        uri = ledger_path.resolve().as_uri() + "?mode=ro"
        connection = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            connection.execute("PRAGMA busy_timeout = 10000")
            # one read transaction for the whole export: one consistent snapshot, and a
            # read-only connection rebuilds its view of the WAL at every transaction (20 ms
            # per query with a 30 MB WAL left by a run, 0.03 ms inside one transaction)
            connection.execute("BEGIN")
            yield sqlite_utils.Database(connection)
        finally:
            connection.close()
    finally:
        lock.__exit__(None, None, None)


def _acquire(ledger_path: Path, wait: bool, poll_seconds: float) -> LedgerLock:
    said = False
    while True:
        lock = LedgerLock(ledger_path)
        try:
            return lock.__enter__()
        except LedgerLockedError as exc:
            if not wait:
                raise
            if not said:
                log.info("%s: waiting for it to finish", exc)
                said = True
            time.sleep(poll_seconds)
