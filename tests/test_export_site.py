"""`preserver export site OUT/`: a copy of the corpus that reads without the archive.

Checked from the outside: the exported files are read with plain regular expressions (not
preserver's reader), every relative link is percent-decoded and followed on disk, and putting
the original URLs back into the replaced spans must give the source file byte for byte."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import sqlite_utils

from preserver.ledger import Ledger, open_ledger
from preserver.storage import media_relpath
from preserver.urls import canonical_key, parse_wayback_url
from tests.conftest import PNG, SHARED_CORPUS, closed_port, run_cli, write_article, write_config
from tests.servers import LiveSite

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20190604070000"
# an image reference as the corpus writes them: <img src="..."> or ![...](...)
REF = re.compile(rb'<img [^>]*?src="([^"]*)"|!\[[^\]\n]*\]\(([^")\s]+)')


def ref_span(match: re.Match) -> tuple[int, int, bytes]:
    group = 1 if match[1] is not None else 2
    return match.start(group), match.end(group), match[group]


def tree_state(folder: Path) -> dict[str, tuple[int, int, int]]:
    """path -> (inode, mtime_ns, size) of every file and folder under folder."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            stat = path.stat()
            state[path.relative_to(folder).as_posix()] = (stat.st_ino, stat.st_mtime_ns,
                                                          stat.st_size)
    return state


def tree_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def saved_images(ledger: Path) -> dict[str, str]:
    """URL -> sha256 of every image the ledger holds as saved."""
    db = sqlite_utils.Database(ledger)
    return {r["url"]: r["sha256"] for r in db.query(
        "select url, sha256 from images where status = 'saved'")}


def check_article(source: bytes, exported: bytes, exported_path: Path, saved: dict[str, str],
                  page: str | None = None) -> int:
    """Every image reference of the source is either kept as it is or (if its image is saved)
    replaced by a relative link to a file with the saved image's sha256; putting the source's
    URLs back gives the source's bytes. Returns how many references were made local."""
    originals = list(REF.finditer(source))
    copies = list(REF.finditer(exported))
    assert len(copies) == len(originals), exported_path
    reverted, done, local = [], 0, 0
    for original, copy in zip(originals, copies, strict=True):
        _, _, was = ref_span(original)
        start, end, now = ref_span(copy)
        url = was.decode()
        url = url if url.startswith("http") else "https://web.archive.org" + url
        if now == was:
            assert url not in saved, f"{exported_path}: saved image left on the archive: {url}"
            continue
        link = now.decode("ascii")  # percent-encoded: ASCII only
        assert link.startswith("../") and "/media/" in link
        target = (exported_path.parent / unquote(link)).resolve()
        assert target.is_file(), f"{exported_path}: {link} does not resolve"
        assert hashlib.sha256(target.read_bytes()).hexdigest() == saved[url]
        reverted += [exported[done:start], was]
        done = end
        local += 1
    assert b"".join([*reverted, exported[done:]]) == source, exported_path
    return local


def test_relative_links_decode_to_the_media_path():
    from preserver.export_site import relative_link

    name = "www.hkcnews.com/news_新聞/hk-discuss/2017/09/法庭 李明哲 (1) 100%.png"
    link = relative_link("2017/09/a b.md", name)
    assert link.startswith("../../../media/www.hkcnews.com/news_%E6%96%B0%E8%81%9E/")
    assert " " not in link and "(" not in link and link.isascii()
    assert unquote(link) == f"../../../media/{name}"


def test_export_site_end_to_end(tmp_path, corpus, archive):
    cjk = f"{HK}/news_新聞/hk-discuss/2017/09/法庭-李明哲.png"
    spaced = f"{HK}/news_新聞/hk-discuss/2017/09/my%20photo%20100%25.jpg"
    avatar = f"{HK}/uploads/avatars/1cabb7bd.png?1648691255"
    lost = f"{HK}/news_新聞/never-captured.png"
    for n, url in enumerate([cjk, spaced, avatar]):
        archive.add(url, TS, PNG + bytes([n]) * 8, "image/png")
    archive.add(f"{HK}/article/1", TS, b"<html>article</html>")
    # one image under two timestamps, a markdown reference, a space, %25, a query, one lost
    write_article(corpus, "新聞 2017/article_1.md", f"{WB}/{TS}/{HK}/article/1", f"{HK}/article/1",
                  [f"{WB}/{TS}im_/{cjk}", f"{WB}/20190605000000im_/{cjk}",
                   f"{WB}/{TS}im_/{spaced}", f"{WB}/{TS}im_/{lost}"], title="法庭 [李明哲]")
    with open(corpus / "新聞 2017/article_1.md", "a", encoding="utf-8") as handle:
        handle.write(f"\n![博客 | 主筆]({WB}/{TS}im_/{avatar})\n\n[a link]({WB}/{TS}/{cjk})\n")
    # an article whose snapshot is gone; another archive has it
    write_article(corpus, "article_2.md", f"{WB}/{TS}/{HK}/article/2", f"{HK}/article/2",
                  [f"{WB}/{TS}im_/{cjk}"])
    with LiveSite() as other:
        other.route(f"/timemap/link/{HK}/article/2", content_type="application/link-format",
                    body=(f'<{HK}/article/2>; rel="original",\n<{other.url("/m/2")}>; '
                          'rel="memento"; datetime="Wed, 01 Jan 2020 00:00:00 GMT"\n').encode())
        config = write_config(
            tmp_path, archive, corpus, origins={HK: f"http://127.0.0.1:{closed_port()}"},
            tables=f'[memento]\narchives = ["other"]\n'
                   f'endpoints = {{ "other" = "{other.url("/timemap/link/")}" }}')
        assert run_cli("run", "--config", str(config)).exit_code == 0
        memento = other.url("/m/2")
    ledger = tmp_path / "preserver.db"
    before = tree_hashes(corpus)
    out = tmp_path / "site"

    result = run_cli("export", "site", "--config", str(config), str(out))
    assert result.exit_code == 0, result.output
    assert "2 articles (2 written" in result.output and "3 images (3 copied" in result.output
    saved = saved_images(ledger)
    assert len(saved) == 4  # cjk at two timestamps, spaced, avatar; the lost one is not
    local = 0
    for name in ("新聞 2017/article_1.md", "article_2.md"):
        source = (corpus / name).read_bytes()
        exported = out / "articles" / name
        local += check_article(source, exported.read_bytes(), exported, saved)
    assert local == 5
    text = (out / "articles/新聞 2017/article_1.md").read_text(encoding="utf-8")
    assert f'src="{WB}/{TS}im_/{lost}"' in text  # not saved: still on the archive
    assert f"[a link]({WB}/{TS}/{cjk})" in text  # a link, not an image: unchanged
    assert "../../media/www.hkcnews.com/news_%E6%96%B0%E8%81%9E/hk-discuss/2017/09/" \
           "my%20photo%20100%25.jpg" in text

    index = (out / "index.md").read_text(encoding="utf-8")
    broken = index.split("## snapshot broken")[1].split("##")[0]
    assert "(articles/article_2.md)" in broken and f"[other 20200101000000]({memento})" in broken
    assert "[法庭 \\[李明哲\\]](articles/%E6%96%B0%E8%81%9E%202017/article_1.md)" in index
    assert tree_hashes(corpus) == before

    # nothing changed: nothing rewritten
    state = tree_state(out)
    result = run_cli("export", "site", "--config", str(config), str(out))
    assert result.exit_code == 0, result.output
    assert "(0 written, 2 unchanged" in result.output and "(0 copied, 3 unchanged" in result.output
    assert tree_state(out) == state

    # an article removed, another changed: only that is written, the stale copy goes
    (corpus / "article_2.md").unlink()
    with open(corpus / "新聞 2017/article_1.md", "a", encoding="utf-8") as handle:
        handle.write("\nmore text\n")
    result = run_cli("export", "site", "--config", str(config), str(out))
    assert result.exit_code == 0, result.output
    assert "1 articles (1 written" in result.output and "1 stale files removed" in result.output
    assert not (out / "articles/article_2.md").exists()
    assert (out / "articles/新聞 2017/article_1.md").read_bytes().endswith(b"more text\n")
    assert tree_hashes(corpus) != before  # (the test changed it; the export did not)


def fill_images(ledger_path: Path, padding: int = 0, every: int = 5) -> dict[str, int]:
    """Record the scanned articles' images as saved (all but one in `every`, with a file each
    of `padding` bytes more than a PNG header and a hash; every spelling of one image shares
    its file), as a run would, without the archive. bench/export_site_bench.py uses it too."""
    db = open_ledger(ledger_path)
    groups: dict[str, list[str]] = {}
    for (url,) in db.execute("select distinct url from links where role = 'image'"):
        wayback = parse_wayback_url(url)
        original = wayback.original if wayback else url
        groups.setdefault(canonical_key(original), []).append(url)
    rows, media = [], ledger_path.parent / "media"
    for n, (key, urls) in enumerate(sorted(groups.items())):
        wayback = parse_wayback_url(urls[0])
        original = wayback.original if wayback else urls[0]
        blank = {"original_url": original, "urlkey": key, "source_url": None,
                 "capture_timestamp": None, "saved_at": None, "digest_ok": None}
        if every and n % every == 0:
            rows += [{**blank, "url": u, "status": "missing", "local_path": None, "sha256": None,
                      "bytes": None, "content_type": None, "error": "test"} for u in urls]
            continue
        data = PNG + hashlib.sha256(key.encode()).digest() + b"\0" * padding
        relpath = media_relpath(original, "image/png")
        (media / relpath).parent.mkdir(parents=True, exist_ok=True)
        (media / relpath).write_bytes(data)
        rows += [{**blank, "url": u, "status": "saved", "local_path": relpath,
                  "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                  "content_type": "image/png", "error": None} for u in urls]
    Ledger(db).record_images(rows)
    saved = sum(1 for n in range(len(groups)) if not every or n % every)
    return {"image URLs": len(rows), "distinct images": len(groups), "saved": saved}


def test_whole_shared_corpus_reverts_byte_for_byte(tmp_path, archive):
    if not SHARED_CORPUS.is_dir():
        if os.environ.get("PRESERVER_REQUIRE_CORPUS"):
            pytest.fail(f"the shared corpus is missing at {SHARED_CORPUS}")
        pytest.skip("../shared/corpus is not beside this checkout")
    before = tree_hashes(SHARED_CORPUS)
    assert len(before) == 269
    config = write_config(tmp_path, archive, SHARED_CORPUS)
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    fill_images(tmp_path / "preserver.db")
    saved = saved_images(tmp_path / "preserver.db")
    out = tmp_path / "site"

    result = run_cli("export", "site", "--config", str(config), str(out))
    assert result.exit_code == 0, result.output
    local = sum(check_article((SHARED_CORPUS / name).read_bytes(),
                              (out / "articles" / name).read_bytes(), out / "articles" / name,
                              saved) for name in before)
    assert local > 500
    control = [n for n in before if re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]",
                                               (SHARED_CORPUS / n).read_bytes())]
    assert len(control) >= 4 and all((out / "articles" / n).read_bytes() !=
                                     (SHARED_CORPUS / n).read_bytes() or
                                     not REF.search((SHARED_CORPUS / n).read_bytes())
                                     for n in control)
    index = (out / "index.md").read_text(encoding="utf-8")
    assert index.count("\n- [") == 269
    state = tree_state(out)
    result = run_cli("export", "site", "--config", str(config), str(out))
    assert result.exit_code == 0 and "(0 written, 269 unchanged" in result.output, result.output
    assert tree_state(out) == state
    assert tree_hashes(SHARED_CORPUS) == before


def test_byte_order_mark_and_crlf_stay(tmp_path, corpus, archive):
    image = f"{WB}/{TS}im_/{HK}/news_新聞/2019/06/六四 30年.png"
    text = (f'---\r\ntitle: "標題"\r\nurl: "{WB}/{TS}/{HK}/article/1"\r\n'
            f'original_url: "{HK}/article/1"\r\n---\r\n\r\n<img src="{image}" alt="">\r\n'
            f"\x1c---\r\n![圖]({image.replace(' ', '%20')})\r\n")
    (corpus / "bom.md").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (corpus / "plain.md").write_bytes(text.encode())
    config = write_config(tmp_path, archive, corpus)
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    fill_images(tmp_path / "preserver.db", every=0)
    assert run_cli("export", "site", "--config", str(config), str(tmp_path / "site")).exit_code == 0
    saved = saved_images(tmp_path / "preserver.db")
    for name in ("bom.md", "plain.md"):
        exported = tmp_path / "site/articles" / name
        assert check_article((corpus / name).read_bytes(), exported.read_bytes(), exported,
                             saved) == 2


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from preserver.ledger import LedgerLock
    with LedgerLock(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_export_exits_3_or_waits_while_a_run_holds_the_ledger(tmp_path, corpus, archive):
    write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/article/1", f"{HK}/article/1")
    config = write_config(tmp_path, archive, corpus)
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "preserver.db"),
                               "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = run_cli("export", "site", "--config", str(config), str(tmp_path / "site"))
        assert result.exit_code == 3
        assert f"(pid {holder.pid}) holds the ledger" in result.output
        assert not (tmp_path / "site").exists()
        started = time.monotonic()
        result = run_cli("export", "site", "--wait", "30", "--config", str(config),
                         str(tmp_path / "site"))
        assert result.exit_code == 0, result.output
        assert time.monotonic() - started > 0.5  # it waited for the holder to let go
        assert holder.wait(timeout=10) == 0
        assert (tmp_path / "site/articles/a.md").read_bytes() == (corpus / "a.md").read_bytes()
    finally:
        holder.kill()
        holder.wait()


def test_export_refuses_to_write_over_its_source_or_a_foreign_folder(tmp_path, corpus, archive):
    write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/article/1", f"{HK}/article/1")
    config = write_config(tmp_path, archive, corpus)
    result = run_cli("export", "site", "--config", str(config), str(tmp_path / "site"))
    assert result.exit_code == 2 and "no ledger yet" in result.output
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    before = tree_hashes(corpus)
    for out in (corpus / "site", tmp_path, tmp_path / "media"):
        result = run_cli("export", "site", "--config", str(config), str(out))
        assert result.exit_code == 2 and "overlaps" in result.output, result.output
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep")
    result = run_cli("export", "site", "--config", str(config), str(tmp_path / "notes"))
    assert result.exit_code == 2 and "not empty" in result.output
    assert tree_hashes(corpus) == before and (tmp_path / "notes/mine.txt").read_text() == "keep"
    # a corpus folder that is not there (unmounted) must not empty an earlier export
    assert run_cli("export", "site", "--config", str(config), str(tmp_path / "site")).exit_code == 0
    corpus.rename(tmp_path / "elsewhere")
    result = run_cli("export", "site", "--config", str(config), str(tmp_path / "site"))
    assert result.exit_code == 2 and "corpus folder not found" in result.output
    assert (tmp_path / "site/articles/a.md").is_file()
