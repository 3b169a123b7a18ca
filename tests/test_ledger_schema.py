"""The ledger's shape: ensure_schema is idempotent and upgrades older ledgers."""

import pytest
import sqlite_utils

from preserver.errors import LedgerLockedError
from preserver.ledger import (
    ARTICLE_COLUMNS,
    LINK_COLUMNS,
    LINKS_URL_INDEX,
    SCHEMA,
    VIEWS,
    LedgerLock,
    ensure_schema,
    open_ledger,
)


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


def test_old_links_index_is_replaced_by_the_covering_one(tmp_path):
    db = sqlite_utils.Database(tmp_path / "old.db")
    db["links"].insert({"article_path": "a.md", "url": "https://x.com/", "role": "original",
                        "position": 1})
    db["links"].create_index(["url"], index_name="idx_links_url")
    ensure_schema(db)
    indexes = {i.name: i.columns for i in db["links"].indexes}
    assert "idx_links_url" not in indexes
    assert indexes[LINKS_URL_INDEX] == ["url", "role", "article_path"]
    assert db["links"].count == 1


def test_row_tuples_name_every_column():
    assert sorted(ARTICLE_COLUMNS) == sorted(SCHEMA["articles"])
    assert sorted(LINK_COLUMNS) == sorted(SCHEMA["links"])


def test_second_lock_holder_is_refused(tmp_path):
    with LedgerLock(tmp_path / "l.db"):
        with pytest.raises(LedgerLockedError, match="holds the ledger"):
            with LedgerLock(tmp_path / "l.db"):
                pass
    with LedgerLock(tmp_path / "l.db"):
        pass  # released
