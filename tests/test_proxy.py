"""Behind a proxy: a real `pproxy` process on 127.0.0.1 carries every request, whether it is
named by `[network] proxy` or by HTTP_PROXY/HTTPS_PROXY (NO_PROXY honoured, as httpx does by
default); the private-address rule still applies to each target, which is resolved and refused
here before anything is sent through the proxy; https targets go through CONNECT."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlite_utils

from preserver.client import HttpClient
from preserver.config import load_config
from preserver.errors import ConfigError, RequestFailed
from preserver.network import proxy_map
from preserver.status import UrlStatus
from tests.conftest import write_article, write_config
from tests.test_run_end_to_end import tls_port  # noqa: F401  (an HTTPS server, a fixture)

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
ORIGINAL = f"{HK}/news_新聞/hk-discuss/2017/09/法庭-李明哲"
IMAGE = f"{HK}/news_新聞/hk-discuss/2017/09/法庭 李明哲.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40


@dataclass
class Proxy:
    url: str
    log: Path
    process: subprocess.Popen

    def tunnels_to(self) -> list[int]:
        """The ports pproxy opened connections to (one line per client connection)."""
        return [int(port) for port in re.findall(r"-> 127\.0\.0\.1:(\d+)", self.log.read_text())]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def proxy(tmp_path):
    """pproxy (PyPI), an http proxy that speaks CONNECT too, with its verbose log in a file."""
    port = free_port()
    log = tmp_path / "pproxy.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "pproxy", "-l",
                                    f"http://127.0.0.1:{port}", "-v"],
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"pproxy did not start: {log.read_text()}")
            time.sleep(0.1)
    running = Proxy(f"http://127.0.0.1:{port}", log, process)
    yield running
    if process.poll() is None:
        running.stop()


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def corpus_world(tmp_path, corpus, archive, site, *, proxy_url: str = "",
                 allow_private: bool = True, original: str = ORIGINAL) -> Path:
    archive.add(original, TS, b"<html><title>a</title></html>")
    archive.add(IMAGE, TS, PNG, "image/png")
    write_article(corpus, "2017/article_1.md", f"{WB}/{TS}/{original}", original,
                  [f"{WB}/{TS}im_/{IMAGE}"])
    site.route("/news_%E6%96%B0%E8%81%9E/hk-discuss/2017/09/%E6%B3%95%E5%BA%AD-"
               "%E6%9D%8E%E6%98%8E%E5%93%B2", body=b"<html><title>a</title></html>")
    tables = f'[network]\nproxy = "{proxy_url}"\n' if proxy_url else ""
    return write_config(tmp_path, archive, corpus, origins={HK: site.base_url},
                        allow_private=allow_private, tables=tables)


def statuses(config_path: Path) -> dict:
    db = sqlite_utils.Database(config_path.parent / "preserver.db")
    urls = {r["role"]: r["status"] for r in db.query(
        "select l.role, u.status from links l join urls u on u.url = l.url")}
    urls["saved images"] = db.execute(
        "select count(*) from images where status = 'saved'").fetchone()[0]
    return urls


def run(config_path: Path) -> int:
    from tests.conftest import run_cli

    return run_cli("run", "--config", str(config_path)).exit_code


def test_config_proxy_carries_every_request_and_without_it_nothing_arrives(
        tmp_path, corpus, archive, site, proxy):
    config = corpus_world(tmp_path, corpus, archive, site, proxy_url=proxy.url)
    assert run(config) == 0
    assert statuses(config) == {"snapshot": "ok", "original": "ok", "image": "ok",
                                "saved images": 1}
    assert archive.requests and site.requests
    assert {archive.port, site.port} <= set(proxy.tunnels_to())  # pproxy saw both targets
    # the proxy gone, nothing reaches the archive or the site: it was the only way there
    proxy.stop()
    archive.clear_requests()
    site.clear_requests()
    (tmp_path / "preserver.db").unlink()
    for leftover in tmp_path.glob("preserver.db-*"):
        leftover.unlink()
    run(config)
    assert archive.requests == [] and site.requests == []


def test_environment_proxies_are_honoured_and_no_proxy_too(
        tmp_path, corpus, archive, site, proxy, monkeypatch):
    config = corpus_world(tmp_path, corpus, archive, site)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert run(config) == 0
    assert statuses(config)["snapshot"] == "ok"
    assert {archive.port, site.port} <= set(proxy.tunnels_to())
    before = len(proxy.tunnels_to())
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    site.clear_requests()
    assert run(config) == 0
    assert site.requests  # the originals, due again, reached directly
    assert len(proxy.tunnels_to()) == before


def test_a_proxy_is_no_way_around_the_private_address_rule(
        tmp_path, corpus, archive, site, proxy):
    """The archive (configured, trusted) goes through the proxy; an original on a private
    address, named by a host name, is resolved here and refused: the proxy never hears of it."""
    sneaky = f"http://localhost:{site.port}/news_新聞/internal"
    site.route("/news_%E6%96%B0%E8%81%9E/internal", body=b"<html>secret</html>")
    config = corpus_world(tmp_path, corpus, archive, site, proxy_url=proxy.url,
                          allow_private=False, original=sneaky)
    config.write_text(config.read_text(encoding="utf-8").replace(
        f'origins = {{ "{HK}" = "{site.base_url}" }}', "origins = {}"), encoding="utf-8")
    run(config)
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    (row,) = db.query("select status, error from urls where url = ?", [sneaky])
    assert row["status"] == "blocked" and "non-public address" in row["error"]
    assert site.requests == []
    assert site.port not in proxy.tunnels_to()
    assert archive.port in proxy.tunnels_to()  # the trusted archive still went through it


def test_https_targets_go_through_connect(tmp_path, proxy, tls_port):  # noqa: F811
    config = load_config(write_config(tmp_path, _Unused(), tmp_path,
                                      tables=f'[network]\nproxy = "{proxy.url}"\n'))

    async def fetch():
        async with HttpClient(config) as client:
            try:
                await client.get(f"https://127.0.0.1:{tls_port}/")
            except RequestFailed as exc:  # the certificate is trustme's, not a public CA's
                return exc
    assert asyncio.run(fetch()).status == UrlStatus.TLS_ERROR
    assert tls_port in proxy.tunnels_to()  # the TLS handshake went through a CONNECT tunnel


class _Unused:
    base_url = "http://127.0.0.1:9"
    availability_url = "http://127.0.0.1:9/wayback/available"


def test_proxy_settings_as_httpx_reads_them(tmp_path, monkeypatch):
    config = load_config(write_config(tmp_path, _Unused(), tmp_path,
                                      tables='[network]\nproxy = "http://u:p@proxy.example:3128"'))
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy.example:8080")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal.example")
    assert proxy_map(config) == {"http://": "http://u:p@proxy.example:3128",
                                 "https://": "http://u:p@proxy.example:3128",
                                 "all://localhost": None, "all://*.internal.example": None}
    monkeypatch.setenv("NO_PROXY", "*")
    assert proxy_map(load_config(write_config(tmp_path, _Unused(), tmp_path))) == {}
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ConfigError, match="only http and https proxies"):
        proxy_map(load_config(write_config(tmp_path, _Unused(), tmp_path)))
    bad = write_config(tmp_path, _Unused(), tmp_path, tables='[network]\nproxy = "socks5://x:1"')
    with pytest.raises(ConfigError, match=r"\[network\] proxy must be an http\(s\) URL"):
        load_config(bad)


def test_the_proxy_is_trusted_to_connect_to_not_as_a_target(tmp_path, proxy):
    config = load_config(write_config(tmp_path, _Unused(), tmp_path, allow_private=False,
                                      tables=f'[network]\nproxy = "{proxy.url}"\n'))

    async def fetch():
        async with HttpClient(config) as client:
            with pytest.raises(RequestFailed) as refused:
                await client.get(f"{proxy.url}/")  # a corpus URL naming the proxy itself
            return refused.value
    failure = asyncio.run(fetch())
    assert failure.status == UrlStatus.BLOCKED, (str(failure), proxy.log.read_text())
    assert proxy.tunnels_to() == []
