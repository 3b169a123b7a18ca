"""Archive answers read as archive.org gives them, and no negative verdict without evidence.

- An answer carrying `Memento-Datetime` is a capture: its 429 or 503 is the site's answer when
  it was captured, a verdict about the snapshot, never a reason to retry or slow down.
- A 200 without `Memento-Datetime` is the archive speaking: its exclusion page (`excluded`) or
  an error page (no verdict). The CDX's 403 "Blocked Site Error" is `excluded`, for the URL.
- A CDX page counts only when complete and well-formed; a prefix answer that matches none of
  its URLs is checked with exact queries before it may call anything `not_found`.
"""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlite_utils

from preserver.archive import MalformedCdx, parse_cdx_json
from preserver.captures import group_of
from preserver.memento import Memento, nearest
from preserver.urls import canonical_key, nearest_in_time
from tests.conftest import PNG, closed_port, run_cli, write_article, write_config
from tests.servers.wayback import BLOCKED_SITE, EXCLUDED_PAGE

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
REDDIT = "https://www.reddit.com/r/PokemonGiveaway"
REDDIT_TS = "20150129034904"
NP = "https://nationalpost.com/health/"
NP_TS = "20170929002712"


def ledger(config) -> sqlite_utils.Database:
    return sqlite_utils.Database(config.parent / "preserver.db")


def dead_origins(*origins: str) -> dict[str, str]:
    return {o: f"http://127.0.0.1:{closed_port()}" for o in origins}


def add_reddit_429(archive) -> None:
    """The capture behind archive.org's recorded answer: the site rate-limited the crawler."""
    archive.add(REDDIT, REDDIT_TS, b"<html><body>Too Many Requests</body></html>",
                status=429, orig_headers={"Retry-After": "6"})


# -- the two recorded archive.org answers, as the test archive gives them --------------------

def test_the_test_archive_answers_as_archive_org_did(archive):
    add_reddit_429(archive)
    archive.add(NP, NP_TS, b"<html>health</html>")
    archive.exclude("https://nationalpost.com/")
    with httpx.Client() as client:
        archived = client.get(f"{archive.base_url}/web/{REDDIT_TS}id_/{REDDIT}")
        assert archived.status_code == 429
        assert archived.headers["memento-datetime"] == "Thu, 29 Jan 2015 03:49:04 GMT"
        assert archived.headers["x-archive-orig-retry-after"] == "6"
        assert "retry-after" not in archived.headers  # the site's, not the archive's
        excluded = client.get(f"{archive.base_url}/web/{NP_TS}id_/{NP}")
        assert excluded.status_code == 200 and excluded.content == EXCLUDED_PAGE
        assert b"This URL has been excluded from the Wayback Machine" in excluded.content
        assert "memento-datetime" not in excluded.headers
        assert "location" not in excluded.headers
        blocked = client.get(archive.cdx_url, params={"url": "nationalpost.com/health/",
                                                      "output": "json"})
        assert blocked.status_code == 403 and blocked.content == BLOCKED_SITE
        assert b"AdministrativeAccessControlException: Blocked Site Error" in blocked.content


# -- point 1: an archived 429 is the capture's status -----------------------------------------

def test_an_archived_429_is_a_verdict_not_a_rate_limit(tmp_path, corpus, archive):
    """One strike would stop the replay class and any pause would last 30 s: the archived 429
    must cause neither, be asked once, and the ten other snapshots be checked normally."""
    add_reddit_429(archive)
    write_article(corpus, "reddit.md", f"{WB}/{REDDIT_TS}/{REDDIT}", REDDIT)
    others = [f"https://site{i}.example/news/{i}" for i in range(10)]
    for i, original in enumerate(others):
        archive.add(original, TS, f"<html>{i}</html>".encode())
        write_article(corpus, f"other_{i}.md", f"{WB}/{TS}/{original}", original)
    config = write_config(
        tmp_path, archive, corpus,
        archive_extra="pause_after_429_seconds = 30\nmax_429_per_class = 1",
        origins=dead_origins("https://www.reddit.com",
                             *(f"https://site{i}.example" for i in range(10))))
    started = time.monotonic()
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 25, "the replay class was paused"
    urls = {r["url"]: r for r in ledger(config)["urls"].rows}
    reddit = urls[f"{WB}/{REDDIT_TS}/{REDDIT}"]
    assert (reddit["status"], reddit["http_status"]) == ("client_error", 429)
    assert reddit["capture_timestamp"] == REDDIT_TS
    assert "archived HTTP 429" in reddit["error"]
    assert reddit["attempts"] == 1
    replays = [r for r in archive.requests if r.endpoint_class == "replay"]
    assert sum(1 for r in replays if "PokemonGiveaway" in r.path) == 1  # never retried
    for original in others:
        assert urls[f"{WB}/{TS}/{original}"]["status"] == "ok"
    assert "stopped" not in result.output


# -- point 2: exclusions, and 200s that are not mementos --------------------------------------

def test_an_excluded_site_is_excluded_for_its_urls_only(tmp_path, corpus, archive):
    archive.add(NP, NP_TS, b"<html>health</html>")
    archive.add("https://nationalpost.com/logo.png", NP_TS, PNG, "image/png")
    archive.exclude("https://nationalpost.com/")
    write_article(corpus, "np.md", f"{WB}/{NP_TS}/{NP}", NP,
                  [f"{WB}/{NP_TS}im_/https://nationalpost.com/logo.png"])
    for i in range(25):  # enough to earn a prefix query, after the excluded site's 403s
        original = f"{HK}/article/{i}"
        archive.add(original, TS, b"<html>a</html>")
        write_article(corpus, f"hk_{i}.md", f"{WB}/{TS}/{original}", original)
    config = write_config(tmp_path, archive, corpus, archive_extra="max_429_per_class = 1",
                          origins=dead_origins(HK, "https://nationalpost.com"))
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    db = ledger(config)
    snapshot = db["urls"].get(f"{WB}/{NP_TS}/{NP}")
    assert snapshot["status"] == "excluded"
    assert "excluded from the Wayback Machine" in snapshot["error"]
    assert snapshot["capture_timestamp"] is None  # no made-up capture time
    image = db["images"].get(f"{WB}/{NP_TS}im_/https://nationalpost.com/logo.png")
    assert image["status"] != "saved" and "excluded" in image["error"]
    assert db["urls"].get(f"{WB}/{NP_TS}im_/https://nationalpost.com/logo.png")["status"] \
        == "excluded"
    original = db["urls"].get(NP)
    assert "Blocked Site Error" in original["error"]
    queries = {r["url"]: r for r in db["cdx_queries"].rows}
    assert queries[NP]["status"] == "excluded"
    assert "Blocked Site Error" in queries[NP]["error"]
    # not the class's fault: the other site's prefix query ran and answered its snapshots
    assert queries["hkcnews.com/article"]["status"] == "complete"
    hk = [r for r in db["urls"].rows if r["url"].startswith(f"{WB}/{TS}/{HK}")]
    assert len(hk) == 25 and {(r["status"], r["method"]) for r in hk} == {("ok", "cdx")}
    blocked = [r for r in archive.requests if r.endpoint_class == "cdx" and r.status == 403]
    assert len(blocked) == 1  # neither retried nor asked again in the run


def test_a_200_without_memento_datetime_is_no_capture(tmp_path, corpus, archive):
    original = f"{HK}/article/1"
    archive.add(original, TS, b"<html>a</html>")
    write_article(corpus, "a.md", f"{WB}/{TS}/{original}", original)
    archive.always("replay", 200, {"Content-Type": "text/html"},
                   b"<html><body>Something went wrong. Please try again.</body></html>")
    config = write_config(tmp_path, archive, corpus, origins=dead_origins(HK))
    assert run_cli("run", "--config", str(config)).exit_code == 0
    row = ledger(config)["urls"].get(f"{WB}/{TS}/{original}")
    assert row["status"] is None  # no verdict: an attempt (see test_verdict_evidence.py)
    assert "without Memento-Datetime" in row["last_attempt_error"]
    assert row["capture_timestamp"] is None
    assert not row["consecutive_failures"]  # inconclusive: not a failure of the URL


# -- point 3: CDX pages count only when complete and well-formed ------------------------------

HEADER = '["urlkey","timestamp","original","mimetype","statuscode","digest","length"]'
ROW = '["com,x)/a","20210101000000","http://x.com/a","text/html","200","D","1"]'


@pytest.mark.parametrize("body", [
    b"", b"   ", b"{}", b"null", b'"x"', b"[" + HEADER.encode() + b",\n" + ROW.encode()[:20],
    b"<html><body>Service Unavailable</body></html>", b"[[1, 2], [3, 4]]",
    b'[["original"], ["http://x.com/a"]]',  # no timestamp in the header
    ("[" + HEADER + ',["com,x)/a","2021"]]').encode(),  # a row shorter than the header
    b"[{}]", ("[" + HEADER + "," + ROW + ",[],[5]]").encode(),
], ids=["empty", "blank", "braces", "null", "string", "cut", "html", "no-header",
        "no-timestamp", "short-row", "object-row", "bad-resume-key"])
def test_malformed_cdx_pages_are_errors(body):
    with pytest.raises(MalformedCdx):
        parse_cdx_json(body)


def test_well_formed_cdx_pages():
    assert parse_cdx_json(b"[]") == ([], None)
    rows, key = parse_cdx_json(("[" + HEADER + "," + ROW + ',[],["abc"]]').encode())
    assert key == "abc" and rows[0].urlkey == "com,x)/a" and rows[0].length == "1"
    assert parse_cdx_json(b"", "pywb") == ([], None)  # pywb's "nothing archived"
    with pytest.raises(MalformedCdx):
        parse_cdx_json(b"{}\n", "pywb")


CDX_FAULTS = {
    "empty200": (200, {"Content-Type": "application/json"}, b""),
    "braces": (200, {"Content-Type": "application/json"}, b"{}"),
    "cut": (200, {"Content-Type": "application/json"}, ("[" + HEADER + ",\n" + ROW).encode()),
    "html": (200, {"Content-Type": "text/html"},
             b"<html><head><title>Error</title></head><body>Try later</body></html>"),
    "429": (429, {}, b""),
    "503": (503, {}, b"<html>Service Unavailable</html>"),
}


@pytest.mark.parametrize("mode", list(CDX_FAULTS))
def test_a_broken_cdx_calls_nothing_missing(tmp_path, corpus, archive, mode):
    """A fresh ledger, every CDX answer broken: every snapshot and image is archived, so any
    `not_found` or `missing` would be a verdict made up from a bad answer."""
    for i in range(22):
        original = f"{HK}/article/{i}"
        image = f"{HK}/uploads/{i}.png"
        archive.add(original, TS, b"<html>a</html>")
        archive.add(image, TS, PNG + bytes([i]), "image/png")
        write_article(corpus, f"a{i}.md", f"{WB}/{TS}/{original}", original,
                      [f"{WB}/{TS}im_/{image}"])
    archive.always("cdx", *CDX_FAULTS[mode])
    config = write_config(tmp_path, archive, corpus, origins=dead_origins(HK))
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    db = ledger(config)
    assert db.execute("select count(*) from urls where status = 'not_found'").fetchone()[0] == 0
    assert db.execute("select count(*) from images where status = 'missing'").fetchone()[0] == 0
    assert db.execute("select count(*) from cdx_queries where status = 'complete'"
                      ).fetchone()[0] == 0
    snapshots = db.execute("select status, count(*) from urls where url like ? group by status",
                           [f"{WB}/{TS}/%"]).fetchall()
    assert snapshots == [("ok", 22)]  # checked on the replay instead
    assert db.execute("select count(*) from images where status = 'saved'").fetchone()[0] == 22


# -- point 4: a prefix answer that matches none of its URLs -----------------------------------

def hk_articles(archive, corpus, count=22, captured=True) -> list[str]:
    snapshots = []
    for i in range(count):
        original = f"{HK}/article/{i}"
        if captured:
            archive.add(original, TS, b"<html>a</html>")
        write_article(corpus, f"a{i}.md", f"{WB}/{TS}/{original}", original)
        snapshots.append(f"{WB}/{TS}/{original}")
    return snapshots


def test_an_empty_prefix_answer_is_checked_before_it_is_believed(tmp_path, corpus, archive):
    snapshots = hk_articles(archive, corpus)
    archive.cdx_prefix_blind = True  # well-formed and empty; exact queries find captures
    config = write_config(tmp_path, archive, corpus, origins=dead_origins(HK))
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    db = ledger(config)
    query = next(db["cdx_queries"].rows_where("match_type = 'prefix'"))
    assert query["status"] == "distrusted"
    assert "matched none of the 20 URLs" in query["error"]
    assert "found captures of 3 of the 3" in query["error"]
    statuses = {db["urls"].get(s)["status"] for s in snapshots}
    assert statuses == {"ok"}  # by exact queries and replays, not by the empty prefix answer


def test_an_empty_prefix_answer_confirmed_by_exact_queries_is_believed(tmp_path, corpus,
                                                                        archive):
    snapshots = hk_articles(archive, corpus, captured=False)
    config = write_config(tmp_path, archive, corpus, origins=dead_origins(HK))
    assert run_cli("run", "--config", str(config)).exit_code == 0
    db = ledger(config)
    query = next(db["cdx_queries"].rows_where("match_type = 'prefix'"))
    assert query["status"] == "complete"
    assert db.execute("select count(*) from cdx_queries where match_type = 'exact'"
                      ).fetchone()[0] >= 3
    rows = [db["urls"].get(s) for s in snapshots]
    assert {(r["status"], r["method"]) for r in rows} == {("not_found", "cdx")}


# -- point 5: the port, one-segment paths, nearest capture, late-indexed captures ----------------

def test_the_port_stays_in_prefix_queries(tmp_path, corpus, archive):
    """Originals on host:port cost one prefix query, and it covers `host:port/article/` too."""
    host = "http://news.example:8080"
    originals = [f"{host}/article/{i}" for i in range(24)] + [f"{host}/article/"]
    for i, original in enumerate(originals):
        archive.add(original, TS, b"<html>a</html>")
        write_article(corpus, f"a{i}.md", f"{WB}/{TS}/{original}", original)
    config = write_config(tmp_path, archive, corpus, origins=dead_origins(host))
    assert run_cli("run", "--config", str(config)).exit_code == 0
    cdx = [r for r in archive.requests if r.endpoint_class == "cdx"]
    assert len(cdx) == 1, [r.path for r in cdx]
    params = parse_qs(urlsplit(cdx[0].path).query)
    assert params["url"] == ["news.example:8080/article"] and params["matchType"] == ["prefix"]
    db = ledger(config)
    rows = [db["urls"].get(f"{WB}/{TS}/{o}") for o in originals]
    assert {(r["status"], r["method"]) for r in rows} == {("ok", "cdx")}


@pytest.mark.parametrize("url", ["https://www.hkcnews.com/aboutus",
                                 "https://www.hkcnews.com/aboutus/",
                                 "https://hkcnews.com/aboutus/x?y=1",
                                 "http://hkcnews.com:8080/aboutus/"])
def test_a_one_segment_query_covers_the_page_itself(url):
    group = group_of(url)
    assert canonical_key(url).startswith(group.key_prefix)
    assert group.url.endswith("aboutus")


def test_nearest_capture_is_nearest_in_real_time():
    """For 20191231230000, 20200101000000 is 1 h away and 20191231000000 23 h; subtracting the
    digits says the opposite."""
    late, early = Memento("a", "20200101000000"), Memento("b", "20191231000000")
    assert nearest([early, late], "20191231230000") is late
    assert nearest_in_time([early, late], "20191231230000") is late
    assert nearest([early, late], "2019") is early  # partial timestamps are padded
    assert nearest([], "2019") is None


def test_nearest_capture_from_the_index_uses_real_time(tmp_path, corpus, archive):
    original = f"{HK}/article/1"
    archive.add(original, "20191231000000", b"<html>23 h away</html>")
    archive.add(original, "20200101000000", b"<html>1 h away</html>")
    snapshots = hk_articles(archive, corpus)  # a prefix query for the group
    write_article(corpus, "boundary.md", f"{WB}/20191231230000/{original}", original)
    config = write_config(tmp_path, archive, corpus, origins=dead_origins(HK))
    assert run_cli("run", "--config", str(config)).exit_code == 0
    row = ledger(config)["urls"].get(f"{WB}/20191231230000/{original}")
    assert (row["status"], row["method"]) == ("redirected", "cdx")
    assert row["capture_timestamp"] == "20200101000000"
    assert snapshots


def test_a_refresh_sees_captures_indexed_late(tmp_path, corpus, archive):
    """A capture made before the last fetch but indexed after it is seen by the next refresh:
    it asks from the last fetch minus cdx_max_age_days."""
    late_ts = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).strftime("%Y%m%d%H%M%S")
    hk_articles(archive, corpus)
    late = f"{HK}/article/late"
    write_article(corpus, "late.md", f"{WB}/{late_ts}/{late}", late)
    config = write_config(tmp_path, archive, corpus, origins=dead_origins(HK),
                          schedule="recheck_ok_days = 0\nrecheck_failed_hours = 0\n"
                                   "cdx_max_age_days = 7")
    assert run_cli("run", "--config", str(config)).exit_code == 0
    db = ledger(config)
    assert db["urls"].get(f"{WB}/{late_ts}/{late}")["status"] == "not_found"
    # 8 days later (the query is stale), the capture has been indexed meanwhile
    fetched = (dt.datetime.now(dt.UTC) - dt.timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    db.execute("update cdx_queries set fetched_at = ?", [fetched])
    db.conn.commit()
    archive.add(late, late_ts, b"<html>late</html>")
    archive.clear_requests()
    assert run_cli("run", "--config", str(config)).exit_code == 0
    cdx = [parse_qs(urlsplit(r.path).query) for r in archive.requests
           if r.endpoint_class == "cdx"]
    expected_from = (dt.datetime.now(dt.UTC) - dt.timedelta(days=15)).strftime("%Y%m%d")
    assert [q.get("from") for q in cdx if q.get("matchType") == ["prefix"]] == [[expected_from]]
    row = ledger(config)["urls"].get(f"{WB}/{late_ts}/{late}")
    assert (row["status"], row["capture_timestamp"]) == ("ok", late_ts)
