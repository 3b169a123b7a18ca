"""Self-tests for the local test servers in tests/servers.

The integration tests trust these servers to behave like web.archive.org and like a hostile
live web; these tests pin that behaviour down, through a real HTTP client (httpx), so a
regression in the doubles cannot silently turn the integration tests into no-ops.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import threading
import time
import zlib

import httpx
import pytest

from tests.servers import LiveSite, WaybackArchive

TS = "20210615120000"
ARTICLE = "https://www.hkcnews.com/article/16142/title"
# The corpus's hardest shape: raw CJK, %20 and the captured replacement character in one URL.
IMAGE = "https://www.hkcnews.com/news_新聞/photo 1%20big%EF%BF%BD.jpg"
IMAGE_ENCODED = "http://hkcnews.com/news_%E6%96%B0%E8%81%9E/photo%201%20big%EF%BF%BD.jpg"


@pytest.fixture(scope="module")
def client():
    with httpx.Client(follow_redirects=False, timeout=5) as c:
        yield c


def cdx(client: httpx.Client, archive: WaybackArchive, **params: str) -> httpx.Response:
    return client.get(archive.cdx_url, params=params)


def cdx_rows(client: httpx.Client, archive: WaybackArchive, **params: str) -> list[list[str]]:
    return cdx(client, archive, output="json", **params).json()


def cdx_column(client: httpx.Client, archive: WaybackArchive, fl: str, **params: str) -> list[str]:
    """One CDX field of every result row (header row dropped)."""
    return [row[0] for row in cdx_rows(client, archive, fl=fl, **params)[1:]]


# -- replay -----------------------------------------------------------------------------------


def test_exact_capture_is_replayed_with_memento_headers(archive, client):
    archive.add(ARTICLE, TS, b"<html>article</html>")
    r = client.get(archive.replay_url(TS, ARTICLE, "id_"))
    assert r.status_code == 200
    assert r.content == b"<html>article</html>"
    assert r.headers["content-type"] == "text/html"
    assert r.headers["memento-datetime"] == "Tue, 15 Jun 2021 12:00:00 GMT"
    assert f'<{ARTICLE}>; rel="original"' in r.headers["link"]
    assert 'rel="first last memento"' in r.headers["link"]


def test_head_is_like_get_without_body(archive, client):
    archive.add(ARTICLE, TS, b"12345")
    r = client.head(archive.replay_url(TS, ARTICLE))
    assert (r.status_code, r.headers["content-length"], r.content) == (200, "5", b"")


def test_inexact_timestamp_redirects_to_nearest_capture(archive, client):
    for ts in ("20190101000000", "20210601000000", "20230101000000"):
        archive.add(ARTICLE, ts)
    r = client.get(f"{archive.base_url}/web/{TS}im_/{ARTICLE}")
    assert r.status_code == 302
    assert r.headers["location"] == f"{archive.base_url}/web/20210601000000im_/{ARTICLE}"
    assert r.headers["x-archive-redirect-reason"] == "found capture at 20210601000000"
    assert "memento-datetime" not in r.headers


def test_partial_timestamp_and_pywb_redirect_status(archive, client):
    archive.add(ARTICLE, "20201231000000")
    archive.add(ARTICLE, "20220101000000")
    archive.redirect_status = 307
    r = client.get(f"{archive.base_url}/web/2021/{ARTICLE}")
    assert r.status_code == 307
    assert r.headers["x-archive-redirect-reason"] == "found capture at 20201231000000"


def test_timegate_without_timestamp_goes_to_latest(archive, client):
    archive.add(ARTICLE, "20190101000000")
    archive.add(ARTICLE, "20230101000000")
    r = client.get(f"{archive.base_url}/web/{ARTICLE}")
    assert r.headers["location"] == archive.replay_url("20230101000000", ARTICLE)


def test_unarchived_url_is_404(archive, client):
    archive.add(ARTICLE, TS)
    r = client.get(archive.replay_url(TS, "https://www.hkcnews.com/other"))
    assert r.status_code == 404
    assert b"<html>" in r.content


def test_archived_redirect_keeps_memento_datetime(archive, client):
    archive.add("http://hkcnews.com/a", TS, status=301, location="https://www.hkcnews.com/b")
    r = client.get(archive.replay_url(TS, "http://hkcnews.com/a", "id_"))
    assert r.status_code == 301
    assert r.headers["memento-datetime"] == "Tue, 15 Jun 2021 12:00:00 GMT"
    assert r.headers["location"] == f"{archive.base_url}/web/{TS}id_/https://www.hkcnews.com/b"


@pytest.mark.parametrize(
    "requested",
    [
        IMAGE,  # httpx percent-encodes the CJK and the space itself
        IMAGE_ENCODED,
        IMAGE_ENCODED.lower(),  # lower-case escapes
        "https://www.HKCNEWS.com/news_新聞/photo%201%20big%EF%BF%BD.jpg",
        "http:/hkcnews.com/news_新聞/photo%201%20big%EF%BF%BD.jpg",  # a proxy collapsed //
        "www.hkcnews.com/news_新聞/photo%201%20big%EF%BF%BD.jpg",  # no scheme
    ],
)
def test_cjk_url_found_in_every_spelling(archive, client, requested):
    archive.add(IMAGE, TS, b"jpeg", "image/jpeg")
    r = client.get(f"{archive.base_url}/web/{TS}im_/{requested}")
    assert (r.status_code, r.content) == (200, b"jpeg")


def test_raw_utf8_request_target_is_understood_and_logged_raw(archive):
    archive.add(IMAGE, TS, b"jpeg", "image/jpeg")
    target = f"/web/{TS}im_/http://hkcnews.com/news_新聞/photo%201%20big%EF%BF%BD.jpg"
    with socket.create_connection(("127.0.0.1", archive.port)) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = sock.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 200")
    assert archive.requests[-1].path == target


def test_request_log_keeps_raw_target_and_connection_is_reused(archive):
    archive.add(ARTICLE, TS, b"x")
    conn = http.client.HTTPConnection("127.0.0.1", archive.port)
    target = f"/web/{TS}id_/{IMAGE_ENCODED}?a=%2F"
    conn.request("GET", target)
    conn.getresponse().read()
    sock = conn.sock
    conn.request("GET", target)
    assert conn.getresponse().status == 404
    assert conn.sock is sock  # keep-alive: the server did not close
    conn.close()
    assert [r.path for r in archive.requests] == [target, target]
    assert archive.requests[0].endpoint_class == "replay"


# -- CDX ------------------------------------------------------------------------------------


def test_cdx_json_has_header_row_and_default_fields(archive, client):
    archive.add(IMAGE, TS, b"jpeg", "image/jpeg")
    rows = cdx_rows(client, archive, url=IMAGE_ENCODED)
    assert rows[0] == "urlkey timestamp original mimetype statuscode digest length".split()
    urlkey, ts, original, mimetype, status, digest, length = rows[1]
    assert urlkey == "com,hkcnews)/news_%e6%96%b0%e8%81%9e/photo%201%20big%ef%bf%bd.jpg"
    assert (ts, original, mimetype, status, length) == (TS, IMAGE, "image/jpeg", "200", "4")
    assert digest == base64.b32encode(hashlib.sha1(b"jpeg").digest()).decode()


def test_cdx_empty_result_is_bare_empty_array(archive, client):
    r = cdx(client, archive, url="nothing.example/", output="json")
    assert r.status_code == 200 and r.content == b"[]"


def test_cdx_resume_keys_page_through_everything_once(archive, client):
    archive.cdx_page_size = 4
    expected = {(f"http://x.com/p{i}", f"2021010100000{i}") for i in range(10)}
    for url, ts in expected:
        archive.add(url, ts)
    seen, pages, resume = [], 0, None
    while True:
        params = {"url": "x.com/*", "fl": "original,timestamp", "showResumeKey": "true"}
        rows = cdx_rows(client, archive, **params, **({"resumeKey": resume} if resume else {}))
        pages += 1
        if rows[-2:-1] == [[]]:
            seen += rows[1:-2]
            resume = rows[-1][0]
        else:
            seen += rows[1:]
            break
    assert pages == 3
    assert sorted(map(tuple, seen)) == sorted(expected)


def test_cdx_text_output_and_resume_key(archive, client):
    archive.cdx_page_size = 1
    archive.add("http://x.com/a", TS)
    archive.add("http://x.com/b", TS)
    lines = cdx(client, archive, url="x.com/*", showResumeKey="true").text.split("\n")
    assert lines[0].split(" ")[:3] == ["com,x)/a", TS, "http://x.com/a"]
    assert len(lines[0].split(" ")) == 7
    assert lines[1] == "" and lines[2]


def test_cdx_prefix_match(archive, client):
    for path in ("x.com/news/1", "x.com/news/2", "x.com/newsletter", "y.com/news/3"):
        archive.add("http://" + path, TS)
    prefixed = cdx_column(client, archive, "original", url="x.com/news/*")
    assert prefixed == ["http://x.com/news/1", "http://x.com/news/2"]
    assert len(cdx_column(client, archive, "original", url="x.com/news", matchType="prefix")) == 3


def test_cdx_host_and_domain_match(archive, client):
    for url in ("http://www.x.com/a", "http://img.x.com/b", "http://x.com.evil/c"):
        archive.add(url, TS)
    assert len(cdx_rows(client, archive, url="x.com", matchType="host")) == 2
    assert len(cdx_rows(client, archive, url="*.x.com")) == 3


def test_cdx_filters(archive, client):
    archive.add("http://x.com/a", TS, mimetype="text/html")
    archive.add("http://x.com/b", TS, mimetype="image/png")
    archive.add("http://x.com/c", TS, mimetype="image/jpeg", status=404)

    def paths(filter: str) -> str:
        originals = cdx_column(client, archive, "original", url="x.com/*", filter=filter)
        return " ".join(url.removeprefix("http://x.com/") for url in originals)

    assert paths("mimetype:image/.*") == "b c"
    assert paths("!mimetype:text/html") == "b c"
    assert paths("statuscode:200") == "a b"
    assert paths("statuscode:20") == ""  # fullmatch, not search


def test_cdx_collapse_and_time_range(archive, client):
    bodies = {"20210101000000": b"a", "20210101120000": b"a", "20210102000000": b"b"}
    for ts, body in {**bodies, "20220101000000": b"b"}.items():
        archive.add("http://x.com/a", ts, body)

    def hours(**params: str) -> str:
        timestamps = cdx_column(client, archive, "timestamp", url="x.com/a", **params)
        return " ".join(ts[:10] for ts in timestamps)

    assert hours(collapse="digest") == "2021010100 2021010200"
    assert hours(collapse="timestamp:8") == "2021010100 2021010200 2022010100"
    assert hours(**{"from": "202101", "to": "2021"}) == "2021010100 2021010112 2021010200"


def test_cdx_limit(archive, client):
    for i in range(5):
        archive.add("http://x.com/a", f"2021010100000{i}")
    assert len(cdx_rows(client, archive, url="x.com/a", limit="2")) == 3
    last = cdx_rows(client, archive, url="x.com/a", limit="-2", fl="timestamp")
    assert last[1:] == [["20210101000003"], ["20210101000004"]]
    paged = cdx_rows(client, archive, url="x.com/a", limit="2", showResumeKey="true")
    assert paged[-2] == [] and len(paged) == 5


def test_cdx_bad_query_is_400(archive, client):
    assert cdx(client, archive, url="x.com", fl="nope").status_code == 400


# -- availability, timemap ----------------------------------------------------------------


def test_availability_closest_and_empty(archive, client):
    archive.add(ARTICLE, "20190101000000")
    archive.add(ARTICLE, "20230101000000")
    body = client.get(archive.availability_url, params={"url": ARTICLE, "timestamp": "2020"})
    closest = body.json()["archived_snapshots"]["closest"]
    assert closest == {
        "status": "200",
        "available": True,
        "timestamp": "20190101000000",
        "url": f"{archive.base_url}/web/20190101000000/{ARTICLE}",
    }
    assert body.json()["url"] == ARTICLE
    latest = client.get(archive.availability_url, params={"url": ARTICLE}).json()
    assert latest["archived_snapshots"]["closest"]["timestamp"] == "20230101000000"
    empty = client.get(archive.availability_url, params={"url": "nope.example"}).json()
    assert empty == {"url": "nope.example", "archived_snapshots": {}}


def test_availability_finds_cjk_url_in_other_spelling(archive, client):
    archive.add(IMAGE, TS)
    r = client.get(archive.availability_url, params={"url": IMAGE_ENCODED})
    assert json.loads(r.content)["archived_snapshots"]["closest"]["timestamp"] == TS


def test_timemap_lists_all_mementos(archive, client):
    for ts in ("20190101000000", "20200101000000", "20210101000000"):
        archive.add(ARTICLE, ts)
    r = client.get(archive.timemap_url(ARTICLE))
    assert r.headers["content-type"] == "application/link-format"
    lines = r.text.strip().split(",\n")
    assert lines[0] == f'<{ARTICLE}>; rel="original"'
    rels = [line.split('rel="')[1].split('"')[0] for line in lines]
    assert rels == ["original", "self", "timegate", "first memento", "memento", "last memento"]
    assert 'datetime="Tue, 01 Jan 2019 00:00:00 GMT"' in lines[3]
    assert client.get(archive.timemap_url("nope.example")).status_code == 404


# -- faults ---------------------------------------------------------------------------------


def test_fail_next_then_normal(archive, client):
    archive.add(ARTICLE, TS)
    archive.fail_next("replay", count=2)
    statuses = [client.get(archive.replay_url(TS, ARTICLE)) for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert "retry-after" not in statuses[0].headers
    assert archive.count_status(429) == 2 and archive.counts() == {"replay": 3}


def test_fail_next_custom_and_dropped(archive, client):
    archive.fail_next("cdx", 503, headers={"Retry-After": "7"}, body=b"busy")
    r = cdx(client, archive, url="x.com")
    assert (r.status_code, r.headers["retry-after"], r.content) == (503, "7", b"busy")
    archive.fail_next("cdx", status=0)
    with pytest.raises(httpx.TransportError):
        cdx(client, archive, url="x.com")
    assert cdx(client, archive, url="x.com").status_code == 200


def test_rate_limit_answers_429_past_the_limit(archive, client):
    archive.rate_limit(("cdx", "timemap"), 3)  # one shared pool, as at archive.org
    statuses = [cdx(client, archive, url="x.com").status_code for _ in range(2)]
    statuses.append(client.get(archive.timemap_url("x.com")).status_code)
    statuses.append(cdx(client, archive, url="x.com").status_code)
    assert statuses == [200, 200, 404, 429]
    assert client.get(archive.replay_url(TS, "x.com")).status_code == 404  # other classes free


def test_rate_limit_window_slides(archive, client):
    archive.rate_limit("availability", 1, window=0.2)

    def status() -> int:
        return client.get(archive.availability_url, params={"url": "x"}).status_code

    assert [status(), status()] == [200, 429]
    time.sleep(0.25)
    assert status() == 200


def test_concurrency_limit_and_latency(archive):
    archive.add(ARTICLE, TS)
    archive.concurrency_limit("replay", 1)
    archive.latency_by_class = {"replay": 0.3}
    statuses: list[int] = []

    def fetch() -> None:
        statuses.append(httpx.get(archive.replay_url(TS, ARTICLE), timeout=5).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 429, 429]


def test_refused_connections(archive, client):
    archive.refuse_connections(True)
    with pytest.raises(httpx.TransportError):
        client.get(archive.replay_url(TS, ARTICLE))
    archive.refuse_connections(False)
    assert client.get(archive.replay_url(TS, ARTICLE)).status_code == 404
    assert [r.status for r in archive.requests] == [0, 404]


# -- Save Page Now --------------------------------------------------------------------------


def test_spn1_saves_and_redirects_to_replay(archive, client):
    r = client.get(f"{archive.base_url}/save/{ARTICLE}")
    assert r.status_code == 302
    (capture,) = archive.captures(ARTICLE)
    assert r.headers["location"] == archive.replay_url(capture.timestamp, ARTICLE)
    assert client.get(r.headers["location"]).content == b"saved"


def test_spn2_job_goes_pending_then_success(archive, client):
    r = client.post(archive.save_url, data={"url": ARTICLE}, headers={"Accept": "application/json"})
    job = r.json()
    assert job["url"] == ARTICLE and job["job_id"].startswith("spn2-")
    status_url = f"{archive.base_url}/save/status/{job['job_id']}"
    assert client.get(status_url).json()["status"] == "pending"
    done = client.get(status_url).json()
    assert done["status"] == "success" and done["original_url"] == ARTICLE
    assert [c.timestamp for c in archive.captures(ARTICLE)] == [done["timestamp"]]
    assert archive.counts() == {"save": 1, "save_status": 2}


# -- the live web ---------------------------------------------------------------------------


def test_live_routes_match_raw_target(site, client):
    site.route("/a%20b?x=%2F", body=b"hit")
    assert client.get(site.url("/a%20b?x=%2F")).content == b"hit"
    assert client.get(site.url("/a%20b?x=/")).status_code == 404
    assert site.counts() == {"live": 2}


def test_live_redirect_loop(site, client):
    other = site.redirect_loop("/a")
    r = client.get(site.url("/a"))
    assert (r.status_code, r.headers["location"]) == (302, other)
    assert client.get(site.url(other)).headers["location"] == "/a"
    with pytest.raises(httpx.TooManyRedirects):
        httpx.get(site.url("/a"), follow_redirects=True)


def test_live_fail_times(site, client):
    site.fail_times("/flaky", 503, 2, then_body=b"ok")
    statuses = [client.get(site.url("/flaky")).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def test_live_gzip_bomb(site, client):
    site.gzip_bomb("/bomb", 20 << 20)
    with client.stream("GET", site.url("/bomb")) as r:
        assert r.headers["content-encoding"] == "gzip"
        assert int(r.headers["content-length"]) < 100_000
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        size = sum(len(inflater.decompress(chunk, 1 << 20)) for chunk in r.iter_raw())
    assert size >= 1 << 20  # bounded read; the whole stream would be 20 MiB


def test_live_stall_times_out(site):
    site.stall("/slow", 1.0, body=b"late")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(site.url("/slow"), timeout=0.2)


def test_live_drip_short_body_and_reset(site, client):
    site.drip("/drip", 200, total=20)
    assert client.get(site.url("/drip")).content == b"x" * 20
    site.short_body("/short", declared=100, actual=10)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(site.url("/short"))
    site.reset_mid_body("/reset")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get(site.url("/reset"))


def test_servers_are_quiet(site, client, capsys):
    client.get(site.url("/missing"))
    assert capsys.readouterr().err == ""
    assert site.errors == []


def test_stop_ends_stalled_requests_then_port_refuses():
    site = LiveSite().start()
    site.drip("/forever", 100)
    with httpx.stream("GET", site.url("/forever"), timeout=5) as r:
        chunks = r.iter_raw()
        next(chunks)
        started = time.monotonic()
        site.stop()
        for _ in chunks:  # a close-delimited body: it ends when the server goes
            pass
    assert time.monotonic() - started < 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(site.url("/forever"))
