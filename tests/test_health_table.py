"""The kept `health` tables are exactly what their computing queries give, after every run.

`health` (preserver.health) is refreshed from what triggers record as changed, not recomputed
whole; this file proves the two never drift apart: after a normal run, a run stopped by SIGTERM
in the middle of its checks, a run that finds the leftovers of a killed one (writes committed,
no refresh), and an audit, the table is compared row for row with the computing query run over
every article from scratch. Every run is a real `preserver` process against the local archive
and live site of `tests/servers`.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from preserver import health
from tests.conftest import PNG, write_article, write_config

PRESERVER = Path(sys.executable).parent / "preserver"
WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
ARTICLES = 12


def read(ledger: Path, sql: str, params=()) -> list[tuple]:
    with closing(sqlite3.connect(ledger)) as conn:
        return conn.execute(sql, params).fetchall()


def assert_health_is_exact(ledger: Path) -> list[tuple]:
    """The kept rows equal the computing query over every article, and nothing is left stale."""
    kept = read(ledger, "select * from health order by path")
    rebuilt = read(ledger, f"select * from ({health.computing_query()}) order by path")
    assert kept == rebuilt
    assert len(kept) == read(ledger, "select count(*) from articles")[0][0]
    missing = read(ledger, "select * from health_missing_images order by 1, 2")
    assert missing == read(ledger, f"select * from ({health.missing_images_query()}) "
                                   "order by 1, 2")
    for table in health.STALE_TABLES:
        assert read(ledger, f"select count(*) from [{table}]") == [(0,)], table
    return kept


def verdicts(ledger: Path) -> dict[str, str]:
    return dict(read(ledger, "select path, verdict from health"))


def start(config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(PRESERVER), *args, "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(errors="replace")


def build(corpus: Path, archive, site) -> None:
    """Articles with every verdict: ok, images missing (missing and invalid images), snapshot
    broken, original gone, embeds gone, unreadable; CJK paths and titles."""
    for i in range(ARTICLES):
        original = f"{HK}/article/{i}/標題-{i}"
        if i != 2:  # article 2's snapshot was never archived
            archive.add(original, TS, f"<html><title>{i}</title></html>".encode())
        route = quote(f"/article/{i}/標題-{i}")  # as the request line carries it
        if i == 3:
            site.route(route, status=404)
        else:
            site.route(route, body=f"<html><title>{i}</title>live {i}</html>".encode())
        images = []
        for j in range(2):
            image = f"{HK}/news_新聞/2020/{i} {j}.png"
            if i == 6 and j == 1:
                archive.add(image, TS, b"<html>Error</html>", "image/png")  # invalid
            elif not (i == 1 and j == 0):  # article 1's first image: never archived
                archive.add(image, TS, PNG + f"{i}-{j}".encode() * 20, "image/png")
            images.append(f"{WB}/{TS}im_/{image}")
        path = write_article(corpus, f"新聞/{i // 4}/article_{i}.md", f"{WB}/{TS}/{original}",
                             original, images, title=f"標題 {i}")
        if i == 4:  # an embed the archive never held
            with path.open("a", encoding="utf-8") as f:
                f.write(f'{{{{< video src="{WB}/{TS}if_/https://www.youtube.com/embed/x{i}" '
                        '>}}\n')
    (corpus / "新聞/broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n",
                                         encoding="utf-8")


def test_health_is_exact_after_normal_interrupted_killed_and_audit_runs(tmp_path, corpus,
                                                                         archive, site):
    build(corpus, archive, site)
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url})
    ledger = tmp_path / "preserver.db"

    code, out = finish(start(config, "run"))
    assert code in (0, 1), out  # 1: something is broken, which is the point
    first = verdicts(ledger)
    assert_health_is_exact(ledger)
    assert {first[f"新聞/{i // 4}/article_{i}.md"] for i in range(ARTICLES)} >= {
        "ok", "images missing", "snapshot broken", "original gone"}
    assert first["新聞/broken.md"] == "unreadable"
    assert read(ledger, "select embeds_broken from health where path like '%article_4.md'") \
        == [(1,)]

    # the world changes: a file goes, one is edited (a new image); the next run is
    # stopped by SIGTERM in the middle of its checks (both servers slow)
    (corpus / "新聞/1/article_7.md").unlink()
    edited = corpus / "新聞/0/article_0.md"
    edited.write_text(edited.read_text(encoding="utf-8").replace("0 1.png", "0 9.png"),
                      encoding="utf-8")
    archive.add(f"{HK}/news_新聞/2020/0 9.png", TS, PNG + b"nine" * 20, "image/png")
    site.latency, archive.latency = 0.5, 0.3
    proc = start(config, "run")
    deadline = time.monotonic() + 30
    while not read(ledger, "select 1 from checks where run_id = 2 limit 1"):
        assert proc.poll() is None and time.monotonic() < deadline, finish(proc)[1]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    code, out = finish(proc)
    assert code == 4, out
    assert read(ledger, "select status from runs where id = 2") == [("interrupted",)]
    second = assert_health_is_exact(ledger)
    assert verdicts(ledger)["新聞/1/article_7.md"] == "file removed"
    assert len(second) == ARTICLES + 1

    # a killed run leaves writes committed and never refreshed: the next run starts by
    # refreshing them (here an audit of another article)
    with closing(sqlite3.connect(ledger)) as conn, conn:
        conn.execute("update urls set status = 'not_found' where url = ?",
                     [f"{WB}/{TS}/{HK}/article/5/標題-5"])
    assert read(ledger, "select count(*) from health_stale_urls") == [(1,)]
    site.latency = archive.latency = 0.0
    code, out = finish(start(config, "audit", str(corpus / "新聞/0/article_0.md")))
    assert code in (0, 1), out
    assert_health_is_exact(ledger)
    assert verdicts(ledger)["新聞/1/article_5.md"] == "snapshot broken"

    # and a full run after all that still agrees
    code, out = finish(start(config, "run"))
    assert code in (0, 1), out
    assert_health_is_exact(ledger)
    # the snapshot checked again: the verdict follows the answer, not the leftover
    assert verdicts(ledger)["新聞/1/article_5.md"] == first["新聞/1/article_5.md"]


def test_an_older_ledger_gets_its_health_table_built_once(tmp_path):
    """A ledger without the table (an older preserver's) gets it built whole when opened for
    writing; opening again does not rebuild it."""
    from preserver.ledger import open_ledger

    db = open_ledger(tmp_path / "preserver.db")
    db.execute("insert into articles (path, title, date, url, parse_status, image_count) "
               "values ('a/文章.md', '標題', '2019-06-04', 'https://web.archive.org/web/1/x', "
               "'ok', 0)")
    db.execute("drop table health")
    db.execute("delete from migrations")
    db.conn.commit()
    db.close()
    db = open_ledger(tmp_path / "preserver.db")
    assert db.execute("select path, verdict from health").fetchall() == [
        ("a/文章.md", "not checked yet")]
    db.execute("insert into health_stale_articles values ('a/文章.md')")
    db.conn.commit()
    db.close()
    db = open_ledger(tmp_path / "preserver.db")  # not rebuilt: the stale row is still there
    assert db.execute("select count(*) from health_stale_articles").fetchone() == (1,)


def test_the_canned_queries_and_views_use_their_indexes(tmp_path):
    """What keeps the pages fast on 49,000 articles: the plans read indexes, not whole tables
    (a partial or expression index serves only a query that repeats its expression)."""
    import yaml

    from preserver.ledger import open_ledger
    from preserver.serve import METADATA

    db = open_ledger(tmp_path / "preserver.db")
    queries = yaml.safe_load(METADATA.read_text(encoding="utf-8"))["databases"]["LEDGER_DB"][
        "queries"]

    def plan(sql: str, params=None) -> str:
        return " | ".join(row[3] for row in db.execute(f"explain query plan {sql}",
                                                         params or {}))

    assert "idx_urls_host" in plan(queries["urls_on_host"]["sql"], {"host": "hkcnews.com"})
    assert "idx_health_snapshot_failing" in plan("select * from broken_snapshots")
    assert "idx_health_missing_images_path" in plan(
        "select * from missing_images order by article_path limit 101")
    assert "idx_urls_regressed" in plan("select * from newly_broken")
    assert "SCAN" not in plan("select * from article_health order by severity limit 101"
                              ).replace("SCAN h USING INDEX idx_health_severity", "")
