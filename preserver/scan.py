"""Scanning: walking the corpus folder and reading its articles into the ledger.

Every run starts here, so a file whose size and mtime the ledger already knows is not read
again. A large scan parses in worker processes while the parent writes what they return, a
few chunks ahead and never the whole corpus in memory. No network: the phases that ask the
archive and the sites (preserver.crawl) read the ledger this scan wrote.
"""

from __future__ import annotations

import collections
import gc
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from .articles import read_article
from .config import Config
from .ledger import Ledger, article_rows
from .progress import LineProgress, counts_text
from .status import ParseStatus

if TYPE_CHECKING:
    from .crawl import RunSummary

log = logging.getLogger("preserver")
SCAN_BATCH = 2000  # articles written per transaction
PARALLEL_SCAN_FILES = 2000  # below this, worker processes cost more than they save
SCAN_CHUNK = 250
SCAN_CHUNKS_AHEAD = 8


def scan_corpus(config: Config, ledger: Ledger, summary: RunSummary,
                progress: LineProgress) -> None:
    """Read every new or changed *.md under the corpus folder into the ledger.

    A file whose size and mtime match the ledger is not read again; articles whose file
    is gone are marked removed (their history stays)."""
    root = config.corpus_path
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {root}")
    known = ledger.file_states()
    in_ledger = {row[0] for row in ledger.db.execute("select path from articles")}
    changed = []
    for path, entry in corpus_files(root):
        if _unchanged(entry, known.pop(path, None)):
            summary.articles["unchanged"] += 1
        else:
            changed.append(path)
    progress.start("scan", len(changed))
    with ledger.bulk_load(len(changed)):
        _read_into_ledger(config, ledger, summary, progress, changed, in_ledger)
    if known:
        ledger.mark_removed(sorted(known))
        summary.articles["removed"] = len(known)
    progress.finish("scan", f"{sum(summary.articles.values())} articles "
                            f"({counts_text(summary.articles)})")


def _read_into_ledger(config: Config, ledger: Ledger, summary: RunSummary,
                      progress: LineProgress, files: list[str], in_ledger: set[str]) -> None:
    batch: list = []
    for article in read_articles(config.corpus_path, files, config.security.max_article_bytes):
        batch.append(article)
        summary.articles[article.parse_status] += 1
        if article.parse_status == ParseStatus.ERROR:
            log.warning("%s: %s", article.path, article.parse_error)
        if len(batch) >= SCAN_BATCH:
            ledger.record_articles(batch, in_ledger)
            progress.advance("scan", len(batch))
            batch = []
    ledger.record_articles(batch, in_ledger)


def read_articles(root: Path, files: list[str], max_bytes: int):
    """Read files (paths relative to root) in order, as `ArticleRows`; a large scan parses in
    worker processes while we write."""
    if len(files) < PARALLEL_SCAN_FILES:
        yield from _read_chunk((root, files, max_bytes))
        return
    chunks = [files[i : i + SCAN_CHUNK] for i in range(0, len(files), SCAN_CHUNK)]
    context = multiprocessing.get_context("fork")  # no threads exist yet; cheapest start
    pool = ProcessPoolExecutor(os.cpu_count() or 2, mp_context=context,
                               initializer=_worker_setup)
    finished = False
    pending: collections.deque = collections.deque()
    try:
        for chunk in chunks:  # a few chunks ahead of the writer, not the whole corpus in memory
            pending.append(pool.submit(_read_chunk, (root, chunk, max_bytes)))
            if len(pending) > SCAN_CHUNKS_AHEAD:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
        finished = True
    finally:  # interrupted: drop the chunks not started, do not wait for the others
        pool.shutdown(wait=finished, cancel_futures=True)


def _worker_setup() -> None:
    """Ctrl-C is the parent's to handle (a worker dying of it breaks the pool mid-shutdown),
    and a parse worker must not outlive a killed run (Linux: PR_SET_PDEATHSIG)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()  # what the worker inherits is never garbage: its collections skip all that
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the worker ends when its task queue closes


def _read_chunk(job) -> list:
    root, files, max_bytes = job
    return [article_rows(read_article(root, os.path.join(root, file), max_bytes, file))
            for file in files]


def iter_articles(root: Path):
    """Every *.md file under root, in a stable order, without following directory symlinks."""
    return (Path(entry.path) for _, entry in corpus_files(root))


def corpus_files(root: Path | str, prefix: str = ""):
    """(path relative to root with forward slashes, os.DirEntry) of every *.md file under
    root: a folder's files by name, then its subfolders by name (the order of a sorted
    os.walk), not following directory symlinks, skipping folders it cannot read as os.walk
    does. DirEntry and plain strings rather than pathlib: every run walks every file."""
    try:
        with os.scandir(root) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:
        return
    folders = []
    for entry in entries:
        if _is_folder(entry):
            if not entry.is_symlink():
                folders.append(entry)
        elif entry.name.endswith(".md") and not entry.name.startswith("."):
            yield prefix + entry.name, entry
    for folder in folders:
        yield from corpus_files(folder.path, f"{prefix}{folder.name}/")


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _unchanged(entry: os.DirEntry, known: tuple[int, int] | None) -> bool:
    if known is None:
        return False
    try:
        stat = entry.stat()
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns) == known
