"""A ledger written by the previous version is made smaller in place, once, and says the same.

Its input, tests/data/ledger-5ce249a.db, was made by two real runs of commit 5ce249a (the
version before this storage change) against the test servers, on the end-to-end world of
tests/test_run_end_to_end.py (CJK image paths, every URL and image status, a regression); how,
exactly: tests/data/make_ledger_5ce249a.py. Every table and view is read before and after the
migration and compared row for row; then a normal run goes on with the migrated ledger."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import sqlite_utils

from preserver.ledger import PAGE_SIZE, SCHEMA, VIEWS, WITHOUT_ROWID, open_ledger
from tests.conftest import run_cli
from tests.test_run_end_to_end import tls_port, world  # noqa: F401 (fixtures)

OLD = Path(__file__).parent / "data" / "ledger-5ce249a.db"
MIGRATIONS = {f"{name}-without-rowid" for name in WITHOUT_ROWID} | {f"page-size-{PAGE_SIZE}"}


def contents(path: Path) -> dict[str, list]:
    """Every table (but `migrations`, which gains rows) and view, as sorted rows. A key column
    of a WITHOUT ROWID table that was null is '' after the migration (it cannot be null)."""
    db = sqlite3.connect(path)
    out = {}
    for name, columns in SCHEMA.items():
        if name == "migrations":
            continue
        key = WITHOUT_ROWID.get(name, ())
        select = ", ".join(f"coalesce([{c}], '')" if c in key else f"[{c}]" for c in columns)
        out[name] = sorted(db.execute(f"select {select} from [{name}]").fetchall(), key=repr)
    for name in VIEWS:
        out[name] = sorted(db.execute(f"select * from [{name}]").fetchall(), key=repr)
    db.close()
    return out


def old_ledger(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "preserver.db"
    shutil.copyfile(OLD, path)
    return path


def shape(path: Path) -> dict:
    db = sqlite3.connect(path)
    schema = dict(db.execute("select name, sql from sqlite_master where type = 'table'"))
    shape = {"page_size": db.execute("pragma page_size").fetchone()[0],
             "migrations": dict(db.execute("select name, done_at from migrations")),
             "without_rowid": {n for n in WITHOUT_ROWID if "without rowid" in schema[n].lower()},
             "indexes": {n for (n,) in db.execute(
                 "select name from sqlite_master where type = 'index'")}}
    db.close()
    return shape


def test_the_old_ledger_migrates_in_place_and_says_the_same(tmp_path):
    path = old_ledger(tmp_path)
    before = contents(path)
    assert before["captures"] and before["checks"] and before["newly_broken"]
    assert shape(path)["page_size"] != PAGE_SIZE and not shape(path)["without_rowid"]

    open_ledger(path).close()

    after = shape(path)
    assert after["page_size"] == PAGE_SIZE
    assert after["without_rowid"] == set(WITHOUT_ROWID)
    assert MIGRATIONS <= set(after["migrations"])
    assert "idx_captures_urlkey_timestamp_statuscode_digest" not in after["indexes"]
    assert contents(path) == before
    open_ledger(path).close()  # once: a second opening changes nothing
    assert shape(path) == after and contents(path) == before


def test_a_reader_holding_the_ledger_only_postpones_the_rebuild(tmp_path):
    """Datasette reading the old ledger: the tables are migrated, the pages at the next run."""
    path = old_ledger(tmp_path)
    before = contents(path)
    reader = sqlite3.connect(path)
    reader.execute("pragma journal_mode = wal")
    reader.execute("select count(*) from urls").fetchone()
    try:
        open_ledger(path).close()
        assert reader.execute("select count(*) from captures").fetchone()[0] == len(
            before["captures"])
    finally:
        reader.close()
    postponed = shape(path)
    assert postponed["page_size"] != PAGE_SIZE and postponed["without_rowid"]
    assert contents(path) == before
    open_ledger(path).close()
    assert shape(path)["page_size"] == PAGE_SIZE and contents(path) == before


def test_a_run_goes_on_with_the_migrated_ledger(world, archive):  # noqa: F811
    path = old_ledger(world.parent)
    before = contents(path)
    result = run_cli("run", "--config", str(world))
    assert result.exit_code in (0, 1), result.output  # 1: saved files not on this disk
    db = sqlite_utils.Database(path)
    assert MIGRATIONS <= {r["name"] for r in db["migrations"].rows}
    runs = list(db["runs"].rows)
    assert len(runs) == 3 and runs[-1]["status"] == "completed"
    assert db["checks"].count > len(before["checks"])
    assert db["captures"].count >= len(before["captures"])
    assert {r["status"] for r in db["images"].rows_where("url like '%donald%'")} == {"saved"}
    assert db.execute("select count(*) from article_health").fetchone()[0] == 12
