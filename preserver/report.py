"""Summaries of the ledger for people (text) and machines (JSON).

Field names in the JSON form are a contract: scripts read them. Add fields; never rename one.
"""

from __future__ import annotations

import json

import sqlite_utils


def ledger_summary(db: sqlite_utils.Database) -> dict:
    """Counts by role and status, images by status, parse outcomes, and the last run."""
    q = db.execute
    by_role = {}
    for role, status, n in q(
        "select l.role, coalesce(u.status, 'unchecked'), count(distinct l.url) from links l "
        "left join urls u on u.url = l.url where l.role in ('snapshot', 'original') "
        "group by 1, 2 order by 1, 2"
    ):
        by_role.setdefault(role, {})[status] = n
    images = dict(q(
        "select coalesce(i.status, 'unchecked'), count(distinct l.url) from links l "
        "left join images i on i.url = l.url where l.role = 'image' group by 1 order by 1"
    ).fetchall())
    parse = dict(q("select parse_status, count(*) from articles group by 1 order by 1").fetchall())
    run = q("select id, started_at, finished_at, status, command, regressions, requests "
            "from runs order by id desc limit 1").fetchone()
    last_run = dict(zip(["id", "started_at", "finished_at", "status", "command",
                         "regressions", "requests"], run, strict=True)) if run else None
    return {"articles": sum(parse.values()), "parse": parse, "snapshots": by_role.get(
        "snapshot", {}), "originals": by_role.get("original", {}), "images": images,
            "last_run": last_run}


def format_text(summary: dict) -> str:
    lines = [f"Articles: {summary['articles']} ({_inline(summary['parse'])})"]
    for key in ("snapshots", "originals", "images"):
        total = sum(summary[key].values())
        lines.append(f"{key.capitalize()}: {total} ({_inline(summary[key])})")
    run = summary.get("last_run")
    if run:
        lines.append(f"Last run: #{run['id']} {run['command']} {run['status']}, "
                     f"started {run['started_at']}, {run['requests'] or 0} requests, "
                     f"{run['regressions'] or 0} regressions")
    return "\n".join(lines)


def format_json(summary: dict) -> str:
    return json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True)


def _inline(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
