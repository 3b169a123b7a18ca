"""Exit codes and flags that must not surprise: readers without a ledger exit 2 and write
nothing, a missing corpus folder exits 2 before anything is written, readers open the ledger
read-only, and -q, -v and --config work after the command as well as before it."""

from __future__ import annotations

import gc
import hashlib
import logging
import sqlite3

import pytest

from preserver import serve as serve_module
from preserver.config import load_config
from preserver.ledger import open_ledger
from tests.conftest import run_cli, write_article, write_config

WB = "https://web.archive.org/web/20210712022351"
HK = "https://www.hkcnews.com"
READERS = [("report",), ("list",), ("list", "--by-article")]


@pytest.fixture
def config(tmp_path, corpus, archive):
    archive.add(f"{HK}/article/1", "20210712022351", b"<html>one</html>")
    write_article(corpus, "新聞/一 1.md", f"{WB}/{HK}/article/1", f"{HK}/article/1")
    return write_config(tmp_path, archive, corpus, live_extra="")


def digest(path) -> str:
    """The ledger's bytes once every write is in the main file: connections a run in this
    process left open are collected, then the WAL checkpointed (a reader's write, had there
    been one, would show)."""
    gc.collect()
    conn = sqlite3.connect(path)
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", READERS)
def test_readers_without_a_ledger_exit_2_and_create_none(config, command):
    result = run_cli(*command, "--config", str(config))
    assert result.exit_code == 2, result.output
    assert "no ledger yet" in result.output and "run `preserver run` first" in result.output
    assert not list(config.parent.glob("preserver.db*"))


@pytest.mark.parametrize("command", READERS)
def test_readers_of_a_ledger_without_tables_say_run_first(config, command):
    ledger = config.parent / "preserver.db"
    sqlite3.connect(ledger).close()  # an empty database file
    result = run_cli(*command, "--config", str(config))
    assert result.exit_code == 2, result.output
    assert "has no tables yet: run `preserver run` first" in result.output
    assert ledger.stat().st_size == 0


def test_serve_of_a_ledger_without_tables_exits_2(config):
    sqlite3.connect(config.parent / "preserver.db").close()
    result = run_cli("serve", "--config", str(config))
    assert result.exit_code == 2 and "run `preserver run` first" in result.output


def test_readers_open_the_ledger_read_only(config):
    """An older ledger (an old view, a column missing) is not brought up to date by a reader:
    report and list read it as it is, or say how to update it; the file never changes."""
    assert run_cli("run", "--config", str(config)).exit_code == 0
    ledger = config.parent / "preserver.db"
    db = open_ledger(ledger)
    db.create_view("article_health", "select path from articles", replace=True)
    db.close()
    before = digest(ledger)
    for command in READERS:
        assert run_cli(*command, "--config", str(config)).exit_code == 0
    assert digest(ledger) == before
    assert run_cli("scan", "--config", str(config)).exit_code == 0  # views up to date
    with sqlite3.connect(ledger) as conn:
        conn.execute("alter table alternates drop column mementos")
    conn.close()
    before = digest(ledger)
    for command in [*READERS, ("serve",)]:
        result = run_cli(*command, "--config", str(config))
        assert result.exit_code == 2, result.output
        assert "older preserver" in result.output and "alternates.mementos" in result.output
        assert "`preserver scan`" in result.output
    assert digest(ledger) == before
    assert run_cli("scan", "--config", str(config)).exit_code == 0  # the way out it names
    assert run_cli("report", "--config", str(config)).exit_code == 0


def test_serve_prepares_without_writing(config):
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    ledger = config.parent / "preserver.db"
    before = digest(ledger)
    serve_module.prepare_ledger(load_config(config))
    assert digest(ledger) == before


@pytest.mark.parametrize("command", ["run", "scan"])
def test_a_missing_corpus_folder_exits_2_writing_nothing(config, corpus, command):
    corpus.rename(corpus.with_name("elsewhere"))
    result = run_cli(command, "--config", str(config))
    assert result.exit_code == 2, result.output
    assert "corpus folder not found" in result.output and str(corpus) in result.output
    assert not list(config.parent.glob("preserver.db*"))  # no ledger, no lock file


def test_a_missing_corpus_folder_records_no_failed_run(config, corpus):
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    ledger = config.parent / "preserver.db"
    before = digest(ledger)
    corpus.rename(corpus.with_name("elsewhere"))
    assert run_cli("run", "--config", str(config)).exit_code == 2
    assert digest(ledger) == before
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("select count(*), min(status) from runs").fetchone() == (
            1, "completed")
    conn.close()


def level() -> int:
    return logging.getLogger().level


@pytest.mark.parametrize(("args", "expected"), [
    (["scan", "-q", "--config"], logging.WARNING),
    (["scan", "--config", "CONFIG", "--quiet"], logging.WARNING),
    (["-q", "scan", "--config"], logging.WARNING),
    (["scan", "-v", "--config"], logging.DEBUG),
    (["-v", "scan", "--config"], logging.DEBUG),
    (["scan", "--config"], logging.INFO),
])
def test_quiet_and_verbose_work_before_and_after_the_command(config, args, expected):
    args = [str(config) if a == "CONFIG" else a for a in args]
    if args[-1] == "--config":
        args.append(str(config))
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    assert level() == expected


def test_quiet_after_run_is_not_a_usage_error(config):
    result = run_cli("run", "-q", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "This run:" in result.output


@pytest.mark.parametrize("args", [
    ["--config", "CONFIG", "report"],
    ["report", "--config", "CONFIG"],
    ["--config", "elsewhere.toml", "report", "--config", "CONFIG"],  # after the command wins
    ["--config", "CONFIG", "list", "--format", "json"],
])
def test_config_works_before_and_after_the_command(config, args):
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    result = run_cli(*[str(config) if a == "CONFIG" else a for a in args])
    assert result.exit_code == 0, result.output


def test_the_default_config_is_config_toml_in_the_current_folder(config, monkeypatch):
    monkeypatch.chdir(config.parent)
    assert run_cli("scan").exit_code == 0
    assert run_cli("report").exit_code == 0
    monkeypatch.chdir(config.parent.parent)
    result = run_cli("report")
    assert result.exit_code == 2 and "config.toml" in result.output
