"""All of ../shared/corpus (269 real articles) against a local archive that holds most of
their snapshots and images: every article lands in the ledger, every URL gets the status the
archive's answers imply, and every saved image is byte-for-byte what the archive served.

The expectations are built from the raw files with plain regular expressions, not with
preserver's own reader, so the test checks the reader too."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
import sqlite_utils

from tests.conftest import PNG, SHARED_CORPUS, run_cli, write_config

URL = re.compile(r'^url: "(.*)"$', re.M)
ORIGINAL = re.compile(r'^original_url: "(.*)"$', re.M)
IMAGE = re.compile(r'(?:src="|!\[[^\]]*\]\()(https://web\.archive\.org/web/(\d+)im_/([^")\s]+))')
SNAPSHOT = re.compile(r"https://web\.archive\.org/web/(\d+)/(.*)")
EMBED = re.compile(r'\{\{< video src="(?:https:)?//web\.archive\.org/web/\d+if_/https?://(?:www\.)?'
                   r'([^"]+)" >\}\}')


def corpus_files():
    if not SHARED_CORPUS.is_dir():
        if os.environ.get("PRESERVER_REQUIRE_CORPUS"):
            pytest.fail(f"the shared corpus is missing at {SHARED_CORPUS}")
        pytest.skip("../shared/corpus is not beside this checkout")
    return sorted(SHARED_CORPUS.rglob("*.md"))


def image_bytes(url: str) -> bytes:
    return PNG + hashlib.sha256(url.encode()).digest()


def test_whole_shared_corpus(tmp_path, archive, site):
    files = corpus_files()
    assert len(files) == 269
    expected_snapshots, expected_images, by_original, embeds = {}, {}, {}, set()
    for n, file in enumerate(files):
        text = file.read_text(encoding="utf-8")
        embeds.update(EMBED.findall(text))  # checked too (a replay each): not images
        snapshot = URL.search(text).group(1)
        ts, embedded = SNAPSHOT.match(snapshot).groups()
        if n % 10 == 0:
            expected_snapshots[snapshot] = ("not_found", None)
        elif n % 7 == 0:
            archive.add(embedded, "20220101000000", b"<html>moved</html>")
            expected_snapshots[snapshot] = ("redirected", "20220101000000")
        else:
            archive.add(embedded, ts, b"<html>article</html>")
            expected_snapshots[snapshot] = ("ok", ts)
        for m, (src, image_ts, original) in enumerate(IMAGE.findall(text)):
            # one image may be named at several timestamps: the archive has it or not
            if original not in by_original:
                by_original[original] = "missing" if (n + m) % 5 == 0 else "saved"
                if by_original[original] == "saved":
                    archive.add(original, image_ts, image_bytes(original), "image/png")
            expected_images[src] = by_original[original]

    config = write_config(tmp_path, archive, SHARED_CORPUS, origins={
        "https://www.hkcnews.com": site.base_url, "https://hkcnews.com": site.base_url})
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0, result.output

    db = sqlite_utils.Database(tmp_path / "preserver.db")
    parse = dict(db.execute("select parse_status, count(*) from articles group by 1").fetchall())
    assert parse == {"ok": 265, "repaired": 4}
    assert db.execute("select count(*) from articles where url_mismatch").fetchone()[0] == 3

    urls = {row["url"]: row for row in db["urls"].rows}
    for snapshot, (status, capture) in expected_snapshots.items():
        assert (urls[snapshot]["status"], urls[snapshot]["capture_timestamp"]) == (
            status, capture), snapshot
    originals = [r[0] for r in db.execute("select distinct original_url from articles")]
    assert {urls[u]["status"] for u in originals} == {"not_found"}  # the dead site: all 404

    images = {row["url"]: row for row in db["images"].rows}
    assert set(images) == set(expected_images)
    for src, status in expected_images.items():
        row = images[src]
        assert row["status"] == status, (src, row["error"])
        if status == "saved":
            data = (tmp_path / "media" / row["local_path"]).read_bytes()
            assert data == image_bytes(row["original_url"])
            assert row["sha256"] == hashlib.sha256(data).hexdigest()
    # one file per image: rows share a file only when they name the same original
    # (at another capture timestamp, or under www. and without), and it was fetched once
    owners = {}
    for row in images.values():
        if row["local_path"]:
            owners.setdefault(row["local_path"], set()).add(
                row["original_url"].replace("://www.", "://"))
    assert all(len(names) == 1 for names in owners.values())
    # each saved image cost exactly one request (the exact capture the CDX index named: no
    # redirect hop), and a missing one none (the index said so)
    fetched = {}
    for record in archive.requests:
        match = re.match(r"/web/\d+id_/https?://(?:www\.)?(.*)", record.path)
        if match and "/article/" not in record.path and match.group(1) not in embeds:
            fetched[match.group(1)] = fetched.get(match.group(1), 0) + 1
    assert fetched and max(fetched.values()) == 1
    saved = {o for o, status in by_original.items() if status == "saved"}
    assert len(fetched) == len({o.replace("://www.", "://") for o in saved})
    assert archive.counts()["cdx"] <= 10  # bulk prefix queries, not one per URL
