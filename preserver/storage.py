"""Where a saved image lives, and how it gets there without ever being half-written.

The path is derived from the image's original URL (host, then the decoded path segments), so a
person can find a file by eye: `media/www.hkcnews.com/news_新聞/hk-discuss/2018/11/x.png`. Every
segment is sanitised (no `..`, no separators, no control characters, no leading dots, at most
200 bytes). The mapping is one-to-one over canonical keys (the archive's SURT of the URL): a
readable path is kept only if the URL it spells out again has the image's own key, both as it
is and case-folded; wherever sanitising could merge two URLs (a query string, a character
replaced or dropped, percent-decoding, truncation, a port, case on a case-insensitive disk) the
name gets a short hash of the URL instead. So `photo:1.jpg` and `photo_1.jpg` never share a file,
while a plain name (`news_新聞/hk-discuss/2017/09/法庭-李明哲.png`) stays as it always was.
The final path is checked to lie inside the media folder with no symlink on the way.
Files are written to a temporary `.part` name, fsynced and renamed: a crash leaves either the
old state or the new file, and `clean_partial_files` removes leftovers at the next start.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .errors import UnsafePathError
from .urls import canonical_key

PART_PREFIX = ".preserver-tmp-"  # media_relpath never makes a name that starts with a dot
PART_SUFFIX = ".part"
MAX_SEGMENT_BYTES = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_HASHED = re.compile(r"-[0-9a-f]{10}(\.[^.]*)?$", re.IGNORECASE)  # the form a hashed name takes
_PATH_SAFE = "/!$&'()*+,;=@~"
EXTENSIONS = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
    "image/bmp": ".bmp", "image/svg+xml": ".svg", "image/x-icon": ".ico", "image/avif": ".avif",
    "image/tiff": ".tif",
}


def media_relpath(original_url: str, content_type: str | None = None) -> str:
    """A safe relative path (forward slashes) for an image's original URL: distinct canonical
    keys never share one, even on a case-insensitive file system."""
    parts = urlsplit(original_url)
    host = _segment((parts.hostname or "unknown-host").lower()) or "unknown-host"
    segments = [_segment(unquote(s, errors="replace")) for s in parts.path.split("/")]
    segments = [s for s in segments if s]
    name = segments.pop() if segments else "index"
    if content_type in EXTENSIONS and not os.path.splitext(name)[1]:
        name += EXTENSIONS[content_type]
    key = canonical_key(original_url)
    if not _spells_key(key, "/".join([host, *segments, name])):
        stem, ext = os.path.splitext(name)
        # the URL's own hash, as before: distinct keys are distinct URLs, and the names given
        # to query strings by earlier versions stay where they are
        digest = hashlib.sha256(original_url.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        name = f"{_truncate(stem, MAX_SEGMENT_BYTES - 30)}-{digest}{ext[:10]}"
    return "/".join([host, *segments, name])


def _spells_key(key: str, relpath: str) -> bool:
    """Does this readable path name exactly one canonical key, `key`, also case-folded? Then
    two URLs that get it (or paths equal on a case-insensitive disk) are one image."""
    if _HASHED.search(relpath):  # could be taken for another URL's hashed name
        return False
    for spelling in {relpath, _fold(relpath)}:
        host, _, path = spelling.partition("/")
        if canonical_key(f"http://{host}/{quote(path, safe=_PATH_SAFE)}") != key:
            return False
    return True


def _fold(text: str) -> str:
    """What a case-insensitive (and normalisation-insensitive) file system compares."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def _segment(text: str) -> str:
    text = _UNSAFE.sub("_", text).strip().lstrip(".")
    if text in ("", ".", ".."):
        return ""
    return _truncate(text, MAX_SEGMENT_BYTES)


def _is_truncated(name: str) -> bool:
    return name.endswith("\u2026")


def _truncate(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[: max_bytes - 3].decode("utf-8", "ignore") + "\u2026"


def safe_target(media_root: Path, relpath: str) -> Path:
    """media_root/relpath, refusing anything that escapes it or passes through a symlink."""
    root = _resolved(media_root)
    target = root.joinpath(*relpath.split("/"))
    if ".." in relpath.split("/") or not target.is_relative_to(root):
        raise UnsafePathError(f"refusing to write outside the media folder: {relpath}")
    current = root
    for part in relpath.split("/")[:-1]:
        current = current / part
        if current.is_symlink():  # checked every time: one could be planted mid-run
            raise UnsafePathError(f"refusing to write through a symlink: {current}")
    if target.is_symlink():
        raise UnsafePathError(f"refusing to overwrite a symlink: {target}")
    return target


@functools.lru_cache(maxsize=8)
def _resolved(media_root: Path) -> Path:
    return media_root.resolve()


def write_atomically(target: Path, data: bytes) -> None:
    """Write data to target via a fsynced temporary file and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=PART_PREFIX, suffix=PART_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def clean_partial_files(media_root: Path) -> int:
    """Remove `.part` leftovers of a killed run; returns how many."""
    if not media_root.is_dir():
        return 0
    removed = 0
    for temp in media_root.rglob(PART_PREFIX + "*" + PART_SUFFIX):
        if temp.is_file() and not temp.is_symlink():
            temp.unlink()
            removed += 1
    return removed
