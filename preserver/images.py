"""Saving an article's images before they vanish from the archive.

An image is fetched from the archive's raw replay (`<ts>id_/<url>`: the bytes exactly as
captured), following the archive's redirect to the nearest capture. What comes back is only
saved if its bytes really are an image (magic numbers, not the Content-Type a server claims:
the archive serves HTML error pages with 200), under the size cap, written atomically to a path
derived from its URL. Bytes that differ from the CDX digest of their capture are not `saved`:
the next nearest capture is tried, and if none matches the image is `corrupt` (bytes kept, the
expected digest recorded). An image already on disk with the recorded size is not fetched
again; `preserver.fixity` re-hashes a share of them every run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from .archive import Archive, read_not_a_memento
from .client import HttpClient
from .errors import RequestFailed, UnsafePathError
from .ledger import now
from .status import CheckResult, ImageStatus, UrlStatus, status_for_http
from .storage import media_relpath, safe_target, write_atomically
from .urls import parse_wayback_url

_SIGNATURES = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
]


def sniff_image_type(data: bytes) -> str | None:
    """The image type the bytes themselves show, or None if they are not an image."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    head = data[:1024].lstrip().lower()
    if (head.startswith(b"<?xml") or head.startswith(b"<svg")) and b"<svg" in head:
        return "image/svg+xml"
    return None


MAX_CAPTURES_TRIED = 3  # captures of one image fetched before it is called corrupt


@dataclass
class ImageOutcome:
    row: dict  # for the images table
    check: CheckResult  # for urls/checks


class ImageSaver:
    def __init__(self, client: HttpClient, archive: Archive, media_root: Path, max_bytes: int):
        self.client = client
        self.archive = archive
        self.media_root = media_root
        self.max_bytes = max_bytes

    def file_intact(self, local_path: str | None, size: int | None) -> bool:
        """Is a saved image still on disk with its recorded size? One stat, for every saved
        image every run; the hashes are re-checked a budgeted share at a time
        (preserver.fixity): rehashing 133k files every hour is not affordable."""
        if not local_path:
            return False
        try:
            return (self.media_root / local_path).stat().st_size == size
        except OSError:
            return False

    def missing(self, url: str) -> ImageOutcome:
        """The CDX index, complete for this URL's prefix, has no capture: no request."""
        check = CheckResult(url, UrlStatus.NOT_FOUND, method="cdx",
                            error="the CDX index has no capture of this image")
        return ImageOutcome({**self._blank(url), "status": ImageStatus.MISSING,
                             "error": check.error}, check)

    async def save(self, url: str, capture=None, elsewhere: str | None = None) -> ImageOutcome:
        """Fetch and store one image: from the exact capture the CDX index named (one request,
        bytes compared with its digest), else through the replay's nearest-capture redirect,
        or from a memento in another archive (`elsewhere`)."""
        wayback = None if elsewhere else parse_wayback_url(url)
        row = self._blank(url)
        if elsewhere:
            fetch_url = elsewhere
        elif capture is not None:
            fetch_url = self.archive.capture_url(capture.timestamp, capture.original)
        else:
            fetch_url = self.archive.replay_url(url, "id_") if wayback else url
        endpoint = "replay" if wayback else "live"
        try:
            response = await self.client.get(fetch_url, endpoint, max_bytes=self.max_bytes)
        except RequestFailed as exc:
            check = CheckResult.failed(url, exc, archive=wayback is not None)
            return ImageOutcome({**row, "status": _failure_status(exc.status),
                                 "error": str(exc)}, check)
        check = CheckResult(url, status_for_http(response.status_code), response.status_code,
                            attempts=response.attempts, elapsed_ms=response.elapsed_ms,
                            method="replay" if wayback else "live",
                            inconclusive=_could_not_answer(response, wayback is not None))
        if wayback and 200 <= response.status_code < 300 and not response.is_memento:
            read_not_a_memento(check, response)  # an exclusion or error page, no capture
            return ImageOutcome({**row, "status": ImageStatus.FAILED, "error": check.error},
                                check)
        if response.redirects:
            check.status = UrlStatus.REDIRECTED if check.status == UrlStatus.OK else check.status
            check.final_url = response.redirects[-1]
        final = self.archive.served_capture(response, wayback) if wayback else None
        row.update(source_url=response.url,
                   capture_timestamp=final.timestamp if final else None)
        if wayback and final and final.timestamp != wayback.timestamp and not response.redirects:
            check.status = UrlStatus.REDIRECTED if check.status == UrlStatus.OK else check.status
            check.final_url = final.canonical("")
        # hashing and the fsync run in a worker thread: the event loop keeps other
        # downloads moving meanwhile (both release the GIL)
        row.update(await asyncio.to_thread(self._store, response, row["original_url"],
                                           capture.digest if capture is not None else None))
        if row["status"] == ImageStatus.CORRUPT:
            row["error"] += f" of the capture of {row['capture_timestamp']}"
        if row["status"] != ImageStatus.SAVED:
            check.error = row["error"]
        return ImageOutcome(row, check)

    async def save_intact(self, url: str, corrupt: ImageOutcome, others: list) -> ImageOutcome:
        """After a `corrupt` outcome, try the `others` captures (next nearest first) until one's
        bytes match its CDX digest. When none does, the image stays `corrupt` and the bytes of
        the last one tried stay on disk. Any other outcome (a failed request) ends the tries,
        and the corrupt row, which describes the file on disk, is returned."""
        mismatched = [corrupt.row["capture_timestamp"]]
        for capture in others[: MAX_CAPTURES_TRIED - 1]:
            attempt = await self.save(url, capture)
            if attempt.row["status"] == ImageStatus.SAVED:
                attempt.row["error"] = "; ".join(filter(None, [attempt.row["error"], (
                    f"saved the capture of {capture.timestamp}: the bytes of "
                    f"{', '.join(map(str, mismatched))} differ from their CDX digests")]))
                return attempt
            if attempt.row["status"] != ImageStatus.CORRUPT:
                break
            corrupt = attempt
            mismatched.append(capture.timestamp)
        if len(mismatched) > 1:
            corrupt.row["error"] += f"; captures tried: {', '.join(map(str, mismatched))}"
        return corrupt

    @staticmethod
    def _blank(url: str) -> dict:
        wayback = parse_wayback_url(url)
        return {"url": url, "original_url": wayback.original if wayback else url,
                "local_path": None, "sha256": None, "bytes": None, "content_type": None,
                "source_url": None, "saved_at": None, "capture_timestamp": None, "error": None,
                "digest_ok": None, "expected_digest": None, "verified_at": None,
                "damaged_at": None}

    def _store(self, response, original: str, digest: str | None = None) -> dict:
        """Validate, write, and compare with the CDX `digest` if one is known; returns the
        image columns that depend on the bytes."""
        code = response.status_code
        if response.too_large:
            return {"status": ImageStatus.TOO_LARGE,
                    "error": f"larger than max_image_bytes ({self.max_bytes:,} bytes)"}
        if code in (404, 410):
            return {"status": ImageStatus.MISSING, "error": "not archived (HTTP 404)"}
        if code != 200:
            return {"status": ImageStatus.FAILED, "error": f"HTTP {code}"}
        kind = sniff_image_type(response.body)
        claimed = response.content_type
        if kind is None:
            return {"status": ImageStatus.INVALID, "content_type": claimed or None,
                    "error": f"not an image: served as {claimed or 'no type'}, "
                             f"starts with {response.body[:16]!r}"}
        note = None
        if claimed.startswith("image/") and claimed != kind and claimed != "image/jpg":
            note = f"served as {claimed} but the bytes are {kind}"
        row = self._write(response.body, kind, original, note)
        if digest and row["status"] == ImageStatus.SAVED:
            row["digest_ok"] = int(_sha1_base32(response.body) == digest)
            if not row["digest_ok"]:  # kept on disk: it may be all there is
                row.update(status=ImageStatus.CORRUPT, expected_digest=digest, verified_at=None,
                           error=f"bytes differ from the CDX digest {digest} (expected)")
        return row

    def _write(self, data: bytes, kind: str, original: str, note: str | None) -> dict:
        relpath = media_relpath(original, kind)
        try:
            write_atomically(safe_target(self.media_root, relpath), data)
        except UnsafePathError as exc:
            return {"status": ImageStatus.FAILED, "error": str(exc)}
        except OSError as exc:
            return {"status": ImageStatus.FAILED,
                    "error": f"cannot write {relpath}: {exc.strerror or exc}"}
        stamp = now()
        return {"status": ImageStatus.SAVED, "local_path": relpath, "content_type": kind,
                "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                "saved_at": stamp, "verified_at": stamp, "error": note}


def _sha1_base32(data: bytes) -> str:
    """The CDX `digest`: base32 of the SHA-1 of the body."""
    return base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def _could_not_answer(response, archive: bool) -> bool:
    """The archive's own 429/5xx, or a live host's 429: no verdict about the image."""
    return response.is_archive_trouble if archive else response.status_code == 429


def _failure_status(status: UrlStatus) -> ImageStatus:
    if status == UrlStatus.NOT_FOUND:
        return ImageStatus.MISSING
    return ImageStatus.FAILED
