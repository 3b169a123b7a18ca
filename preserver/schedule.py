"""When to look again, and when to stop: the policy that makes hourly cron runs cheap.

A URL is due when it was never checked, when it was healthy and `recheck_ok_days` have passed,
or when it was failing and `recheck_failed_hours` × 2^(failures − 1) have passed (capped at the
healthy interval). A URL whose latest attempt was inconclusive (the archive overloaded, our
network down) is due again at the next run: the outage said nothing about it. Stalest first,
so a budgeted run makes progress on what matters and the next run resumes; the SQL that finds
what is due is preserver.queries. As InternetArchiveBot does, a URL is only called dead after
`dead_after_failures` conclusive failures in a row spread over at least `dead_after_days`: one
bad day kills nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from .config import ScheduleConfig


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
