"""`preserver export wacz`: the saved images as a WACZ that pywb and ReplayWeb.page replay.

The formats are written by their reference libraries, not by hand: `warcio` writes the WARC
records, the `wacz` package (py-wacz, which indexes with cdxj-indexer) packages the WARC with
its CDXJ index, the page list and the datapackage. One `resource` record per saved image file
(the archived HTTP headers are not kept, so not `response`): WARC-Target-URI is the image's
original URL (percent-encoded once), WARC-Date its capture time, the payload digest the
SHA-1 of the bytes in base32, which for an `id_` capture is the CDX index's digest, compared
here with the captures the ledger knows. A `metadata` record beside each says where the bytes
came from. `pages/pages.jsonl` lists the articles with their snapshot URL and dates.

A WACZ is one ZIP file: it is written whole each time (to a temporary name, then renamed).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import ExportError
from .exporting import iso_timestamp, ledger_counts
from .urls import encode_once

log = logging.getLogger("preserver")

WARC_NAME = "preserver-images.warc.gz"
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "Articles"}
# one row per saved image file and capture; every URL of the corpus that names it
_IMAGES = """
    select local_path, sha256, capture_timestamp, min(original_url) as original_url,
      max(content_type) as content_type, min(saved_at) as saved_at,
      min(source_url) as source_url, max(digest_ok) as digest_ok, min(urlkey) as urlkey,
      json_group_array(url) as urls
    from images where status = 'saved' and local_path is not null
    group by local_path, sha256, capture_timestamp
    order by local_path, capture_timestamp"""
_PAGES = """
    select path, title, date, url, original_url, snapshot_timestamp from articles
    where removed_at is null and url is not null order by path"""


@dataclass
class WaczSummary:
    path: Path
    images: int = 0  # resource records written
    digest_matched: int = 0  # bytes equal the CDX digest of the capture
    digest_differs: int = 0
    digest_unknown: int = 0  # no CDX digest known for the capture
    pages: int = 0
    pages_without_snapshot_time: int = 0
    damaged: list[str] = field(default_factory=list)  # media files missing or changed

    def lines(self) -> list[str]:
        size = self.path.stat().st_size if self.path.exists() else 0
        text = [f"Wrote {self.path} ({size:,} bytes): {self.images} images, {self.pages} "
                f"pages; digests: {self.digest_matched} match the CDX, {self.digest_differs} "
                f"differ, {self.digest_unknown} not known"]
        if self.pages_without_snapshot_time:
            text.append(f"{self.pages_without_snapshot_time} articles left out of the pages: "
                        "their snapshot URL has no timestamp")
        if self.damaged:
            text.append(f"{len(self.damaged)} saved images left out: their file is missing "
                        f"or changed since it was saved (first: {self.damaged[0]}); the next "
                        "`preserver run` fetches them again")
        return text


def write_wacz(db: sqlite3.Connection, media_root: Path, out: Path, progress) -> WaczSummary:
    """Write the WACZ at `out` (replacing it) from the ledger and the media folder."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = WaczSummary(out)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".preserver-wacz-") as work:
        warc, pages, package = (Path(work) / n for n in (WARC_NAME, "pages.jsonl", "out.wacz"))
        _write_warc(db, media_root, warc, summary, progress)
        _write_pages(db, pages, summary)
        counts = ledger_counts(db)
        _package(warc, pages, package, title="preserver: saved images",
                 description=f"{summary.images} images saved by preserver from the Wayback "
                             f"Machine for {counts['articles']} articles; pages are the "
                             "articles' snapshots (not in this archive)")
        os.replace(package, out)
    return summary


def _write_warc(db: sqlite3.Connection, media_root: Path, path: Path, summary: WaczSummary,
                progress) -> None:
    from warcio.warcwriter import WARCWriter

    total = db.execute(f"select count(*) from ({_IMAGES})").fetchone()[0]
    progress.start("wacz", total)
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, {
            "software": f"preserver {__version__}",
            "format": "WARC File Format 1.1",
            "description": "Images saved by preserver, byte-exact as the archive captured "
                           "them; a metadata record beside each says where from"}))
        for row in db.execute(_IMAGES):
            _write_image(writer, db, media_root, row, summary)
            progress.advance("wacz")
    progress.finish("wacz", f"{summary.images} images in the WARC")


def _write_image(writer, db: sqlite3.Connection, media_root: Path, row: sqlite3.Row,
                 summary: WaczSummary) -> None:
    try:
        data = (media_root / row["local_path"]).read_bytes()
    except OSError:
        data = None
    if data is None or hashlib.sha256(data).hexdigest() != row["sha256"]:
        summary.damaged.append(row["local_path"])
        log.warning("not exported: %s is %s", row["local_path"],
                    "missing" if data is None else "changed since it was saved")
        return
    digest = "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")
    known = _cdx_digests(db, row["urlkey"], row["capture_timestamp"])
    if known:
        matched = "yes" if digest in known else f"no (the CDX says {', '.join(sorted(known))})"
    elif row["digest_ok"] is not None:  # checked when saved, the capture row since replaced
        matched = "yes" if row["digest_ok"] else "no (found when saved)"
    else:
        matched = "not known (no CDX digest for this capture)"
    summary.digest_matched += matched == "yes"
    summary.digest_differs += matched.startswith("no (")
    summary.digest_unknown += matched.startswith("not known")
    uri = encode_once(row["original_url"])
    date = iso_timestamp(row["capture_timestamp"]) or row["saved_at"]
    image = writer.create_warc_record(
        uri, "resource", payload=io.BytesIO(data), length=len(data),
        warc_content_type=row["content_type"] or "application/octet-stream",
        warc_headers_dict={"WARC-Date": date, "WARC-Payload-Digest": digest,
                           "WARC-Block-Digest": digest})
    writer.write_record(image)
    fields = [("source-url", row["source_url"]), ("saved-at", row["saved_at"]),
              ("capture-timestamp", row["capture_timestamp"]),
              ("payload-digest", digest), ("digest-matched", matched),
              ("sha256", row["sha256"]), ("local-path", row["local_path"])]
    fields += [("image-url", url) for url in json.loads(row["urls"])]
    body = "".join(f"{k}: {v}\r\n" for k, v in fields if v is not None).encode("utf-8")
    writer.write_record(writer.create_warc_record(
        uri, "metadata", payload=io.BytesIO(body), length=len(body),
        warc_content_type="application/warc-fields",
        warc_headers_dict={"WARC-Date": date,
                           "WARC-Refers-To": image.rec_headers.get_header("WARC-Record-ID")}))
    summary.images += 1


def _cdx_digests(db: sqlite3.Connection, urlkey: str | None, timestamp: str | None) -> set[str]:
    """The digests the CDX index gave for this capture, as `sha1:` digests."""
    if not urlkey or not timestamp:
        return set()
    rows = db.execute("select digest from captures where urlkey = ? and timestamp = ? and "
                      "digest not in ('', '-')", [urlkey, timestamp])
    return {d if d.startswith("sha1:") else f"sha1:{d}" for (d,) in rows}


def _write_pages(db: sqlite3.Connection, path: Path, summary: WaczSummary) -> None:
    """pages.jsonl: one line per article (its snapshot URL and capture time, title, date)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(PAGES_HEADER) + "\n")
        for row in db.execute(_PAGES):
            ts = iso_timestamp(row["snapshot_timestamp"])
            if ts is None:
                summary.pages_without_snapshot_time += 1
                continue
            page = {"url": row["url"], "ts": ts, "title": row["title"] or row["path"],
                    "date": row["date"], "original_url": row["original_url"],
                    "path": row["path"]}
            out.write(json.dumps(page, ensure_ascii=False) + "\n")
            summary.pages += 1


def _package(warc: Path, pages: Path, out: Path, title: str, description: str) -> None:
    """py-wacz: index the WARC (cdxj-indexer), add the pages as they are, write datapackage."""
    from wacz.main import main as wacz_main

    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        code = wacz_main(["create", "-o", str(out), "-p", str(pages), "--copy-pages",
                          "--title", title, "--desc", description, str(warc)])
    log.debug("py-wacz: %s", said.getvalue())
    if code != 0:
        raise ExportError(f"py-wacz could not package the WARC: {said.getvalue().strip()}")
