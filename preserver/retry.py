"""Retry policy: which failures are worth another try, and how long to wait.

Transient failures (timeouts, refused or reset connections, 429, 5xx) are retried with
exponential backoff and jitter, a bounded number of times. A `Retry-After` header (seconds or
an HTTP date) is honoured when a server sends one; archive.org never does, which is why its 429s
also pause the whole endpoint class (see `limits`). A temporary DNS failure (EAI_AGAIN) is
retried too; NXDOMAIN, TLS and policy failures are not: another try would say the same thing.
"""

from __future__ import annotations

import email.utils
import time

import tenacity

from .config import RetryConfig
from .errors import BlockedRequest, RequestFailed
from .status import UrlStatus

RETRYABLE = frozenset(
    {UrlStatus.TIMEOUT, UrlStatus.CONNECTION_ERROR, UrlStatus.RATE_LIMITED, UrlStatus.SERVER_ERROR}
)
MAX_RETRY_AFTER_SECONDS = 300.0


class RetryableAnswer(RequestFailed):
    """A complete answer (429, 5xx) that deserves another try; carries Retry-After if any."""

    def __init__(self, status, message, http_status, retry_after: float | None):
        super().__init__(status, message, http_status)
        self.retry_after = retry_after


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, BlockedRequest) or getattr(exc, "sent", True) is False:
        return False  # refused by policy, or answered from what this run already knows
    if (getattr(exc, "retry_after", None) or 0) > MAX_RETRY_AFTER_SECONDS:
        return False  # a server asking for a long rest gets it: we come back next run
    if getattr(exc, "temporary", False):
        return True  # a DNS failure that may pass (EAI_AGAIN): our network, not the host
    return isinstance(exc, RequestFailed) and exc.status in RETRYABLE


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def policy(config: RetryConfig) -> tenacity.AsyncRetrying:
    """A fresh tenacity controller for one logical request."""
    backoff = tenacity.wait_exponential_jitter(
        multiplier=config.initial_wait_seconds, max=config.max_wait_seconds,
        jitter=config.initial_wait_seconds,
    )

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_SECONDS)
        return backoff(state)

    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(config.attempts),
        wait=wait,
        retry=tenacity.retry_if_exception(is_retryable),
        reraise=True,
    )
