"""Compatibility with a real pywb: the same hkcnews-like world, written to WARCs with warcio
and served by pywb's own `wayback` (plus pywb's sample IANA WARC), must come out of preserver
as it does from the Wayback-Machine-compatible test archive: same statuses, same nearest
captures, same image bytes. Run twice: once through the replay endpoint, once through the
bulk CDX index."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.conftest import JPEG, PNG, closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
SAMPLE_WARC = Path(sys.prefix) / "sample_archive" / "warcs" / "iana.warc.gz"
IANA_TS = "20140126200624"

# (original URL as the WARC names it, timestamp, body, type); the articles name some of them
# with raw CJK, and some at another timestamp
CAPTURES = [
    (f"{HK}/article/1/%E6%96%B0%E8%81%9E-%E4%B8%80", TS, b"<html>one</html>", "text/html"),
    (f"{HK}/article/2", "20200105000000", b"<html>two</html>", "text/html"),
    (f"{HK}/news_%E6%96%B0%E8%81%9E/2018/11/donald%20trump-%E7%BF%92.png", TS, PNG + b"cjk",
     "image/png"),
    (f"{HK}/uploads/moved.jpg", "20200101000000", JPEG + b"moved", "image/jpeg"),
]
ARTICLES = [  # (name, snapshot timestamp, original as the article writes it, image sources)
    ("a1.md", TS, f"{HK}/article/1/新聞-一",
     [f"{WB}/{TS}im_/{HK}/news_新聞/2018/11/donald%20trump-習.png",
      f"{WB}/{TS}im_/{HK}/uploads/moved.jpg", f"{WB}/{TS}im_/{HK}/uploads/never.png"]),
    ("a2.md", "20200101000000", f"{HK}/article/2", []),
    ("a3.md", TS, f"{HK}/article/3", []),
    ("iana.md", IANA_TS, "http://www.iana.org/",
     [f"{WB}/20140126200625im_/http://www.iana.org/_img/2013.1/iana-logo-homepage.png",
      f"{WB}/20140126200625im_/http://www.iana.org/_img/2013.1/rir-map.svg"]),
]


def write_warc(path: Path) -> None:
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, ts, body, kind in CAPTURES:
            headers = StatusAndHeaders("200 OK", [("Content-Type", kind),
                                                  ("Content-Length", str(len(body)))],
                                       protocol="HTTP/1.1")
            date = f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}Z"
            writer.write_record(writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=headers,
                warc_headers_dict={"WARC-Date": date}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pywb(tmp_path_factory):
    """A real pywb `wayback` on 127.0.0.1 with collection `hk`."""
    root = tmp_path_factory.mktemp("pywb")
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "wayback").exists() or not SAMPLE_WARC.exists():
        pytest.fail("pywb is part of the [test] extra: pip install -e '.[test]'")
    write_warc(root / "hk.warc.gz")
    for args in (["init", "hk"], ["add", "hk", str(root / "hk.warc.gz")],
                 ["add", "hk", str(SAMPLE_WARC)]):
        subprocess.run([str(bin_dir / "wb-manager"), *args], cwd=root, check=True,
                       capture_output=True)
    port = free_port()
    server = subprocess.Popen([str(bin_dir / "wayback"), "-b", "127.0.0.1", "-p", str(port)],
                              cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("pywb did not start within 30 s")
    yield f"http://127.0.0.1:{port}/hk"
    server.terminate()
    server.wait(timeout=10)


def iana_bodies() -> dict[str, bytes]:
    bodies = {}
    with SAMPLE_WARC.open("rb") as handle:
        for record in ArchiveIterator(handle):
            if record.rec_type == "response":
                bodies.setdefault(record.rec_headers.get_header("WARC-Target-URI"),
                                  record.content_stream().read())
    return bodies


def build_corpus(corpus: Path) -> None:
    for name, ts, original, images in ARTICLES:
        write_article(corpus, name, f"{WB}/{ts}/{original}", original, images)


def outcome(db_path: Path) -> dict:
    db = sqlite_utils.Database(db_path)
    urls = {r["url"]: (r["status"], r["capture_timestamp"]) for r in db["urls"].rows
            if not r["url"].startswith(("http://www.iana.org/", HK + "/article"))}
    images = {r["url"]: (r["status"], r["sha256"], r["capture_timestamp"])
              for r in db["images"].rows}
    return {"urls": urls, "images": images}


@pytest.mark.parametrize("bulk_threshold", [100, 1], ids=["replay", "cdx"])
def test_pywb_gives_what_the_wayback_api_gives(tmp_path, archive, pywb, bulk_threshold):
    dead = {HK: f"http://127.0.0.1:{closed_port()}",
            "http://www.iana.org": f"http://127.0.0.1:{closed_port()}"}
    # the same captures in the Wayback-Machine-compatible test archive
    for url, ts, body, kind in CAPTURES:
        archive.add(url, ts, body, kind)
    iana = iana_bodies()
    for url, ts in (("http://www.iana.org/", IANA_TS),
                    ("http://www.iana.org/_img/2013.1/iana-logo-homepage.png", "20140126200625"),
                    ("http://www.iana.org/_img/2013.1/rir-map.svg", "20140126200654")):
        archive.add(url, ts, iana[url], "image/svg+xml" if url.endswith("svg") else "image/png")

    results = {}
    for kind, base in (("wayback", archive.base_url), ("pywb", pywb)):
        folder = tmp_path / kind
        (folder / "corpus").mkdir(parents=True)
        build_corpus(folder / "corpus")
        config = write_config(folder, archive, folder / "corpus", origins=dead,
                              archive_extra=f'kind = "{kind}"\nbase_url = "{base}"\n'
                                            f"bulk_threshold = {bulk_threshold}")
        result = run_cli("run", "--config", str(config))
        assert result.exit_code == 0, result.output
        results[kind] = outcome(folder / "preserver.db")

    assert results["pywb"] == results["wayback"]
    images = results["pywb"]["images"]
    cjk = images[f"{WB}/{TS}im_/{HK}/news_新聞/2018/11/donald%20trump-習.png"]
    assert cjk[:2] == ("saved", hashlib.sha256(PNG + b"cjk").hexdigest())
    moved = images[f"{WB}/{TS}im_/{HK}/uploads/moved.jpg"]
    assert (moved[0], moved[2]) == ("saved", "20200101000000")  # the nearest capture
    assert images[f"{WB}/{TS}im_/{HK}/uploads/never.png"][0] == "missing"
    svg = images[f"{WB}/20140126200625im_/http://www.iana.org/_img/2013.1/rir-map.svg"]
    assert svg == ("saved", hashlib.sha256(iana["http://www.iana.org/_img/2013.1/rir-map.svg"])
                   .hexdigest(), "20140126200654")
    snapshots = sqlite_utils.Database(tmp_path / "pywb" / "preserver.db")
    status = {r["url"]: (r["status"], r["capture_timestamp"]) for r in snapshots.query(
        "select u.* from urls u join links l on l.url = u.url where l.role = 'snapshot'")}
    assert status[f"{WB}/{TS}/{HK}/article/1/新聞-一"] == ("ok", TS)
    assert status[f"{WB}/20200101000000/{HK}/article/2"] == ("redirected", "20200105000000")
    assert status[f"{WB}/{TS}/{HK}/article/3"][0] == "not_found"
    assert status[f"{WB}/{IANA_TS}/http://www.iana.org/"] == ("ok", IANA_TS)
