"""Archive-scale behaviour: bulk CDX with resume keys, exact captures with digests, one probe
per dead host, incremental cron runs that cost nothing when nothing is stale, budgets."""

from __future__ import annotations

import datetime as dt
import json
import re

import sqlite_utils

from preserver.config import ScheduleConfig
from preserver.ledger import ensure_schema
from preserver.queries import due_params, due_sql
from preserver.schedule import is_dead
from tests.conftest import PNG, closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"


def due_urls(db, urls, policy, at):
    """The URLs of `urls` that the schedule calls due, stalest first (the run's own SQL)."""
    candidates = "select value as url from json_each(:urls)"
    params = {**due_params(policy, at), "urls": json.dumps(urls)}
    return [row[0] for row in db.execute(due_sql(candidates), params)]


def corpus_of(corpus, archive, n: int, images: int = 2, prefix: str = "article"):
    """n articles under one prefix, each with `images` images, all archived."""
    for i in range(n):
        original = f"{HK}/{prefix}/{i}/標題-{i}"
        archive.add(original, TS, b"<html>a</html>")
        srcs = []
        for j in range(images):
            image = f"{HK}/news_新聞/2020/{i}-{j}%20x.png"
            archive.add(image, TS, PNG + f"{i}-{j}".encode(), "image/png")
            srcs.append(f"{WB}/{TS}im_/{image}")
        write_article(corpus, f"{i // 100}/article_{i}.md", f"{WB}/{TS}/{original}", original,
                      srcs)


def db_of(config) -> sqlite_utils.Database:
    return sqlite_utils.Database(config.parent / "preserver.db")


def test_bulk_cdx_answers_snapshots_with_few_requests(tmp_path, corpus, archive):
    corpus_of(corpus, archive, 60)
    archive.cdx_page_size = 25  # force resume keys: 60 articles + 120 images span pages
    config = write_config(tmp_path, archive, corpus, schedule="",
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    counts = archive.counts()
    assert counts["cdx"] <= 12  # two prefixes, paged: not one query per URL
    assert counts["replay"] == 120  # one request per image, none per snapshot
    assert not any("resumeKey" in r.path for r in archive.requests[:1])
    assert any("resumeKey=" in r.path for r in archive.requests)
    db = db_of(config)
    assert {r["method"] for r in db.query(
        "select method from urls u join links l on l.url = u.url where role = 'snapshot'")} == {
        "cdx"}
    rows = list(db["images"].rows)
    assert len(rows) == 120 and {r["status"] for r in rows} == {"saved"}
    assert {r["digest_ok"] for r in rows} == {1}
    originals = list(db.query(
        "select captures from urls u join links l on l.url = u.url where role = 'original'"))
    assert {r["captures"] for r in originals} == {1}


def test_second_run_with_nothing_stale_makes_no_request(tmp_path, corpus, archive):
    corpus_of(corpus, archive, 30)
    config = write_config(tmp_path, archive, corpus, schedule="",
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    archive.clear_requests()
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0
    assert archive.requests == []
    assert "This run: 0 requests" in result.output
    run = list(db_of(config)["runs"].rows)[-1]
    assert run["requests"] == 0 and run["checks"] == 0


def test_changed_article_is_read_again_and_unchanged_are_not(tmp_path, corpus, archive):
    corpus_of(corpus, archive, 5, images=0)
    config = write_config(tmp_path, archive, corpus, schedule="")
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    path = corpus / "0/article_3.md"
    path.write_text(path.read_text(encoding="utf-8").replace("標題", "新標題"), encoding="utf-8")
    (corpus / "0/article_4.md").unlink()
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    run = list(db_of(config)["runs"].rows)[-1]
    import json

    parse = json.loads(run["summary"])["parse"]
    assert parse == {"unchanged": 3, "ok": 1, "removed": 1}
    removed = db_of(config)["articles"].get("0/article_4.md")
    assert removed["removed_at"]  # kept, with its history, out of future checks


def test_dead_host_costs_one_probe(tmp_path, corpus, archive):
    for i in range(8):
        original = f"http://no-such-host.invalid/article/{i}"
        archive.add(original, TS, b"<html>a</html>")
        write_article(corpus, f"a{i}.md", f"{WB}/{TS}/{original}", original)
    config = write_config(tmp_path, archive, corpus)
    assert run_cli("run", "--config", str(config)).exit_code == 0
    rows = list(db_of(config).query(
        "select c.attempts, u.status, u.last_attempt_status, c.error from urls u "
        "join links l on l.url = u.url join checks c on c.url = u.url "
        "where l.role = 'original' order by c.attempts desc"))
    # no resolver answered any other name in this run (the archive is an address): the
    # failure is recorded as an attempt, not as a verdict about the host
    assert {(r["status"], r["last_attempt_status"]) for r in rows} == {(None, "dns_error")}
    # one probe (NXDOMAIN), or, when the failure is temporary (no resolver at all: a machine
    # offline), the origin's retry budget of three tries with backoff, one at a time, then no
    # more requests
    attempts = [r["attempts"] for r in rows]
    assert sum(attempts) in (1, 3) and attempts.count(0) >= 5, attempts
    assert all("unreachable earlier in this run" in r["error"] for r in rows
               if r["attempts"] == 0)


def test_budget_stops_early_and_next_run_resumes(tmp_path, corpus, archive):
    corpus_of(corpus, archive, 10, images=3)
    config = write_config(tmp_path, archive, corpus, schedule="",
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    result = run_cli("run", "--config", str(config), "--max-requests", "8")
    assert result.exit_code == 0
    assert "budget" in result.output
    assert archive.counts()["replay"] < 30
    saved = db_of(config).execute("select count(*) from images").fetchone()[0]
    assert saved < 30
    assert run_cli("run", "--config", str(config)).exit_code == 0
    assert db_of(config).execute(
        "select count(*) from images where status = 'saved'").fetchone()[0] == 30


def test_killed_cdx_query_resumes_from_its_resume_key(tmp_path, corpus, archive):
    corpus_of(corpus, archive, 40, images=0)
    archive.cdx_page_size = 10
    config = write_config(tmp_path, archive, corpus,
                          origins={HK: f"http://127.0.0.1:{closed_port()}"},
                          archive_extra="max_429_per_class = 1")
    # the second page draws a 429: the class stops, the query stays partial with its key
    original_admit = archive.admit
    calls = {"cdx": 0}

    def admit(endpoint_class):
        if endpoint_class == "cdx":
            calls["cdx"] += 1
            if calls["cdx"] == 2:
                from tests.servers.messages import Response
                return Response(429, b"")
        return original_admit(endpoint_class)

    archive.admit = admit
    assert run_cli("check", "--config", str(config)).exit_code == 0  # nothing scanned yet
    assert run_cli("run", "--config", str(config)).exit_code == 0
    query = list(db_of(config)["cdx_queries"].rows)[0]
    assert query["status"] == "partial" and query["resume_key"]
    archive.clear_requests()
    assert run_cli("run", "--config", str(config)).exit_code == 0
    first = next(r.path for r in archive.requests if r.endpoint_class == "cdx")
    assert re.search(r"resumeKey=[^&]+", first)
    query = list(db_of(config)["cdx_queries"].rows)[0]
    assert query["status"] == "complete"
    assert db_of(config).execute("select count(*) from captures").fetchone()[0] == 40


def _digest_world(tmp_path, corpus, archive, image: str):
    """One article citing `image`, and 24 more pages under the same prefix (a prefix query)."""
    for i in range(25):
        original = f"{HK}/uploads/page-{i}"
        archive.add(original, TS, b"x")
        write_article(corpus, f"a{i}.md", f"{WB}/{TS}/{original}", original,
                      [f"{WB}/{TS}im_/{image}"] if i == 0 else [])
    return write_config(tmp_path, archive, corpus, schedule="",  # the real schedule
                        origins={HK: f"http://127.0.0.1:{closed_port()}"})


def test_digest_mismatch_is_corrupt_kept_and_due_again(tmp_path, corpus, archive):
    image = f"{HK}/uploads/x.png"
    expected = archive.add(image, TS, PNG + b"real", "image/png").digest
    # the replay serves other bytes than the ones the CDX index describes
    archive.fail_next("replay", status=200, body=PNG + b"other",
                      headers={"Content-Type": "image/png",
                               "Memento-Datetime": "Mon, 12 Jul 2021 02:23:51 GMT"})
    config = _digest_world(tmp_path, corpus, archive, image)
    assert run_cli("run", "--config", str(config)).exit_code == 0
    row = db_of(config)["images"].get(f"{WB}/{TS}im_/{image}")
    assert row["status"] == "corrupt" and row["digest_ok"] == 0
    assert row["expected_digest"] == expected and expected in row["error"]
    kept = tmp_path / "media" / row["local_path"]
    assert kept.read_bytes() == PNG + b"other"  # kept: it may be all there is
    archive.clear_requests()
    assert run_cli("run", "--config", str(config)).exit_code == 0  # due again at once
    assert archive.counts().get("replay") == 1
    row = db_of(config)["images"].get(f"{WB}/{TS}im_/{image}")
    assert row["status"] == "saved" and row["digest_ok"] == 1 and row["expected_digest"] is None
    assert kept.read_bytes() == PNG + b"real"


def test_digest_mismatch_tries_the_next_nearest_capture(tmp_path, corpus, archive):
    image = f"{HK}/uploads/x.png"
    archive.add(image, TS, PNG + b"real", "image/png")
    archive.add(image, "20230101000000", PNG + b"far", "image/png")
    archive.add(image, "20210801000000", PNG + b"next", "image/png")
    archive.fail_next("replay", status=200, body=PNG + b"other",
                      headers={"Content-Type": "image/png",
                               "Memento-Datetime": "Mon, 12 Jul 2021 02:23:51 GMT"})
    config = _digest_world(tmp_path, corpus, archive, image)
    assert run_cli("run", "--config", str(config)).exit_code == 0
    assert archive.counts()["replay"] == 2
    row = db_of(config)["images"].get(f"{WB}/{TS}im_/{image}")
    assert row["status"] == "saved" and row["digest_ok"] == 1
    assert row["capture_timestamp"] == "20210801000000" and TS in row["error"]
    assert (tmp_path / "media" / row["local_path"]).read_bytes() == PNG + b"next"


def test_schedule_policy():
    policy = ScheduleConfig(recheck_ok_days=30, recheck_failed_hours=24, dead_after_failures=3,
                            dead_after_days=3)
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    assert not is_dead(2, "2026-11-01T00:00:00Z", policy, now)  # too few failures
    assert not is_dead(5, "2026-11-25T00:00:00Z", policy, now)  # all on one day or two
    assert is_dead(3, "2026-11-20T00:00:00Z", policy, now)
    db = sqlite_utils.Database(memory=True)
    ensure_schema(db)
    db["urls"].insert_all([
        {"url": "ok-fresh", "status": "ok", "checked_at": "2026-11-20T00:00:00Z",
         "consecutive_failures": 0},
        {"url": "ok-stale", "status": "ok", "checked_at": "2026-10-01T00:00:00Z",
         "consecutive_failures": 0},
        {"url": "failed-once-2d", "status": "not_found", "checked_at": "2026-11-24T00:00:00Z",
         "consecutive_failures": 1},
        {"url": "failed-3x-2d", "status": "not_found", "checked_at": "2026-11-24T00:00:00Z",
         "consecutive_failures": 3},  # waits 4 days
    ])
    due = due_urls(db, ["ok-fresh", "ok-stale", "failed-once-2d", "failed-3x-2d", "new"],
                   policy, now)
    assert due == ["new", "ok-stale", "failed-once-2d"]


def test_bulk_plan_streams_urls_and_groups_them(tmp_path):
    """One pass over any number of URLs: a host and first path segment with many distinct
    URLs is one prefix query; a sparse URL named many times is one exact query; the rest are
    left to be asked one by one. `plan` takes a generator (the whole corpus streams through)."""
    from preserver.captures import CaptureIndex
    from preserver.config import ArchiveConfig, Config
    from preserver.ledger import ensure_schema, open_ledger

    db = open_ledger(tmp_path / "ledger.db")
    ensure_schema(db)
    config = Config(tmp_path, tmp_path / "ledger.db", tmp_path / "media",
                    archive=ArchiveConfig(bulk_threshold=5))
    index = CaptureIndex(db, archive=None, config=config)
    urls = (u for u in [*(f"{HK}/article/{i}" for i in range(7)),
                        *("https://hkcnews.com/aboutus/" for _ in range(6)),
                        f"{HK}/aboutus/", "https://other.example/page/1",
                        "https://other.example/"])
    queries, sparse = index.plan(urls)
    assert [(q.url, q.match_type) for q in queries] == [
        ("https://hkcnews.com/aboutus/", "exact"), ("hkcnews.com/article", "prefix")]
    assert sorted(sparse) == ["https://other.example/", "https://other.example/page/1"]
