"""The ledger's shape: ensure_schema is idempotent and upgrades older ledgers."""

import pytest
import sqlite_utils

from preserver.errors import LedgerLockedError
from preserver.ledger import SCHEMA, VIEWS, LedgerLock, ensure_schema, open_ledger


def test_ensure_schema_creates_everything_and_is_idempotent(tmp_path):
    db = open_ledger(tmp_path / "l.db")
    ensure_schema(db)
    ensure_schema(db)
    assert set(SCHEMA) <= set(db.table_names())
    assert set(VIEWS) <= set(db.view_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_old_ledger_gains_new_columns_and_keeps_rows(tmp_path):
    db = sqlite_utils.Database(tmp_path / "old.db")
    db["urls"].insert({"url": "https://x.com/", "status": "ok"}, pk="url")
    ensure_schema(db)
    assert "consecutive_failures" in db["urls"].columns_dict
    assert db["urls"].get("https://x.com/")["status"] == "ok"


def test_second_lock_holder_is_refused(tmp_path):
    with LedgerLock(tmp_path / "l.db"):
        with pytest.raises(LedgerLockedError, match="holds the ledger"):
            with LedgerLock(tmp_path / "l.db"):
                pass
    with LedgerLock(tmp_path / "l.db"):
        pass  # released
