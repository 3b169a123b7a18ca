"""`preserver export wacz` and `preserver export bag`, end to end: a real run against the local
archive saves images with CJK, space and percent names; the WACZ passes `wacz validate` and
its WARC, loaded into a real pywb collection, replays every saved image at its original URL
and capture time with exactly the bytes in the media folder; the bag validates with `bagit`,
fails on one changed byte, is updated incrementally, and waits for (or refuses) a run that
holds the ledger."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

import bagit
import httpx
import pytest
from warcio.archiveiterator import ArchiveIterator

from preserver.storage import media_relpath
from preserver.urls import encode_once
from tests.conftest import JPEG, PNG, closed_port, run_cli, write_article, write_config
from tests.test_pywb import free_port

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
BIN = Path(sys.executable).parent
CJK = f"{HK}/news_新聞/2018/11/donald%20trump-習近平.png"
PERCENT = f"{HK}/uploads/100%25 sure 圖片.jpg"  # a literal % and a raw space in the file name
MOVED = f"{HK}/uploads/moved.gif"  # captured at another time than the article cites
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20


@pytest.fixture
def saved(tmp_path, corpus, archive):
    """A run that saved four images (one named in two spellings) and missed one."""
    archive.add(CJK, TS, PNG + "習".encode(), "image/png")
    archive.add(PERCENT, TS, JPEG + b"percent", "image/jpeg")
    archive.add(MOVED, "20200101000000", GIF, "image/gif")
    archive.add(f"{HK}/uploads/plain.png", TS, PNG + b"plain", "image/png")
    for n in (1, 2):
        archive.add(f"{HK}/article/{n}/新聞", TS, b"<html>article</html>")
    write_article(corpus, "2019/article_1.md", f"{WB}/{TS}/{HK}/article/1/新聞",
                  f"{HK}/article/1/新聞",
                  [f"{WB}/{TS}im_/{CJK}", f"{WB}/{TS}im_/{PERCENT}", f"{WB}/{TS}im_/{MOVED}",
                   f"{WB}/{TS}im_/{HK}/uploads/never.png"], title="第一篇")
    write_article(corpus, "2019/article_2.md", f"{WB}/{TS}/{HK}/article/2/新聞",
                  f"{HK}/article/2/新聞",
                  [f"{WB}/{TS}im_/{encode_once(CJK)}", f"{WB}/{TS}im_/{HK}/uploads/plain.png"],
                  title="第二篇")
    config = write_config(tmp_path, archive, corpus, archive_extra="bulk_threshold = 1",
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0, result.output
    return config


def saved_images(tmp_path: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(tmp_path / "preserver.db")
    db.row_factory = sqlite3.Row
    return db.execute("select * from images where status = 'saved' order by url").fetchall()


def test_wacz_validates_and_pywb_replays_every_saved_image(tmp_path, saved):
    rows = saved_images(tmp_path)
    assert len(rows) == 5 and len({r["local_path"] for r in rows}) == 4
    assert {media_relpath(CJK, "image/png"), "www.hkcnews.com/uploads/100% sure 圖片.jpg"} \
        <= {r["local_path"] for r in rows}
    out = tmp_path / "out" / "收藏 100%.wacz"
    result = run_cli("export", "wacz", str(out), "--config", str(saved))
    assert result.exit_code == 0, result.output
    assert "4 images, 2 pages; digests: 4 match the CDX" in result.output

    check = subprocess.run([str(BIN / "wacz"), "validate", "-f", str(out)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "is valid" in check.stdout, check.stdout + check.stderr

    with zipfile.ZipFile(out) as wacz:
        pages = [json.loads(line) for line in wacz.read("pages/pages.jsonl").splitlines()]
        warc = tmp_path / "images.warc.gz"
        warc.write_bytes(wacz.read("archive/preserver-images.warc.gz"))
        index = gzip.decompress(wacz.read("indexes/index.cdx.gz")).decode()
    assert pages[0]["format"] == "json-pages-1.0"
    assert {(p["title"], p["url"], p["ts"], p["date"]) for p in pages[1:]} == {
        (f"第{n}篇", f"{WB}/{TS}/{HK}/article/{k}/新聞", "2021-07-12T02:23:51Z", "2019-06-04")
        for n, k in (("一", 1), ("二", 2))}
    assert len(index.splitlines()) == 4  # the images; metadata records are not replayed

    records = {}
    with warc.open("rb") as handle:
        for record in ArchiveIterator(handle):
            records.setdefault(record.rec_type, []).append(record)
            if record.rec_type == "metadata":
                fields = record.content_stream().read().decode()
                assert "digest-matched: yes" in fields and "source-url: " in fields
    assert len(records["resource"]) == len(records["metadata"]) == 4
    moved = next(r for r in records["resource"]
                 if r.rec_headers.get_header("WARC-Target-URI").endswith("moved.gif"))
    assert moved.rec_headers.get_header("WARC-Date") == "2020-01-01T00:00:00Z"
    assert moved.rec_headers.get_header("Content-Type") == "image/gif"

    with pywb_serving(tmp_path / "pywb", out) as base:  # the WACZ's WARC, unpacked by pywb
        for row in rows:  # every spelling the articles use, at the capture time
            url = f"{base}/{row['capture_timestamp']}id_/{quote(row['original_url'], '/:%')}"
            answer = httpx.get(url)
            assert answer.status_code == 200, (url, answer.status_code)
            assert answer.content == (tmp_path / "media" / row["local_path"]).read_bytes()
            assert hashlib.sha256(answer.content).hexdigest() == row["sha256"]
            assert answer.headers["memento-datetime"] == _http_date(row["capture_timestamp"])


def test_wacz_leaves_out_a_changed_media_file_and_says_which_digest_differs(tmp_path, saved):
    (tmp_path / "media" / media_relpath(CJK, "image/png")).write_bytes(PNG + b"changed")
    with sqlite3.connect(tmp_path / "preserver.db") as db:  # as if the CDX said otherwise
        db.execute("update captures set digest = 'AAAA' where original like '%plain.png'")
    out = tmp_path / "x.wacz"
    result = run_cli("export", "wacz", str(out), "--config", str(saved))
    assert result.exit_code == 1
    assert "3 images" in result.output and "1 saved images left out" in result.output
    assert "2 match the CDX, 1 differ" in result.output
    with zipfile.ZipFile(out) as wacz:
        warc = io.BytesIO(wacz.read("archive/preserver-images.warc.gz"))
    said = [r.content_stream().read().decode() for r in ArchiveIterator(warc)
            if r.rec_type == "metadata"]
    assert sum("digest-matched: no (the CDX says sha1:AAAA)" in m for m in said) == 1


def test_bag_validates_fails_on_a_changed_byte_and_updates_incrementally(tmp_path, saved):
    out = tmp_path / "bag 袋"
    result = run_cli("export", "bag", str(out), "--wacz", "--organization", "眾新聞 archive",
                     "--config", str(saved))
    assert result.exit_code == 0, result.output
    assert "media files copied 4, unchanged 0" in result.output
    bag = bagit.Bag(str(out))
    bag.validate()
    info = bag.info
    assert info["Source-Organization"] == "眾新聞 archive"
    assert (info["Preserver-Articles"], info["Preserver-Image-Files"]) == ("2", "4")
    assert info["Payload-Oxum"].endswith(".6")  # 4 images, the ledger, the WACZ
    cjk = out / "data" / "media" / media_relpath(CJK, "image/png")
    assert cjk.read_bytes() == PNG + "習".encode()
    assert (out / "data" / "media" / "www.hkcnews.com/uploads/100% sure 圖片.jpg").exists()
    ledger = sqlite3.connect(out / "data" / "preserver.db")
    assert ledger.execute("pragma journal_mode").fetchone()[0] == "delete"
    assert ledger.execute("select count(*) from images where status = 'saved'").fetchone() \
        == (5,)
    ledger.close()
    assert not list((out / "data").glob("*-wal"))
    cli = subprocess.run([str(BIN / "bagit.py"), "--validate", str(out)], capture_output=True,
                         text=True)
    assert cli.returncode == 0, cli.stderr

    data = bytearray(cjk.read_bytes())
    data[-1] ^= 1
    cjk.write_bytes(bytes(data))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(out)).validate()

    again = run_cli("export", "bag", str(out), "--config", str(saved))
    assert again.exit_code == 0, again.output
    assert "media files copied 1, unchanged 3" in again.output  # the damaged copy, repaired
    bagit.Bag(str(out)).validate()
    assert not (out / "data" / "preserver.wacz").exists()  # not asked for this time

    (tmp_path / "media" / "www.hkcnews.com" / "uploads" / "plain.png").unlink()
    third = run_cli("export", "bag", str(out), "--config", str(saved))
    assert "copied 0, unchanged 3, removed 1" in third.output
    bagit.Bag(str(out)).validate()


def test_bag_refuses_a_folder_that_is_not_its_own(tmp_path, saved):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = run_cli("export", "bag", str(out), "--config", str(saved))
    assert result.exit_code == 2 and "not a bag made by preserver" in result.output
    assert (out / "notes.txt").read_text() == "keep me"


def test_export_while_a_run_holds_the_ledger_exits_3_or_waits(tmp_path, saved):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from preserver.ledger import LedgerLock\n"
         "with LedgerLock(Path(sys.argv[1])):\n print('held', flush=True); "
         "time.sleep(float(sys.argv[2]))", str(tmp_path / "preserver.db"), "1.5"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        held_at = time.monotonic()
        refused = run_cli("export", "bag", str(tmp_path / "bag"), "--config", str(saved))
        assert refused.exit_code == 3
        assert f"(pid {holder.pid}) holds the ledger" in refused.output
        assert "not exporting" in refused.output and not (tmp_path / "bag").exists()
        waited = run_cli("export", "wacz", str(tmp_path / "w.wacz"), "--wait", "30",
                         "--config", str(saved))
        assert waited.exit_code == 0, waited.output
        assert time.monotonic() - held_at >= 1.5  # it ran once the holder let go
    finally:
        holder.kill()
        holder.wait()


def _http_date(timestamp: str) -> str:
    import datetime as dt
    import email.utils

    when = dt.datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return email.utils.format_datetime(when, usegmt=True)


class pywb_serving:  # noqa: N801 (used as a context manager)
    """A real pywb `wayback` on 127.0.0.1 with one collection made from a WACZ, as the
    README says (`wb-manager add --unpack-wacz`)."""

    def __init__(self, root: Path, wacz: Path):
        self.root, self.wacz = root, wacz

    def __enter__(self) -> str:
        self.root.mkdir()
        for args in (["init", "x"], ["add", "--unpack-wacz", "x", str(self.wacz)]):
            subprocess.run([str(BIN / "wb-manager"), *args], cwd=self.root, check=True,
                           capture_output=True)
        port = free_port()
        self.server = subprocess.Popen([str(BIN / "wayback"), "-b", "127.0.0.1", "-p",
                                        str(port)], cwd=self.root, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                return f"http://127.0.0.1:{port}/x"
            except httpx.TransportError:
                time.sleep(0.2)
        self.server.kill()
        pytest.fail("pywb did not start within 30 s")

    def __exit__(self, *exc) -> None:
        self.server.terminate()
        self.server.wait(timeout=10)
