"""`preserver export bag`: the collection as a BagIt bag (RFC 8493) for deposit.

The payload is the media folder (`data/media/`), a consistent copy of the ledger made with
SQLite's backup API (`data/<ledger name>`), and, with `--wacz`, a WACZ of the saved images
(`data/preserver.wacz`). The Library of Congress's `bagit` package makes the bag and writes its
tag files (bag-info.txt, the tag manifest); the payload manifest (sha256) is written here
because a bag is updated in place: a second export copies and hashes only the media files
whose size or modification time changed, reuses the recorded checksums of the others, and
removes what left the media folder. The manifest is taken away while the payload changes, so
an export killed half-way leaves a bag that fails validation, and the next export hashes
everything again instead of trusting stale checksums.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import ExportError
from .exporting import backup_ledger, ledger_counts
from .storage import PART_PREFIX, PART_SUFFIX

log = logging.getLogger("preserver")

ALGORITHM = "sha256"  # what the ledger records too: a file can be checked against either
MANIFEST = f"manifest-{ALGORITHM}.txt"
AGENT = "preserver"
CHUNK = 1 << 20


@dataclass
class BagSummary:
    path: Path
    files: int = 0
    bytes: int = 0
    copied: int = 0  # media files copied (new or changed)
    reused: int = 0  # unchanged since the last export: neither copied nor hashed
    removed: int = 0  # gone from the media folder since the last export
    wacz: Path | None = None
    damaged: list[str] = field(default_factory=list)  # saved images left out of the WACZ

    def lines(self) -> list[str]:
        text = [f"Wrote the bag {self.path}: {self.files} payload files, {self.bytes:,} bytes; "
                f"media files copied {self.copied}, unchanged {self.reused}, removed "
                f"{self.removed}"]
        if self.wacz:
            text.append(f"with the WACZ {self.wacz}")
        if self.damaged:
            text.append(f"{len(self.damaged)} saved images left out of the WACZ: their file "
                        f"is missing or changed (first: {self.damaged[0]})")
        return text


def write_bag(db: sqlite3.Connection, ledger_path: Path, media_root: Path, out: Path,
              organization: str, progress, wacz: bool = False) -> BagSummary:
    """Make or update the bag at `out` from the ledger (read-only connection) and media."""
    logging.getLogger("bagit").setLevel(logging.WARNING)  # it logs every step at INFO
    out, media_root = out.resolve(), media_root.resolve()
    if out.is_relative_to(media_root) or media_root.is_relative_to(out):
        raise ExportError(f"the bag {out} and the media folder {media_root} must not contain "
                          "each other")
    _prepare(out)
    data = out / "data"
    old = _take_manifest(out)
    summary = BagSummary(out)
    entries: dict[str, tuple[str, int]] = {}  # payload path -> (checksum, size)
    _update_media(media_root, data / "media", old, entries, summary, progress)
    ledger_copy = data / ledger_path.name
    backup_ledger(db, ledger_copy)
    _add(entries, out, ledger_copy)
    wacz_path = data / "preserver.wacz"
    if wacz:
        from .export_wacz import write_wacz

        summary.damaged = write_wacz(db, media_root, wacz_path, progress).damaged
        _add(entries, out, wacz_path)
        summary.wacz = wacz_path
    _remove_unlisted(data, out, entries)
    summary.files = len(entries)
    summary.bytes = sum(size for _, size in entries.values())
    _write_manifest(out, entries)
    _write_tag_files(out, _bag_info(db, organization, summary, wacz))
    return summary


def _write_tag_files(out: Path, info: dict[str, str]) -> None:
    """bag-info.txt (fields someone added by hand are kept) and the tag manifest, written by
    bagit's own writers: what `Bag.save()` does, without its reading and checking every
    manifest line twice first (most of the time of an update of 27,000 files)."""
    import bagit

    old = bagit._load_tag_file(str(out / "bag-info.txt")) if (out / "bag-info.txt").is_file() \
        else {}
    with contextlib.chdir(out):  # bagit's tag-file walk works from the current folder
        bagit._make_tag_file("bag-info.txt", {**old, **info})
        bagit._make_tagmanifest_file(ALGORITHM, str(out))


def _prepare(out: Path) -> None:
    """A new bag in a new or empty folder; an existing one only if preserver made it."""
    import bagit

    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        info = out / "bag-info.txt"
        if not (out / "bagit.txt").is_file() or not info.is_file() or \
                f"Bag-Software-Agent: {AGENT}" not in info.read_text("utf-8", "replace"):
            raise ExportError(f"{out} is not empty and not a bag made by preserver: "
                              "choose a new or empty folder")
        return
    out.mkdir(parents=True, exist_ok=True)
    bagit.make_bag(str(out), {"Bag-Software-Agent": _agent()}, checksums=[ALGORITHM])


def _take_manifest(out: Path) -> dict[str, str]:
    """The payload checksums of the last export, removed from disk until the new ones are
    written (see the module docstring)."""
    import bagit

    path = out / MANIFEST
    entries = {}
    if path.is_file():
        for line in path.read_text("utf-8").splitlines():
            checksum, _, name = line.partition(" ")
            if name.strip():
                entries[bagit._decode_filename(name.strip())] = checksum
        path.unlink()
    return entries


def _update_media(media_root: Path, target: Path, old: dict[str, str],
                  entries: dict[str, tuple[str, int]], summary: BagSummary, progress) -> None:
    files = _media_files(media_root)
    progress.start("bag", len(files))
    for relpath in files:
        source, copy = media_root / relpath, target / relpath
        name = f"data/media/{relpath}"
        stat = source.stat()
        try:
            was = copy.stat()
        except OSError:
            was = None
        if was and (was.st_size, was.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            # unchanged; its checksum is hashed again only if not kept (a killed export)
            entries[name] = (old.get(name) or _hash(copy), stat.st_size)
            summary.reused += 1
        else:
            entries[name] = (_copy_and_hash(source, copy, stat), stat.st_size)
            summary.copied += 1
        progress.advance("bag")
    summary.removed = len({n for n in old if n.startswith("data/media/")} - set(entries))
    progress.finish("bag", f"{summary.copied} media files copied, {summary.reused} unchanged")


def _media_files(media_root: Path) -> list[str]:
    """Every regular file under the media folder (no symlinks, no leftovers of a killed
    write), as sorted relative paths with forward slashes."""
    found = []
    if not media_root.is_dir():
        return found
    for folder, dirs, names in os.walk(media_root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in names:
            path = os.path.join(folder, name)
            if name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX):
                continue
            if os.path.isfile(path) and not os.path.islink(path):
                found.append(os.path.relpath(path, media_root).replace(os.sep, "/"))
    return sorted(found)


def _copy_and_hash(source: Path, target: Path, stat: os.stat_result) -> str:
    """Copy (one read: the bytes are hashed as they are written), keeping the modification
    time so the next export can tell the copy is current."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f"{PART_PREFIX}{target.name[:100]}{PART_SUFFIX}")
    digest = hashlib.new(ALGORITHM)
    with source.open("rb") as src, temp.open("wb") as dst:
        while block := src.read(CHUNK):
            digest.update(block)
            dst.write(block)
    os.utime(temp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(temp, target)
    return digest.hexdigest()


def _hash(path: Path) -> str:
    digest = hashlib.new(ALGORITHM)
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _add(entries: dict[str, tuple[str, int]], out: Path, path: Path) -> None:
    entries[path.relative_to(out).as_posix()] = (_hash(path), path.stat().st_size)


def _remove_unlisted(data: Path, out: Path, entries: dict) -> None:
    """The payload is exactly what this export listed: anything else under data/ goes."""
    for folder, _dirs, names in os.walk(data, topdown=False):
        prefix = os.path.relpath(folder, out).replace(os.sep, "/")
        for name in names:
            if f"{prefix}/{name}" not in entries:
                os.unlink(os.path.join(folder, name))
        if folder != str(data) and not os.listdir(folder):
            os.rmdir(folder)


def _write_manifest(out: Path, entries: dict[str, tuple[str, int]]) -> None:
    import bagit

    temp = out / f".{MANIFEST}.part"
    with temp.open("w", encoding="utf-8") as handle:
        for name in sorted(entries):
            handle.write(f"{entries[name][0]}  {bagit._encode_filename(name)}\n")
    os.replace(temp, out / MANIFEST)


def _bag_info(db: sqlite3.Connection, organization: str, summary: BagSummary,
              wacz: bool) -> dict[str, str]:
    counts = ledger_counts(db)
    return {
        "Source-Organization": organization,
        "Bagging-Date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "Bag-Software-Agent": _agent(),
        "Payload-Oxum": f"{summary.bytes}.{summary.files}",
        "External-Description": (
            f"{counts['articles']} articles checked by preserver: the images saved from the "
            f"Wayback Machine ({counts['image_files']} files in data/media), the SQLite "
            "ledger of every check" + (", and a WACZ of the images" if wacz else "")),
        "Preserver-Articles": str(counts["articles"]),
        "Preserver-Images-Referenced": str(counts["images_referenced"]),
        "Preserver-Image-URLs-Saved": str(counts["images_saved"]),
        "Preserver-Image-Files": str(counts["image_files"]),
        "Preserver-Media-Files": str(summary.copied + summary.reused),
        "Preserver-Runs": str(counts["runs"]),
        "Preserver-Last-Run-Finished": str(counts["last_run"] or "never"),
    }


def _agent() -> str:
    import bagit

    return f"{AGENT} {__version__} (bagit.py {bagit.VERSION})"
