"""Phase: every image of the corpus saved locally, once per image whatever spellings the
articles use for it (they share a canonical key). Before the work is drawn up, a budgeted
fixity sample of saved files is re-hashed and saved files gone from disk are fetched again."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..progress import counts_text
from ..queries import ImageWork, saved_images
from ..status import CheckResult, ImageStatus
from ..urls import canonical_key, parse_wayback_url, time_distance
from ..worklist import Worklist
from . import Context, original, pool

if TYPE_CHECKING:
    from ..captures import CaptureIndex
    from ..images import ImageSaver
    from ..schedule import Budget

log = logging.getLogger("preserver")


class Images:
    def __init__(self, ctx: Context, saver: ImageSaver, index: CaptureIndex | None):
        self.ctx = ctx
        self.saver = saver
        self.index = index
        self.table = ImageWork(ctx.ledger.db)

    def work(self, image_urls: list[str] | None = None, due_only: bool = True,
             fixity: bool = True) -> Worklist:
        """The images to fetch, as a worklist of canonical keys: one per image that is not
        saved yet (and is due), whatever spellings the corpus uses for it (`image_urls`, or
        every image of the corpus). A saved image costs one stat; only unsaved URLs are
        canonicalised. A whole run first re-hashes its fixity sample (`fixity`; a plan does
        not)."""
        if image_urls is None and fixity:
            self._check_fixity()
        self.table.create()
        if image_urls is None:
            self.table.fill_from_corpus()
        else:
            self.table.fill_named(image_urls)
        self._unmark_broken()
        self.ctx.summary.images["already_saved"] += self.table.drop_saved()
        self.table.canonicalise(lambda url: canonical_key(original(url)))
        self._copy_other_spellings()
        return self.table.worklist(self.ctx.config.schedule if due_only else None)

    def group(self, urlkey: str) -> list[str]:
        """Every spelling of one image in this run's work."""
        return self.table.group(urlkey)

    def firsts(self) -> list[str]:
        """The original URL of the first spelling of each image to fetch (for the CDX plan)."""
        return [original(url) for url in self.table.firsts()]

    async def run(self, image_keys: Worklist, budget: Budget) -> None:
        ctx = self.ctx
        ctx.progress.start("images", len(image_keys), ctx.config.archive.replay_per_minute / 60)
        await pool(image_keys, self._save, self._record, budget)
        ctx.progress.finish("images", f"{len(image_keys)} to fetch "
                                      f"({counts_text(ctx.summary.images)})")

    async def _save(self, urlkey: str):
        from ..fixity import free_path

        urls = self.group(urlkey)
        excluded = next(filter(None, map(self.ctx.exclusions.result, urls)), None)
        if excluded is not None:  # not fetched under any of its spellings
            return urlkey, urls, excluded
        wayback = parse_wayback_url(urls[0])  # every spelling has this canonical key
        free_path(self.ctx.ledger, self.ctx.config.media_path, urlkey, original(urls[0]))
        if wayback is None or not self.index.covers(wayback.original, urlkey):
            return urlkey, urls, await self.saver.save(urls[0])
        capture = self.index.nearest(wayback.original, wayback.timestamp, urlkey)
        if capture is None:
            return urlkey, urls, self.saver.missing(urls[0])
        outcome = await self.saver.save(urls[0], capture)
        if outcome.row["status"] == ImageStatus.CORRUPT:  # bytes not as indexed
            others = _next_nearest(self.index.captures_of(wayback.original, urlkey),
                                   wayback.timestamp, capture)
            outcome = await self.saver.save_intact(urls[0], outcome, others)
        return urlkey, urls, outcome

    def _record(self, done) -> None:
        urlkey, urls, outcome = done
        ctx = self.ctx
        if isinstance(outcome, CheckResult):  # excluded: its URLs say so; no image row
            ctx.ledger.record_checks([replace(outcome, url=url) for url in urls])
            ctx.summary.images[outcome.status.value] += len(urls)
            ctx.progress.advance("images")
            return
        if outcome.check.not_sent:  # the class stopped: the image stays due
            ctx.summary.left_due["images"] += 1
            return
        # one download serves every URL of the same image
        ctx.ledger.record_images(
            [{**outcome.row, "url": url, "original_url": original(url),
              "urlkey": urlkey} for url in urls],
            checks=[replace(outcome.check, url=url) for url in urls])
        ctx.summary.images[outcome.row["status"]] += len(urls)
        ctx.progress.advance("images")

    def _check_fixity(self) -> None:
        """Files shared by two images (an older version's paths), then a budgeted sample of
        files re-hashed (see preserver.fixity)."""
        from ..fixity import release_shared_files, verify_sample

        ctx, media = self.ctx, self.ctx.config.media_path
        shared = release_shared_files(ctx.ledger, media)
        counts = verify_sample(ctx.ledger, media, ctx.config.media.fixity_bytes_per_run)
        ctx.summary.fixity.update({k: v for k, v in counts.items() if v})
        if shared:
            ctx.summary.fixity["shared"] = shared
        if counts["checked"]:
            log.info("fixity: re-hashed %d saved files (%.1f MB)", counts["checked"],
                     counts["bytes"] / 1e6)
        if counts["changed"] or counts["vanished"]:
            log.warning("fixity: %d saved files changed and %d vanished: fetching them again",
                        counts["changed"], counts["vanished"])

    def _unmark_broken(self) -> None:
        """Saved in the ledger but gone (or changed size) on disk: damaged, fetch again now."""
        broken = [(url,) for url, path, size in self.table.saved_files()
                  if not self.saver.file_intact(path, size)]
        if broken:
            self.ctx.summary.fixity["gone_or_resized"] += len(broken)
        self.ctx.ledger.mark_damaged(broken, "the file vanished or changed size on disk: "
                                             "fetched again", regression=True)
        self.table.mark_unsaved(broken)

    def _copy_other_spellings(self) -> None:
        """URLs naming an image already saved under another spelling: no download."""
        for key in self.table.keys_saved_elsewhere():
            saved_row = self._saved_image(key)
            if saved_row is None:
                continue
            urls = self.group(key)
            self.ctx.summary.images["already_saved"] += len(urls)
            self.ctx.ledger.record_images([{**saved_row, "url": url,
                                            "original_url": original(url)} for url in urls])
            self.table.drop_key(key)

    def _saved_image(self, urlkey: str) -> dict | None:
        """A saved, intact image with this canonical key (another spelling of it)."""
        for row in saved_images(self.ctx.ledger.db, urlkey):
            if self.saver.file_intact(row["local_path"], row["bytes"]):
                return row
        return None


def _next_nearest(captures: list, timestamp: str, tried) -> list:
    """The other captures of an image worth fetching (not error pages, not redirects, not
    `tried`), nearest in time to `timestamp` first."""
    return sorted((c for c in captures if c.timestamp != tried.timestamp and not c.is_error
                   and not c.is_redirect), key=lambda c: time_distance(c.timestamp, timestamp))
