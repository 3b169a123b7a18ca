"""`preserver export site OUT/`: the corpus as plain files that read without the archive.

The articles' images live only in the Wayback Machine; preserver saves them, but a reader
should need neither the archive nor preserver to see them. The export copies every article to
`OUT/articles/<its path>` and every saved image it shows to `OUT/media/<its path in the media
folder>`, and points the reference at the copy by a relative, percent-encoded path, which any
Markdown viewer follows. `OUT/index.md` lists the articles with their health (made by
`export_index.py`).

Byte-faithful: an article's bytes are spliced, never re-serialised. Only the URL inside an
image reference (`<img src="...">`, `![...](...)`) whose image the ledger holds as saved is
replaced; the front matter and every other byte stay. References are found with the scanner's
own patterns and resolved as the scanner resolves them (`articles.py`), so the export replaces
exactly the references the ledger knows. An image that is not saved keeps its Wayback URL, and
so does one whose file is gone or differs from its recorded sha256.

Incremental: an article is written only when its bytes differ from the copy already in OUT;
an image is copied only when OUT lacks it at the source's size and mtime (a copy is hashed
against the ledger when it is made). `OUT/.preserver-site` lists what the export wrote, so
what a later export no longer produces (a removed article) is deleted, and nothing else in
OUT is ever touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import itertools
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import frontmatter
import sqlite_utils

from .articles import _MARKDOWN, _TAG, Article, parse_article
from .config import Config
from .errors import ExportError, UnsafePathError
from .export_index import ARTICLES, INDEX, MEDIA, build_index
from .progress import LineProgress
from .scan import corpus_files
from .status import ParseStatus
from .storage import PART_PREFIX, PART_SUFFIX, clean_partial_files, safe_target
from .urls import resolve_link

log = logging.getLogger("preserver")

MANIFEST = ".preserver-site"  # what the last export wrote, one path a line
_BOUNDARY = frontmatter.YAMLHandler.FM_BOUNDARY  # the `---` lines, as the reader splits them
_LOOKUP_BATCH = 500  # image URLs per ledger query


@dataclass
class SiteSummary:
    articles: Counter = field(default_factory=Counter)  # written, unchanged, not exported
    unreadable: int = 0  # articles preserver cannot read: copied as they are
    images: Counter = field(default_factory=Counter)  # copied, unchanged, not usable
    references: Counter = field(default_factory=Counter)  # local, wayback
    removed: int = 0  # files of an earlier export no longer produced
    index_written: bool = False
    out: Path | None = None

    def lines(self) -> list[str]:
        """What was written, for people."""
        articles, images, refs = self.articles, self.images, self.references
        return [f"Site in {self.out}: {sum(articles.values()):,} articles "
                f"({articles['written']:,} written, {articles['unchanged']:,} unchanged, "
                f"{self.unreadable:,} unreadable copied as they are); "
                f"{images['copied'] + images['unchanged']:,} images ({images['copied']:,} "
                f"copied, {images['unchanged']:,} unchanged, {images['not usable']:,} "
                f"not usable); {refs['local']:,} image references made local, "
                f"{refs['wayback']:,} left on the Wayback Machine; index.md "
                f"{'written' if self.index_written else 'unchanged'}; "
                f"{self.removed:,} stale files removed."]


def export_site(config: Config, db: sqlite_utils.Database, out: Path,
                progress: LineProgress | None = None) -> SiteSummary:
    """Write (or bring up to date) the site copy of the corpus in `out`."""
    progress = progress or LineProgress()
    out = check_destination(out, config)
    out.mkdir(parents=True, exist_ok=True)
    clean_partial_files(out)
    site = _Site(config, db, out)
    files = [path for path, _ in corpus_files(config.corpus_path)]
    progress.start("site", len(files))
    for path in files:
        site.article(path)
        progress.advance("site")
    site.summary.index_written = _write_chunks_if_changed(out / INDEX, site.index(files))
    site.written.add(INDEX)
    site.summary.removed = site.remove_stale()
    _write_if_changed(out / MANIFEST, "".join(f"{p}\n" for p in sorted(site.written)).encode())
    summary = site.summary
    progress.finish("site", f"{len(files)} articles ({_counts(summary.articles)}), images "
                            f"{_counts(summary.images)}")
    return summary


def check_destination(out: Path, config: Config) -> Path:
    """OUT, resolved; refused if it overlaps what it is made from (the source is never
    written) or is a folder with other things in it than an earlier site export."""
    if not config.corpus_path.is_dir():  # (an empty export would delete the last one)
        raise ExportError(f"corpus folder not found: {config.corpus_path}")
    out = out.resolve()
    for name, folder in (("corpus", config.corpus_path), ("media", config.media_path)):
        folder = folder.resolve()
        if out == folder or out.is_relative_to(folder) or folder.is_relative_to(out):
            raise ExportError(f"{out} overlaps the {name} folder {folder}: the export never "
                              "writes where it reads; choose another folder")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty and holds no earlier site export ({MANIFEST}): "
                          "choose a new or empty folder")
    return out


def image_spans(text: str, page_url: str | None) -> list[tuple[int, int, str]]:
    """(start, end, resolved URL) of the URL of every image reference in the body of an
    article's text, in order: the references `articles._extract_references` reads."""
    bom = 1 if text.startswith("\ufeff") else 0  # the reader drops it: so do the boundaries
    boundaries = list(itertools.islice(_BOUNDARY.finditer(text[bom:]), 2))
    if len(boundaries) < 2:
        return []
    body = bom + boundaries[1].end()
    found = []
    for m in _TAG.finditer(text, body):
        if m[1].lower() == "img":
            group = 2 if m[2] is not None else 3
            found.append((m.start(group), m.end(group), html.unescape(m[group])))
    found += [(m.start(1), m.end(1), m[1]) for m in _MARKDOWN.finditer(text, body)
              if text[m.start() - 1] == "!"]
    spans, end = [], -1
    for start, stop, raw in sorted(found):
        if start >= end and raw.strip():  # an <img> inside ![...](...) is read once
            spans.append((start, stop, resolve_link(raw, page_url or "")))
            end = stop
    return spans


def relative_link(article_path: str, media_path: str) -> str:
    """The link from OUT/articles/<article_path> to OUT/media/<media_path>: every byte but
    unreserved ones and `/` percent-encoded (CJK, spaces, `%`, quotes, parentheses), so it
    reads the same in a Markdown link, an HTML attribute and a file browser."""
    up = "../" * (article_path.count("/") + 1)
    return up + quote(f"{MEDIA}/{media_path}", safe="/")


class _Site:
    def __init__(self, config: Config, db: sqlite_utils.Database, out: Path):
        self.config = config
        self.db = db
        self.out = out
        self.summary = SiteSummary(out=out.resolve())
        self.written: set[str] = set()  # paths under out, for the manifest
        self._images: dict[str, bool] = {}  # media path -> copied and usable
        self._safe_folders: set[str] = set()  # folders under out checked for symlinks
        self._out, self._media = str(out), str(config.media_path)
        self._corpus = str(config.corpus_path)

    def _target(self, relpath: str) -> str:
        """out/relpath, refusing what would leave out or pass through a symlink (each
        folder is checked once per export: only the export writes there meanwhile). Plain
        strings, not pathlib: this runs for every file."""
        folder = relpath.rpartition("/")[0]
        if folder not in self._safe_folders or ".." in relpath.split("/"):
            target = str(safe_target(self.out, relpath))
            self._safe_folders.add(folder)
            return target
        target = os.path.join(self._out, relpath)
        if os.path.islink(target):
            raise UnsafePathError(f"refusing to overwrite a symlink: {target}")
        return target

    # -- articles -----------------------------------------------------------------------
    def article(self, path: str) -> None:
        try:
            with open(os.path.join(self._corpus, path), "rb") as handle:
                data = handle.read()
            target = self._target(f"{ARTICLES}/{path}")
        except (OSError, UnsafePathError) as exc:
            log.warning("%s: not exported (an earlier copy stays): %s", path, exc)
            self.summary.articles["not exported"] += 1
            self.written.add(f"{ARTICLES}/{path}")
            return
        written = _write_if_changed(target, self._rewrite(path, data))
        self.summary.articles["written" if written else "unchanged"] += 1
        self.written.add(f"{ARTICLES}/{path}")

    def _rewrite(self, path: str, data: bytes) -> bytes:
        """The article with its saved images' references pointing at their copies (the same
        bytes object when nothing is replaced)."""
        if len(data) > self.config.security.max_article_bytes:
            self.summary.unreadable += 1
            return data
        article = parse_article(Article(path=path), data)
        if article.parse_status == ParseStatus.ERROR:
            self.summary.unreadable += 1  # its references are unknown: copied as it is
            return data
        text = data.decode("utf-8")
        spans = image_spans(text, article.url)
        local = self._usable_images({url for _, _, url in spans})
        pieces, done, at = [], 0, 0  # bytes copied up to `done`; `at` is its place in text
        for start, stop, url in spans:
            if url not in local:
                self.summary.references["wayback"] += 1
                continue
            begin = done + len(text[at:start].encode("utf-8"))
            pieces += [data[done:begin], relative_link(path, local[url]).encode("ascii")]
            done, at = begin + len(text[start:stop].encode("utf-8")), stop
            self.summary.references["local"] += 1
        return b"".join([*pieces, data[done:]]) if pieces else data

    # -- images -------------------------------------------------------------------------
    def _usable_images(self, urls: set[str]) -> dict[str, str]:
        """URL -> media path of those of urls whose image is saved and copied into OUT."""
        found = {}
        urls = sorted(urls)
        for i in range(0, len(urls), _LOOKUP_BATCH):
            batch = urls[i : i + _LOOKUP_BATCH]
            # `+status`: by URL (the primary key), not through the index on status, which
            # SQLite otherwise picks and walks every saved image for each article
            rows = self.db.execute(
                "select url, local_path, sha256, bytes from images where +status = 'saved' "
                f"and local_path is not null and url in ({', '.join('?' * len(batch))})", batch)
            for url, media_path, sha256, size in rows:
                if self._copied(media_path, sha256, size):
                    found[url] = media_path
        return found

    def _copied(self, media_path: str, sha256: str, size: int) -> bool:
        if media_path not in self._images:
            usable = self._copy_image(media_path, sha256, size)
            self._images[media_path] = usable
            if usable:
                self.written.add(f"{MEDIA}/{media_path}")
        return self._images[media_path]

    def _copy_image(self, media_path: str, sha256: str, size: int) -> bool:
        """Copy one saved image into OUT unless an identical copy is there (same size and
        mtime as the source); False if it cannot be used (gone, or not what was saved)."""
        try:  # only read, and only used if its sha256 is the one recorded: no symlink walk
            if ".." in media_path.split("/") or media_path.startswith("/"):
                raise UnsafePathError(f"not a path inside the media folder: {media_path}")
            source = os.path.join(self._media, media_path)
            target = self._target(f"{MEDIA}/{media_path}")
            stat = os.stat(source)
        except (OSError, UnsafePathError) as exc:
            return self._unusable(media_path, f"cannot read the saved file: {exc}")
        if stat.st_size != size:
            return self._unusable(media_path, f"{stat.st_size:,} bytes on disk, the ledger "
                                              f"says {size:,}")
        try:
            copy = os.stat(target)
            if (copy.st_size, copy.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                self.summary.images["unchanged"] += 1
                return True
        except OSError:
            pass
        with open(source, "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            return self._unusable(media_path, "its bytes differ from the sha256 in the ledger")
        _write(target, data, stat.st_mtime_ns)
        self.summary.images["copied"] += 1
        return True

    def _unusable(self, media_path: str, reason: str) -> bool:
        log.warning("media/%s: %s; its references keep their Wayback URL", media_path, reason)
        self.summary.images["not usable"] += 1
        return False

    # -- index and leftovers ------------------------------------------------------------
    def index(self, files: list[str]):
        return build_index(self.db, files, self.summary.references)

    def remove_stale(self) -> int:
        """Delete what the previous export wrote and this one did not (a removed article,
        an image no longer shown); returns how many files."""
        try:  # read line by line: the manifest of 49,000 articles is not held twice
            with open(self.out / MANIFEST, encoding="utf-8") as manifest:
                stale = [p for p in (line.rstrip("\n") for line in manifest)
                         if p and p not in self.written]
        except OSError:
            return 0
        removed = 0
        for path in stale:
            try:
                target = safe_target(self.out, path)
                if target.is_file():
                    target.unlink()
                    removed += 1
                    _prune_empty(target.parent, self.out)
            except (OSError, UnsafePathError) as exc:
                log.warning("could not remove %s from the export: %s", path, exc)
        return removed


def _write_if_changed(target: Path | str, data: bytes) -> bool:
    """Write data unless target already holds exactly it; True if written."""
    try:
        if os.stat(target).st_size == len(data):
            with open(target, "rb") as handle:
                if handle.read() == data:
                    return False
    except OSError:
        pass
    _write(target, data)
    return True


def _write_chunks_if_changed(target: Path, chunks) -> bool:
    """Write the chunks to a temporary file beside target, hashing them, and keep it only if
    target does not already hold the same bytes; True if written."""
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=PART_PREFIX, suffix=PART_SUFFIX)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
        if _file_sha256(target) == digest.hexdigest():
            os.unlink(temp)
            return False
        os.chmod(temp, 0o644)
        os.replace(temp, target)
        return True
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _write(target: Path | str, data: bytes, mtime_ns: int | None = None) -> None:
    """Write via a temporary file and a rename (a killed export leaves no half file). No
    fsync: unlike the media folder, the export can always be made again, and an image copy
    torn by a crash differs in size or mtime, so the next export copies it again."""
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=PART_PREFIX, suffix=PART_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        if mtime_ns is not None:
            os.utime(temp, ns=(mtime_ns, mtime_ns))
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items())) or "none"
