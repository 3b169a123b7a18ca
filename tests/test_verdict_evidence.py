"""A verdict is a claim: what may and may not change one.

An answer about the URL (the archive's or the site's) is conclusive; an attempt that could not
ask (429, the archive's 5xx, a refused or dropped connection, our DNS or network down, a class
stopped) is recorded in `checks` and as the URL's last attempt, never replaces its verdict,
never counts toward `dead` or a regression, and leaves the URL due for the next run.
"""

from __future__ import annotations

import asyncio
import socket

import sqlite_utils

from preserver.client import HttpClient
from preserver.config import load_config
from preserver.network import SafeNetworkBackend
from tests.conftest import closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"


def html(title: str) -> bytes:
    return f"<html><head><title>{title}</title></head><body>x</body></html>".encode()


def ledger(config) -> sqlite_utils.Database:
    return sqlite_utils.Database(config.parent / "preserver.db")


def lone_snapshots(archive, corpus, n: int) -> list[str]:
    """Snapshots alone under their first path segment, of another page than the article's
    original (whose coverage query would cover them): no CDX query covers them, so the replay
    is asked about each."""
    urls = []
    for i in range(n):
        archived = f"{HK}/section{i}/新聞-{i}"
        archive.add(archived, TS, html(f"article {i}"))
        url = f"{WB}/{TS}/{archived}"
        write_article(corpus, f"a{i}.md", url, f"{HK}/article/{i}")
        urls.append(url)
    return urls


def test_an_inconclusive_check_keeps_the_verdict_and_leaves_the_url_due(
        tmp_path, corpus, archive, site):
    [snapshot] = lone_snapshots(archive, corpus, 1)
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    first = ledger(config)["urls"].get(snapshot)
    assert first["status"] == "ok"

    archive.always("replay", 503)
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0, result.output  # an outage is no regression
    row = ledger(config)["urls"].get(snapshot)
    assert (row["status"], row["checked_at"], row["consecutive_failures"]) == \
        ("ok", first["checked_at"], 0)
    assert row["last_attempt_status"] == "server_error"
    attempt = list(ledger(config).query(
        "select status, conclusive from checks where url = ? order by id desc limit 1",
        [snapshot]))[0]
    assert attempt == {"status": "server_error", "conclusive": 0}
    health = list(ledger(config).query("select verdict, freshness from article_health"))[0]
    assert health["verdict"] != "snapshot broken"
    assert "last attempt server_error" in health["freshness"]

    # the real schedule (healthy URLs wait 30 days) still takes it again at the next run
    archive.clear_faults()
    archive.clear_requests()
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url}, schedule="")
    assert run_cli("run", "--config", str(config)).exit_code == 0
    assert archive.counts().get("replay") == 1
    assert ledger(config)["urls"].get(snapshot)["last_attempt_status"] == "ok"


def test_a_stopped_class_leaves_its_work_due_and_says_so_once(tmp_path, corpus, archive, site):
    snapshots = lone_snapshots(archive, corpus, 8)
    archive.always("replay", 429)
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url},
                          archive_extra="max_429_per_class = 2\nreplay_concurrency = 1")
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert result.output.count("rate_limited: stopped replay") == 1
    db = ledger(config)
    assert db.execute("select count(*) from urls where status is not null and url in "
                      f"({', '.join('?' * len(snapshots))})", snapshots).fetchone()[0] == 0
    asked = archive.counts()["replay"]
    recorded = db.execute("select count(*) from checks where url like ?",
                          [f"{WB}/%"]).fetchone()[0]
    assert recorded < len(snapshots)  # the ones never sent left no row
    assert asked <= 2 * 3  # two strikes, each request tried at most three times


def test_a_burst_of_429s_in_flight_is_one_strike(tmp_path, corpus, archive):
    for i in range(5):
        archive.add(f"{HK}/img/{i}.png", TS, b"x")
    config = load_config(write_config(tmp_path, archive, corpus,
                                      archive_extra="replay_concurrency = 4"))
    urls = [f"{archive.base_url}/web/{TS}id_/{HK}/img/{i}.png" for i in range(5)]

    async def burst():
        async with HttpClient(config) as client:
            await client.get(urls.pop(), "replay")  # the archive has answered once: no probe
            archive.latency_by_class["replay"] = 0.3  # all four in flight when the 429s come
            archive.fail_next("replay", 429, count=4)
            answers = await asyncio.gather(*(client.get(u, "replay") for u in urls))
            return client.limiters["replay"], [a.status_code for a in answers]

    limiter, codes = asyncio.run(burst())
    assert codes == [200] * 4  # retried after the pause
    assert limiter.strikes == 1
    assert limiter.stopped_reason is None


def test_an_offline_run_says_so_exits_4_and_writes_no_verdict(tmp_path, corpus):
    class Nowhere:
        base_url = f"http://127.0.0.1:{closed_port()}"
        availability_url = f"{base_url}/wayback/available"

    original = f"{HK}/article/1/新聞"
    write_article(corpus, "a.md", f"{WB}/{TS}/{original}", original,
                  [f"{WB}/{TS}im_/{HK}/uploads/相片.png"])
    config = write_config(tmp_path, Nowhere, corpus,
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 4
    assert "no network: nothing was checked" in result.output
    db = ledger(config)
    assert db.execute("select count(*) from urls where status is not null").fetchone()[0] == 0
    assert db.execute("select count(*) from images").fetchone()[0] == 0
    assert db.execute("select count(*) from urls where dead").fetchone()[0] == 0
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.png"))
    run = db["runs"].get(1)
    assert (run["status"], run["error"]) == ("failed", "no network: nothing was checked "
                                             "(neither the archive nor any site nor a name "
                                             "server answered)")


def test_a_temporary_dns_failure_is_retried(tmp_path, corpus, archive, site, monkeypatch):
    site.route("/article/1", body=html("眾新聞"))
    real = socket.getaddrinfo
    failures = iter([socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")])

    def flaky(host, *args, **kwargs):
        if host == "news.example":
            error = next(failures, None)
            if error:
                raise error
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    config = load_config(write_config(tmp_path, archive, corpus))

    async def fetch():
        async with HttpClient(config) as client:
            url = f"http://news.example:{site.port}/article/1"
            first = await client.get(url)
            await asyncio.gather(*(client.get(url) for _ in range(3)))
            # the name resolves again: its requests no longer probe one at a time
            return first, any(probe.is_set() for probe in client._probes.values())

    response, settled = asyncio.run(fetch())
    assert (response.status_code, response.attempts) == (200, 2)
    assert settled


def test_nxdomain_is_a_verdict_only_from_a_resolver_that_answers():
    backend = SafeNetworkBackend(allow_private=True, trusted=frozenset())
    nxdomain = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert not backend._dns_failure("gone.example", nxdomain).conclusive
    backend.resolver_answered = True  # another name resolved in this run
    assert backend._dns_failure("gone.example", nxdomain).conclusive
    temporary = backend._dns_failure("gone.example", again)
    assert (temporary.conclusive, temporary.temporary) == (False, True)
