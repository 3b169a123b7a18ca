"""When to look again, and when to stop: the policy that makes hourly cron runs cheap.

A URL is due when it was never checked, when it was healthy and `recheck_ok_days` have passed,
or when it was failing and `recheck_failed_hours` × 2^(failures − 1) have passed (capped at the
healthy interval). Stalest first, so a budgeted run makes progress on what matters and the next
run resumes. As InternetArchiveBot does, a URL is only called dead after `dead_after_failures`
failed checks in a row spread over at least `dead_after_days`: one bad day kills nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import sqlite_utils

from .config import ScheduleConfig
from .status import GOOD

_FAR_PAST = "0000"


def due_urls(db: sqlite_utils.Database, urls: list[str], policy: ScheduleConfig,
             at: dt.datetime | None = None) -> list[str]:
    """The URLs of `urls` that are due, stalest (or never checked) first."""
    at = at or dt.datetime.now(dt.UTC)
    state = _states(db, urls)
    due = [((state.get(u) or (None, None))[1] or _FAR_PAST, u)
           for u in urls if _is_due(state.get(u), policy, at)]
    return [url for _, url in sorted(due)]


def _states(db, urls: list[str]) -> dict[str, tuple]:
    wanted = set(urls)
    rows = db.execute("select url, status, checked_at, consecutive_failures from urls")
    return {row[0]: row[1:] for row in rows if row[0] in wanted}


def _is_due(state: tuple | None, policy: ScheduleConfig, at: dt.datetime) -> bool:
    if state is None or not state[1]:
        return True
    status, checked_at, failures = state
    age_hours = (at - _parse(checked_at)).total_seconds() / 3600
    ok_hours = policy.recheck_ok_days * 24
    if status in GOOD:
        return age_hours >= ok_hours
    wait = policy.recheck_failed_hours * 2 ** max(0, (failures or 1) - 1)
    return age_hours >= min(wait, ok_hours)


def is_dead(failures: int, first_failed_at: str | None, policy: ScheduleConfig,
            at: dt.datetime | None = None) -> bool:
    """Dead only after enough failures in a row, spread over enough days."""
    if failures < policy.dead_after_failures or not first_failed_at:
        return False
    at = at or dt.datetime.now(dt.UTC)
    return (at - _parse(first_failed_at)).total_seconds() >= policy.dead_after_days * 86400


def _parse(iso: str) -> dt.datetime:
    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


@dataclass
class Budget:
    """`--max-minutes` and `--max-requests`: when spent, no new work starts; work in flight
    finishes and is recorded, so the next run resumes from the ledger."""

    max_seconds: float | None = None
    max_requests: int | None = None
    started: float = 0.0
    client: object | None = None  # anything with `requests_sent`

    def __post_init__(self) -> None:
        self.started = self.started or time.monotonic()

    def exhausted(self) -> bool:
        if self.max_seconds is not None and time.monotonic() - self.started >= self.max_seconds:
            return True
        sent = getattr(self.client, "requests_sent", 0)
        return self.max_requests is not None and sent >= self.max_requests
