"""`preserver run` end to end against a local archive and live site: every URL status, every
image outcome, coverage from the CDX, exit codes, and a second run that refetches nothing."""

from __future__ import annotations

import hashlib
import http.server
import ssl
import threading

import pytest
import sqlite_utils
import trustme

from preserver.ledger import LedgerLock
from tests.conftest import JPEG, PNG, closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
IMG_CJK = f"{HK}/news_新聞/hk-discuss/2018/11/donald%20trump-習近平-%EF%BF%BD_large.png?1475201573"


@pytest.fixture
def tls_port():
    """An HTTPS server whose certificate (from trustme) no public CA signed."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def html(title: str) -> bytes:
    return f"<html><head><title>{title}</title></head><body>x</body></html>".encode()


@pytest.fixture
def world(tmp_path, corpus, archive, site, tls_port):
    """A corpus whose articles, between them, meet every status a run can record."""
    def article(n: int, original: str, snapshot_ts: str = TS, images=(), capture=True):
        url = f"{WB}/{snapshot_ts}/{original}"
        if capture:
            archive.add(original, snapshot_ts, html(f"article {n}"))
        write_article(corpus, f"{n // 10}/article_{n}.md", url, original,
                      [f"{WB}/{snapshot_ts}im_/{src}" for src in images])

    big = PNG + b"\x00" * 10_000
    archive.add(IMG_CJK, TS, PNG, "image/png")
    archive.add(f"{HK}/uploads/moved.jpg", "20200101000000", JPEG, "image/jpeg")
    archive.add(f"{HK}/uploads/error-page.png", TS, html("Error"), "image/png")
    archive.add(f"{HK}/uploads/big.png", TS, big, "image/png")
    archive.add(f"{HK}/uploads/broken.png", TS, b"", "text/html", status=500)
    images = [IMG_CJK, f"{HK}/uploads/moved.jpg", f"{HK}/uploads/never.png",
              f"{HK}/uploads/error-page.png", f"{HK}/uploads/big.png", f"{HK}/uploads/broken.png"]
    article(1, f"{HK}/article/1/新聞-一", images=images)
    corpus.joinpath("0/article_1.md").write_text(
        corpus.joinpath("0/article_1.md").read_text(encoding="utf-8")
        + '\n<img src="javascript:alert(1)">\n<img src="http://[::1">\n', encoding="utf-8")
    site.route("/article/1/%E6%96%B0%E8%81%9E-%E4%B8%80", body=html("眾新聞"))
    for ts in ("20170101000000", "20190101000000", "20230306093752"):
        archive.add(f"{HK}/article/1/新聞-一", ts, html("older"))

    archive.add(f"{HK}/article/2", "20200105000000", html("a2"))  # snapshot: nearest capture
    article(2, f"{HK}/article/2", snapshot_ts="20200101000000", capture=False)
    site.redirect("/article/2", "/", 301)
    site.route("/", body=html("眾新聞 home"))  # soft 404: bounced to the home page

    article(3, f"{HK}/article/3", capture=False)  # snapshot not_found; original 404
    archive.add(f"{HK}/article/4", TS, b"", status=301, location=f"{HK}/article/4b")
    article(4, f"{HK}/article/4", capture=False)  # archived redirect
    site.route("/article/4", status=403)
    article(5, f"{HK}/article/5")
    site.route("/article/5", status=503)
    article(6, f"{HK}/article/6")
    site.stall("/article/6", 5)
    article(7, f"{HK}/article/7")
    site.redirect("/article/7", "/article/7-new")
    site.route("/article/7-new", body=html("moved"))
    article(8, f"{HK}/article/8")
    site.redirect_loop("/article/8")
    article(9, "http://no-such-host.invalid/article/9")
    article(10, f"http://127.0.0.1:{closed_port()}/article/10")
    article(11, f"https://localhost:{tls_port}/article/11")
    article(12, f"{HK}/article/12")
    site.route("/article/12", body=html("404 Not Found"))  # soft 404 by its title

    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url},
                          security_extra="max_image_bytes = 5000")
    archive.cdx_page_size = 2  # coverage must follow resume keys
    return config


def ledger(config) -> sqlite_utils.Database:
    return sqlite_utils.Database(config.parent / "preserver.db")


def status_of(db, url: str) -> dict:
    return db["urls"].get(url)


def test_first_run_records_every_status(world, archive):
    result = run_cli("run", "--config", str(world))
    assert result.exit_code == 0, result.output
    db = ledger(world)
    assert db["articles"].count == 12
    run = list(db["runs"].rows)[-1]
    assert run["status"] == "completed" and run["finished_at"]

    snap = {r["url"].split("/web/")[1]: r for r in db.query(
        "select u.* from urls u join links l on l.url = u.url where l.role = 'snapshot'")}
    assert snap[f"{TS}/{HK}/article/1/新聞-一"]["status"] == "ok"
    two = snap[f"20200101000000/{HK}/article/2"]
    assert two["status"] == "redirected" and two["capture_timestamp"] == "20200105000000"
    assert two["final_url"] == f"{WB}/20200105000000/{HK}/article/2"
    assert snap[f"{TS}/{HK}/article/3"]["status"] == "not_found"
    four = snap[f"{TS}/{HK}/article/4"]
    assert four["status"] == "redirected" and "archived redirect" in four["error"]

    original = {r["url"]: r for r in db.query(
        "select u.* from urls u join links l on l.url = u.url where l.role = 'original'")}
    expect = {
        f"{HK}/article/1/新聞-一": "ok", f"{HK}/article/2": "soft_404",
        f"{HK}/article/3": "not_found", f"{HK}/article/4": "client_error",
        f"{HK}/article/5": "server_error",
        f"{HK}/article/7": "redirected", f"{HK}/article/8": "too_many_redirects",
        f"{HK}/article/12": "soft_404",
    }
    assert {u: original[u]["status"] for u in expect} == expect
    # a timeout says nothing about the page: an attempt, the verdict stays unknown
    six = original[f"{HK}/article/6"]
    assert (six["status"], six["last_attempt_status"]) == (None, "timeout")
    # NXDOMAIN is a verdict once a resolver has answered another name in this run; where
    # no resolver answers at all (no network) it is only an attempt
    nine = original["http://no-such-host.invalid/article/9"]
    assert nine["last_attempt_status"] == "dns_error" and nine["status"] in ("dns_error", None)
    by_article = {r["path"]: r["status"] for r in db.query(
        "select a.path, u.status from articles a join urls u on u.url = a.original_url")}
    assert by_article["1/article_10.md"] == "connection_error"
    assert by_article["1/article_11.md"] == "tls_error"
    assert original[f"{HK}/article/7"]["final_url"].endswith("/article/7-new")
    assert original[f"{HK}/article/5"]["attempts"] == 3  # 5xx retried, bounded

    one = original[f"{HK}/article/1/新聞-一"]
    assert (one["captures"], one["first_capture"], one["last_capture"]) == (
        4, "20170101000000", "20230306093752")

    images = {r["url"].split("/", 6)[-1]: r for r in db["images"].rows}
    by_name = {k.split("/")[-1].split("?")[0]: v for k, v in images.items()}
    assert by_name["donald%20trump-習近平-%EF%BF%BD_large.png"]["status"] == "saved"
    assert by_name["moved.jpg"]["status"] == "saved"
    assert by_name["moved.jpg"]["capture_timestamp"] == "20200101000000"
    assert by_name["never.png"]["status"] == "missing"
    assert by_name["error-page.png"]["status"] == "invalid"
    assert by_name["big.png"]["status"] == "too_large"
    assert by_name["broken.png"]["status"] == "failed"
    assert db["urls"].get("javascript:alert(1)")["status"] == "blocked"
    assert db["urls"].get("http://[::1")["status"] == "invalid"


def test_saved_images_are_the_archives_bytes(world, archive):
    assert run_cli("run", "--config", str(world)).exit_code == 0
    db = ledger(world)
    saved = list(db["images"].rows_where("status = 'saved'"))
    assert len(saved) == 2
    for row in saved:
        data = (world.parent / "media" / row["local_path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        served = archive.captures(row["original_url"])[0].body
        assert data == served
    cjk = next(r for r in saved if "donald" in r["url"])
    assert cjk["local_path"].startswith("www.hkcnews.com/news_新聞/hk-discuss/2018/11/")
    assert cjk["content_type"] == "image/png"


def test_second_run_does_not_refetch_saved_images(world, archive):
    assert run_cli("run", "--config", str(world)).exit_code == 0
    archive.clear_requests()
    assert run_cli("run", "--config", str(world)).exit_code == 0
    fetched = [r.path for r in archive.requests if "id_/" in r.path and "uploads" in r.path
               or "donald" in r.path]
    assert not any("moved.jpg" in p or "donald" in p for p in fetched)
    db = ledger(world)
    assert db["runs"].count == 2
    # history is append-only: every check of both runs is kept
    url = f"{WB}/{TS}/{HK}/article/3"
    assert db.execute("select count(*) from checks where url = ?", [url]).fetchone()[0] == 2
    assert db["urls"].get(f"{HK}/article/3")["consecutive_failures"] == 2


def test_something_got_worse_exits_1(world, site):
    assert run_cli("run", "--config", str(world)).exit_code == 0
    site.route("/article/1/%E6%96%B0%E8%81%9E-%E4%B8%80", status=410)
    result = run_cli("run", "--config", str(world))
    assert result.exit_code == 1
    row = ledger(world)["urls"].get(f"{HK}/article/1/新聞-一")
    assert (row["status"], row["previous_status"]) == ("not_found", "ok")
    assert row["last_ok_at"] and row["first_failed_at"]


def test_private_addresses_are_blocked_by_default(tmp_path, corpus, archive, site):
    archive.add(f"{site.base_url}/a", TS, html("a"))
    write_article(corpus, "a.md", f"{WB}/{TS}/{site.base_url}/a", f"{site.base_url}/a")
    site.route("/a", body=html("a"))
    config = write_config(tmp_path, archive, corpus, allow_private=False)
    assert run_cli("run", "--config", str(config)).exit_code == 0
    row = ledger(config)["urls"].get(f"{site.base_url}/a")
    assert row["status"] == "blocked" and "non-public address" in row["error"]
    assert not [r for r in site.requests]  # not one byte reached it
    # the configured archive itself is trusted: the snapshot was checked
    assert ledger(config)["urls"].get(f"{WB}/{TS}/{site.base_url}/a")["status"] == "ok"


def test_repeated_429s_stop_the_replay_class_instead_of_looping(tmp_path, corpus, archive):
    for n in range(10):
        archive.add(f"{HK}/a/{n}", TS, html("a"))
        write_article(corpus, f"a{n}.md", f"{WB}/{TS}/{HK}/a/{n}", f"{HK}/a/{n}")
    archive.fail_next("replay", status=429, count=1000)
    archive.fail_next("cdx", status=429, count=1000)
    # a pause long enough for the requests in flight at the first 429 to come back inside it
    config = write_config(tmp_path, archive, corpus, origins={
        HK: f"http://127.0.0.1:{closed_port()}"},
        archive_extra="max_429_per_class = 3\npause_after_429_seconds = 0.5")
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0
    # three 429s per class, then that class stopped: not one more request of it
    by_class = {}
    for record in archive.requests:
        by_class.setdefault(record.endpoint_class, []).append(record.status)
    # the 429s of requests already in flight at the first one count once: at most
    # replay_concurrency of them, then one probe at a time
    assert by_class["cdx"] == [429] * 3
    assert set(by_class["replay"]) == {429} and 3 <= len(by_class["replay"]) <= 4 + 2
    db = ledger(config)
    # what was asked is history; nothing became a verdict, and what was never asked left no
    # trace: all ten stay due
    assert db.execute("select count(*) from urls u join links l on l.url = u.url "
                      "where l.role = 'snapshot' and u.status is not null").fetchone()[0] == 0
    asked = db.execute("select count(*) from checks where url like ? and conclusive = 0",
                       [f"{WB}/%"]).fetchone()[0]
    assert 1 <= asked < 10
    assert "risk an IP block" in result.output and "left due for the next run" in result.output


def test_a_429_with_retry_after_is_honoured_then_succeeds(tmp_path, corpus, archive):
    archive.add(f"{HK}/a", TS, html("a"))
    write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/a", f"{HK}/a")
    archive.fail_next("replay", status=429, count=1, headers={"Retry-After": "1"})
    config = write_config(tmp_path, archive, corpus,
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    assert run_cli("check", "--config", str(config)).exit_code == 0  # nothing scanned yet
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    assert run_cli("check", "--config", str(config)).exit_code == 0
    row = ledger(config)["urls"].get(f"{WB}/{TS}/{HK}/a")
    assert (row["status"], row["attempts"]) == ("ok", 2)
    assert row["elapsed_ms"] >= 1000  # waited as asked


def test_another_run_holding_the_ledger_exits_3_and_writes_nothing(tmp_path, corpus, archive):
    config = write_config(tmp_path, archive, corpus)
    with LedgerLock(tmp_path / "preserver.db"):
        result = run_cli("run", "--config", str(config))
    assert result.exit_code == 3
    assert "holds the ledger" in result.output
    assert not (tmp_path / "preserver.db").exists()


def test_bad_config_exits_2(tmp_path):
    (tmp_path / "config.toml").write_text('[corpus]\npath = "c"\n')
    result = run_cli("run", "--config", str(tmp_path / "config.toml"))
    assert result.exit_code == 2
    assert "[ledger] path is required" in result.output


def test_report_summarises_the_ledger(world, site):
    import csv
    import io
    import json

    run_cli("run", "--config", str(world))
    site.route("/article/1/%E6%96%B0%E8%81%9E-%E4%B8%80", status=404)  # gets worse
    run_cli("run", "--config", str(world))
    text = run_cli("report", "--config", str(world))
    assert text.exit_code == 0
    assert "Articles: 12 (ok 12" in text.output
    assert "Snapshots:" in text.output and "Image files:" in text.output
    assert f"worse: {HK}/article/1/新聞-一  ok -> not_found" in text.output
    assert "Articles losing the most:" in text.output

    data = json.loads(run_cli("report", "--config", str(world), "--format", "json").output)
    assert data["articles"]["total"] == 12
    assert data["images"]["saved"] == 2
    assert data["urls"]["snapshot"]["not_found"] == 1
    assert data["last_run"]["status"] == "completed"
    assert data["changes"]["worse_count"] == 1
    assert data["worst_articles"][0]["snapshot"] == "not_found"

    rows = list(csv.DictReader(io.StringIO(
        run_cli("report", "--config", str(world), "--format", "csv").output)))
    assert {"section": "images", "role": "image", "status": "saved", "count": "2"} in rows
    markdown = run_cli("report", "--config", str(world), "--format", "markdown").output
    assert "| snapshot | not_found | 1 |" in markdown

