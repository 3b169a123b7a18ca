"""What the ledger says, for people (text, Markdown) and machines (JSON, CSV).

The JSON field names are a contract, documented in the README: scripts and dashboards read
them. Add fields; never rename one. Only current articles count (not those whose file is gone).
"""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import unquote

import sqlite_utils

from .ledger import CURRENT_LINKS
from .status import GOOD, UrlStatus, sql_list

WORST_ARTICLES = 10
CHANGES_SHOWN = 20


def ledger_summary(db: sqlite_utils.Database) -> dict:
    """Everything the report shows, as one dict of plain values."""
    last_run = _last_run(db)
    urls, images = _urls_and_images(db)
    return {
        "articles": _articles(db),
        "urls": urls,
        "images": images,
        "dead_urls": db.execute("select count(*) from urls where dead = 1").fetchone()[0],
        "unconfirmed": _unconfirmed(db),
        "last_run": last_run,
        "changes": _changes(db, last_run["id"] if last_run else None),
        "worst_articles": _worst_articles(db),
    }


def _articles(db) -> dict:
    rows = db.execute("select parse_status, count(*) from articles where removed_at is null "
                      "group by 1 order by 1").fetchall()
    return {"total": sum(n for _, n in rows), "by_parse_status": dict(rows),
            "url_mismatch": db.execute("select count(*) from articles where url_mismatch = 1 "
                                       "and removed_at is null").fetchone()[0]}


def _urls_and_images(db) -> tuple[dict, dict]:
    """Distinct URLs of current articles by role and status, and images by file status, in
    one pass over the links' url index (no sort of every link)."""
    by_role: dict = {}
    images: dict = {}
    for role, status, image_status, n in db.execute(
            "select d.role, coalesce(u.status, 'unchecked'), coalesce(i.status, 'unsaved'), "
            f"count(*) from (select l.url, l.role from {CURRENT_LINKS} group by l.url, l.role) d "
            "left join urls u on u.url = d.url "
            "left join images i on d.role = 'image' and i.url = d.url group by 1, 2, 3"):
        counts = by_role.setdefault(role, {})
        counts[status] = counts.get(status, 0) + n
        if role == "image":
            images[image_status] = images.get(image_status, 0) + n
    return _sorted(by_role), _sorted(images)


def _unconfirmed(db) -> dict:
    """URLs whose latest attempt said nothing (rate limit, outage): `kept` still carry their
    last conclusive verdict, `never_confirmed` have none yet. Both are due next run."""
    kept, never = db.execute(
        "select coalesce(sum(status is not null), 0), coalesce(sum(status is null), 0) "
        "from urls where last_attempt_conclusive = 0").fetchone()
    return {"kept": kept, "never_confirmed": never}


def _sorted(counts: dict) -> dict:
    return {k: _sorted(v) if isinstance(v, dict) else v for k, v in sorted(counts.items())}


def _last_run(db) -> dict | None:
    rows = list(db.query("select id, command, status, started_at, finished_at, requests, checks, "
                         "regressions, error from runs order by id desc limit 1"))
    return rows[0] if rows else None


def _changes(db, run_id: int | None) -> dict:
    """URLs whose status the last run changed, worse (good to bad) and better."""
    if run_id is None:
        return {"run_id": None, "worse": [], "better": [], "worse_count": 0, "better_count": 0}
    rows = list(db.query(
        "select u.url, u.previous_status as before, u.status as after, u.error, "
        "(select role from links where url = u.url limit 1) as role from urls u "
        "where u.url in (select url from checks where run_id = ?) "
        "and u.previous_status is not null and u.previous_status != u.status "
        "order by u.url", [run_id]))
    worse = [r for r in rows if r["before"] in GOOD and r["after"] not in GOOD
             and r["after"] != UrlStatus.EXCLUDED]  # excluded: not asked, not worse
    better = [r for r in rows if r["before"] not in GOOD and r["after"] in GOOD]
    return {"run_id": run_id, "worse_count": len(worse), "better_count": len(better),
            "worse": worse[:CHANGES_SHOWN], "better": better[:CHANGES_SHOWN]}


def _worst_articles(db) -> list[dict]:
    """Articles ranked by what is lost: snapshot gone, images not saved, original gone. From
    the kept health rows (preserver.health), where its image links not saved are counted."""
    good = sql_list(GOOD)
    return list(db.query(
        f"""select w.path, a.title, w.snapshot, w.original, w.images_unsaved,
             a.image_count as images
           from (
             select *, (coalesce(snapshot, '') not in ({good})) * 100 + images_unsaved * 10
                       + (coalesce(original, '') not in ({good})) as loss
             from (
               select h.path, h.snapshot_status as snapshot, h.original_status as original,
                 (select count(*) from health_missing_images m where m.article_path = h.path)
                   as images_unsaved
               from health h
               where h.verdict != 'file removed' and h.parse_status != 'error')
             order by loss desc, path
             limit ?) w
           join articles a on a.path = w.path
           order by w.loss desc, w.path""", [WORST_ARTICLES]))


# -- formats --------------------------------------------------------------------------------
def format_json(summary: dict) -> str:
    return json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True)


def format_text(summary: dict) -> str:
    articles = summary["articles"]
    lines = [f"Articles: {articles['total']} ({_inline(articles['by_parse_status'])}; "
             f"{articles['url_mismatch']} with a snapshot of another page)"]
    for role in ("snapshot", "original", "image", "link", "embed"):
        counts = summary["urls"].get(role)
        if counts:
            lines.append(f"{role.capitalize() + 's:':12} {sum(counts.values()):>7}  "
                         f"{_inline(counts)}")
    lines.append(f"{'Image files:':12} {sum(summary['images'].values()):>7}  "
                 f"{_inline(summary['images'])}")
    if summary["dead_urls"]:
        lines.append(f"Dead (failed repeatedly over days): {summary['dead_urls']}")
    unconfirmed = summary["unconfirmed"]
    if unconfirmed["kept"] or unconfirmed["never_confirmed"]:
        lines.append(f"Last attempt inconclusive (rate limit, outage; due next run): "
                     f"{unconfirmed['kept']} keep their last verdict, "
                     f"{unconfirmed['never_confirmed']} never confirmed")
    run, changes = summary["last_run"], summary["changes"]
    if run:
        lines.append(f"Last run #{run['id']} ({run['command']}, {run['status']}, "
                     f"{run['started_at']}): {run['requests'] or 0} requests, "
                     f"{changes['worse_count']} got worse, {changes['better_count']} better")
        lines += [f"  worse: {c['url']}  {c['before']} -> {c['after']}" for c in changes["worse"]]
    worst = [a for a in summary["worst_articles"]
             if a["snapshot"] not in GOOD or a["images_unsaved"]]
    if worst:
        lines.append("Articles losing the most:")
        lines += [f"  {a['path']}  snapshot {a['snapshot'] or 'unchecked'}, "
                  f"{a['images_unsaved']}/{a['images']} images not saved" for a in worst]
    return "\n".join(lines)


def format_markdown(summary: dict) -> str:
    out = [f"**Articles:** {summary['articles']['total']} "
           f"({_inline(summary['articles']['by_parse_status'])})", "",
           "| role | status | URLs |", "|---|---|---:|"]
    out += [f"| {role} | {status} | {n} |" for role, counts in summary["urls"].items()
            for status, n in counts.items()]
    out += ["", "| image status | images |", "|---|---:|"]
    out += [f"| {status} | {n} |" for status, n in summary["images"].items()]
    changes = summary["changes"]
    if changes["worse"]:
        out += ["", f"**Got worse in run #{changes['run_id']}:**", "",
                "| URL | before | after |", "|---|---|---|"]
        out += [f"| {c['url']} | {c['before']} | {c['after']} |" for c in changes["worse"]]
    return "\n".join(out)


def format_csv(summary: dict) -> str:
    """One flat table: section, role, status, count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "role", "status", "count"])
    for status, n in summary["articles"]["by_parse_status"].items():
        writer.writerow(["articles", "", status, n])
    for role, counts in summary["urls"].items():
        for status, n in counts.items():
            writer.writerow(["urls", role, status, n])
    for status, n in summary["images"].items():
        writer.writerow(["images", "image", status, n])
    writer.writerow(["changes", "", "worse", summary["changes"]["worse_count"]])
    writer.writerow(["changes", "", "better", summary["changes"]["better_count"]])
    return buffer.getvalue()


def format_verdicts(rows: list[dict], fmt: str = "table") -> str:
    """An audit's answer: one line per article or URL, or JSON."""
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    width = max((len(r["status"]) for r in rows), default=6)
    lines = []
    for row in rows:
        mark = "ok " if row["good"] else "BAD"
        extra = row.get("capture") or row.get("file") or ""
        detail = f"  ({row['detail']})" if row["detail"] and not row["good"] else ""
        lines.append(f"{mark} {row['kind']:<8} {row['status']:<{width}} {unquote(row['what'])}"
                     f"{'  ' + extra if extra else ''}{detail}")
    good = sum(r["good"] for r in rows)
    lines.append(f"{good} of {len(rows)} good")
    return "\n".join(lines)


FORMATS = {"text": format_text, "json": format_json, "markdown": format_markdown,
           "csv": format_csv}


def _inline(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
