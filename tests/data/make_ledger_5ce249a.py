"""How tests/data/ledger-5ce249a.db was made (the input of tests/test_ledger_migration.py).

Run once, at commit 5ce249a (the last version before the ledger got smaller), with

    git checkout 5ce249a -- preserver && python -m pytest -q tests/data/make_ledger_5ce249a.py

It is two real `preserver run`s of that version against the test servers, on the end-to-end
world (tests/test_run_end_to_end.py: twelve articles meeting every URL and image status, CJK
image paths, CDX pages followed by resume keys); between them the article with the CJK
title is gone from the site (a regression: `newly_broken` has a row). The ledger is then
copied here page by page into one file (SQLite's backup). Not collected by the suite (its name)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import run_cli
from tests.test_run_end_to_end import tls_port, world  # noqa: F401 (fixtures)

OUT = Path(__file__).with_name("ledger-5ce249a.db")


def test_make_ledger(world, site):  # noqa: F811
    assert run_cli("run", "--config", str(world)).exit_code == 0
    site.route("/article/1/%E6%96%B0%E8%81%9E-%E4%B8%80", status=410)
    assert run_cli("run", "--config", str(world)).exit_code == 1  # something got worse
    ledger = world.parent / "preserver.db"
    OUT.unlink(missing_ok=True)
    with sqlite3.connect(ledger) as source, sqlite3.connect(OUT) as copy:
        source.backup(copy)  # page by page, WAL included
        copy.execute("pragma journal_mode = delete")
