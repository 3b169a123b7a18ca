"""One-off audits: `preserver audit PATH|URL ...` checks the named articles, folders or single
URLs now, whatever the schedule says, records the checks like any run, and says how each one
stands, for a person who wants an answer about one thing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .articles import read_article
from .config import Config
from .crawl import Targets
from .errors import PreserverError
from .ledger import Ledger, article_rows
from .scan import iter_articles
from .status import GOOD, ImageStatus, ParseStatus, UrlStatus
from .urls import is_http_url, parse_wayback_url


class AuditUsageError(PreserverError):
    """An audit item is neither an http(s) URL nor an article or folder in the corpus."""


@dataclass
class AuditPlan:
    """The items of an audit, checked before the run: its URLs and article files. The run
    (preserver.run) turns them into `Targets` once it holds the ledger."""

    urls: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def plan_audit(config: Config, items: list[str]) -> AuditPlan:
    """Validate the items before anything is written; raise AuditUsageError for a bad one."""
    plan = AuditPlan()
    root = config.corpus_path.resolve()
    for item in items:
        if is_http_url(item):
            plan.urls.append(item)
            continue
        path = Path(item).resolve()
        if not path.exists():
            raise AuditUsageError(f"{item}: neither an http(s) URL nor an existing file or folder")
        if not path.is_relative_to(root):
            raise AuditUsageError(f"{item}: not inside the corpus folder {root}")
        plan.files += [path] if path.is_file() else list(iter_articles(path))
    return plan


def read_targets(config: Config, ledger: Ledger, plan: AuditPlan) -> Targets:
    """Read the named articles into the ledger and collect every URL to check."""
    root = config.corpus_path.resolve()
    articles = [read_article(root, f, config.security.max_article_bytes) for f in plan.files]
    ledger.record_articles([article_rows(a) for a in articles], {a.path for a in articles})
    targets = Targets(articles=[a.path for a in articles])
    for article in articles:
        if article.parse_status != ParseStatus.ERROR:
            targets.snapshots.append(article.url)
            targets.originals.append(article.original_url)
            targets.images += article.images
            targets.embeds += article.embeds
    for url in plan.urls:
        (targets.snapshots if parse_wayback_url(url) else targets.originals).append(url)
    for name in ("snapshots", "originals", "images", "embeds"):
        setattr(targets, name, list(dict.fromkeys(getattr(targets, name))))
    return targets


def verdicts(ledger: Ledger, targets: Targets) -> list[dict]:
    """One row per article and per URL: what it is, how it stands, and why."""
    db = ledger.db
    rows = []
    for path in targets.articles:
        article = db["articles"].get(path)
        good = article["parse_status"] != ParseStatus.ERROR
        rows.append(_row("article", path, article["parse_status"], article["parse_error"], good))
    for role, urls in (("snapshot", targets.snapshots), ("original", targets.originals),
                       ("embed", targets.embeds)):
        for url in urls:
            state = _get(db, "urls", url)
            status = state.get("status", "unchecked")
            good = status in GOOD or status == UrlStatus.EXCLUDED  # excluded: not a failure
            rows.append(_row(role, url, status, state.get("error"), good,
                             capture=state.get("capture_timestamp")))
    for url in targets.images:
        image = _get(db, "images", url)
        status = image.get("status", "unchecked")
        rows.append(_row("image", url, status, image.get("error"), status == ImageStatus.SAVED,
                         file=image.get("local_path")))
    return rows


def _row(kind: str, what: str, status: str, detail: str | None, good: bool, **extra) -> dict:
    return {"kind": kind, "what": what, "status": status, "good": good, "detail": detail,
            **{k: v for k, v in extra.items() if v}}


def _get(db, table: str, url: str) -> dict:
    rows = list(db[table].rows_where("url = ?", [url]))
    return rows[0] if rows else {}
