"""Fixity: are the saved files still the bytes that were saved?

A saved image is worth only as much as its file. These checks run at the start of the image
phase, before anything is fetched:

- *Shared files* (once per ledger). Versions before this one could map two images to one path
  (`photo:1.jpg` and `photo_1.jpg` both became `photo_1.jpg`): the last download won and the
  other rows pointed at its bytes. Saved rows of different images (canonical keys, or hashes)
  that share a path, also one that differs only in case on a case-insensitive disk, are fetched
  again, each to its own path now. Files that are already unique stay where they are.
- *Hashes.* A stat per saved image (`ImageSaver.file_intact`) catches a file that vanished or
  changed size. Bit rot or an edit that keeps the size needs the hash, and re-hashing every file
  every hour is not affordable: each run re-hashes (sha256) the files verified longest ago, up
  to `[media] fixity_bytes_per_run` bytes, so the whole folder is re-hashed every
  (folder size / budget) runs. Each check is a row in `fixity`; a pass sets the images'
  `verified_at`.

A file that changed or vanished counts as a regression; its images become `failed` with the
reason and `damaged_at`, and are fetched again in the same run, whatever the schedule.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from .ledger import Ledger
from .status import ImageStatus
from .storage import media_relpath
from .urls import canonical_key

log = logging.getLogger("preserver")
READ_CHUNK = 1 << 20
SHARED_FILES = "images-own-files"  # the name of the one-off repair in `migrations`


def release_shared_files(ledger: Ledger, media_root: Path) -> int:
    """Once per ledger: mark damaged the saved images whose file another image shares (an
    older version's paths); returns how many rows. New paths are never shared, so later runs
    skip the scan of every image row that this takes."""
    if ledger.migration_done(SHARED_FILES):
        return 0
    suspects = ledger.db.execute(
        "select local_path from images where status = ? and local_path is not null "
        "group by local_path collate nocase having min(coalesce(urlkey, original_url)) != "
        "max(coalesce(urlkey, original_url)) or min(sha256) != max(sha256) "
        "or min(local_path) != max(local_path)", [ImageStatus.SAVED.value]).fetchall()
    damaged = []
    for (path,) in suspects:
        rows = ledger.db.execute(
            "select url, original_url, urlkey, sha256, local_path from images "
            "where local_path = ? collate nocase and status = ?",
            [path, ImageStatus.SAVED.value]).fetchall()
        for group in _same_file_groups(rows, media_root):
            keys = {urlkey or canonical_key(original) for _, original, urlkey, _, _ in group}
            if len(keys) > 1 or len({sha for _, _, _, sha, _ in group}) > 1:
                damaged += [(url,) for url, *_ in group]
    ledger.mark_damaged(damaged, "its file was shared with another image (an older version "
                                 "gave both one path): fetched again", regression=False)
    ledger.record_migration(SHARED_FILES, f"{len(damaged)} saved images shared a file")
    if damaged:
        log.warning("%d saved images shared a file with another image: fetching them again",
                    len(damaged))
    return len(damaged)


def free_path(ledger: Ledger, media_root: Path, urlkey: str, original: str) -> None:
    """Before an image is fetched: the path it gets may hold the file of another image that an
    older version saved there (its mapping merged names this one keeps apart). That image is
    fetched again, to its own path, rather than silently overwritten. A stat per image; a
    query only when the file exists (a re-fetch, or such a clash)."""
    try:
        relpath = media_relpath(original)
        if not os.path.lexists(media_root / relpath):
            return
    except (ValueError, OSError):  # not a URL with a path (the fetch will say so), or no disk
        return
    rows = ledger.db.execute(
        "select url, original_url, urlkey, local_path from images "
        "where local_path = ? collate nocase and status = ?",
        [relpath, ImageStatus.SAVED.value]).fetchall()
    others = [(url,) for url, other, key, path in rows
              if (key or canonical_key(other)) != urlkey
              and (path == relpath or _same_file(media_root, path, relpath))]
    ledger.mark_damaged(others, "an older version saved it on the path another image gets "
                                "now: fetched again to its own path", regression=False)


def _same_file_groups(rows: list[tuple], media_root: Path) -> list[list[tuple]]:
    """Rows whose paths differ at most in ASCII case, grouped by the file they land on: one
    path is one file; paths that differ in case are one file only on a case-insensitive disk."""
    groups: list[list[tuple]] = []
    for row in rows:
        for group in groups:
            if group[0][4] == row[4] or _same_file(media_root, group[0][4], row[4]):
                group.append(row)
                break
        else:
            groups.append([row])
    return groups


def _same_file(media_root: Path, a: str, b: str) -> bool:
    try:
        return os.path.samefile(media_root / a, media_root / b)
    except OSError:
        return False


def verify_sample(ledger: Ledger, media_root: Path, budget_bytes: int) -> dict[str, int]:
    """Re-hash saved files, verified longest ago (or never) first, until `budget_bytes` are
    read; record each in `fixity`. Returns counts: checked, bytes, changed, vanished. Reads
    the images table in `verified_at` order (an index) only as far as the budget goes."""
    counts = {"checked": 0, "bytes": 0, "changed": 0, "vanished": 0}
    if budget_bytes <= 0:
        return counts
    cursor = ledger.db.execute(  # `+status`: walk the verified_at index, not the status one
        "select local_path, url, sha256, bytes from images where +status = ? and "
        "local_path is not null and sha256 is not null order by verified_at",
        [ImageStatus.SAVED.value])
    checks, seen = [], set()
    try:
        while counts["bytes"] < budget_bytes and (page := cursor.fetchmany(500)):
            for local_path, url, expected, size in page:
                if local_path in seen:  # another spelling of a file already checked
                    continue
                if counts["bytes"] and counts["bytes"] + (size or 0) > budget_bytes:
                    break  # the first file is read whatever its size: every run moves on
                seen.add(local_path)
                check = _check(media_root, local_path, url, expected)
                checks.append(check)
                counts["checked"] += 1
                counts["bytes"] += check["bytes"] or size or 0
                if not check["ok"]:
                    counts["vanished" if check["actual_sha256"] is None else "changed"] += 1
            else:
                continue
            break
    finally:
        cursor.close()
    ledger.record_fixity(checks)
    return counts


def _check(media_root: Path, local_path: str, url: str, expected: str) -> dict:
    row = {"local_path": local_path, "url": url, "expected_sha256": expected,
           "actual_sha256": None, "bytes": None, "ok": 0, "error": None}
    try:
        digest, size = _sha256_of(media_root / local_path)
    except OSError as exc:
        row["error"] = f"the file vanished or cannot be read: {exc.strerror or exc}"
        return row
    row.update(actual_sha256=digest, bytes=size, ok=int(digest == expected))
    if not row["ok"]:
        row["error"] = f"the file changed on disk: sha256 {digest}, saved as {expected}"
    return row


def _sha256_of(path: Path) -> tuple[str, int]:
    if path.is_symlink():
        raise OSError(f"{path.name} is now a symlink")
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
