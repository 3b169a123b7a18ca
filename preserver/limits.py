"""Politeness: one limiter per archive endpoint class, one per live host.

The Wayback Machine sends no Retry-After and firewall-blocks an IP for an hour (doubling) when a
client keeps sending after 429s. So a limiter here is shared by the whole process for its class
(CDX, replay, availability, save), spaces request starts evenly below the configured rate, caps
concurrency, and when any request of the class draws a 429 or a refused connection it pauses
the *whole class*, twice as long each time, then lets one request probe before the others
follow, and the class keeps 80% of its former pace and one connection fewer for the rest of the
run (what was configured was evidently too much: the next window should not draw another 429;
the archive tolerates "3 to 4" parallel downloads, so 4 become 3). After `max_strikes` such
signals the class is stopped for the run: every later request fails at once with
`rate_limited` instead of risking a block.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from .errors import RequestFailed
from .status import UrlStatus

SLOWDOWN = 0.8  # after a 429 a class keeps this fraction of its pace, for the rest of the run
CATCH_UP = 3  # turns missed by a busy moment that may still be taken (so at most 3 at once)


class RateLimiter:
    """Even spacing (requests per minute), a concurrency cap, pause-and-stop on 429s."""

    def __init__(
        self,
        name: str,
        per_minute: float,
        concurrency: int = 1,
        pause_seconds: float = 0.0,
        max_strikes: int | None = None,
    ):
        self.name = name
        self.interval = 60.0 / per_minute
        self.pause_seconds = pause_seconds
        self.max_strikes = max_strikes
        self.strikes = 0
        self.stopped_reason: str | None = None
        self.requests = 0
        self.concurrency = concurrency
        self._retire = 0  # permits to keep, not give back, when their request ends
        self._semaphore = asyncio.Semaphore(concurrency)
        self._lock = asyncio.Lock()
        self._next_start = 0.0
        self._paused_until = 0.0
        self._probing = False
        self._probe = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def slot(self, precheck=None):
        """Hold one of the class's slots for the duration of a request.

        `precheck` (a callable that may raise) runs each time we are about to take a turn, so
        a request whose host died while it waited fails at once instead of being sent.
        """
        await self._semaphore.acquire()
        try:
            await self._wait_turn(precheck)
            if not self._probing:
                yield
                return
            async with self._probe:  # after a 429: one request at a time until one succeeds
                await self._wait_turn(precheck)  # the probe before us may have paused us more
                yield
        finally:
            if self._retire:  # one connection fewer from now on
                self._retire -= 1
            else:
                self._semaphore.release()

    async def _wait_turn(self, precheck) -> None:
        """Wait until the next start is due. Turns are not reserved ahead: a waiter that
        wakes to find its class stopped or its host dead has spent nothing. Starts keep to a
        grid of `interval`: over any window of W seconds at most W / interval + CATCH_UP."""
        while True:
            async with self._lock:
                self._raise_if_stopped()
                if precheck:
                    precheck()
                now = time.monotonic()
                start = max(self._next_start, self._paused_until)
                if start <= now:
                    # on a grid: turns taken a little late (a busy event loop) do not push
                    # every later turn back; after an idle spell the grid starts anew
                    late = now - start < self.interval * CATCH_UP
                    self._next_start = (start if late else now) + self.interval
                    self.requests += 1
                    return
            await asyncio.sleep(start - now)

    def _raise_if_stopped(self) -> None:
        if self.stopped_reason:
            stopped = RequestFailed(UrlStatus.RATE_LIMITED, self.stopped_reason)
            stopped.sent = False
            stopped.class_stopped = True  # nothing asked: the URL stays due, nothing recorded
            raise stopped

    def penalise(self, why: str, sent_at_strike: int | None = None) -> None:
        """A 429 or refused connection: pause the whole class, twice as long each time, slow
        it down and take away one connection; stop it after too many.

        One overload is one strike: a signal that arrives while the class is paused, or for a
        request sent before the latest strike (`sent_at_strike`, the count when it was sent:
        four downloads in flight that all draw 429), adds nothing."""
        if self.stopped_reason or time.monotonic() < self._paused_until:
            return
        if sent_at_strike is not None and sent_at_strike != self.strikes:
            return
        self.strikes += 1
        self.interval /= SLOWDOWN
        if self.concurrency > 1:
            self.concurrency -= 1
            self._retire += 1
        self._probing = True
        pause = self.pause_seconds * 2 ** (self.strikes - 1)
        self._paused_until = max(self._paused_until, time.monotonic() + pause)
        if self.max_strikes is not None and self.strikes >= self.max_strikes:
            self.stopped_reason = (
                f"stopped {self.name} requests for this run after {self.strikes} signals "
                f"to slow down ({why}); continuing would risk an IP block"
            )

    def note_success(self) -> None:
        """An answer that was not a 429: back to full concurrency (the pause length and the
        count towards stopping stay: repeated trouble in one run still stops the class)."""
        self._probing = False


class HostLimiters:
    """One RateLimiter per live host, created on first use."""

    def __init__(self, per_second: float, concurrency: int = 2):
        self.per_minute = per_second * 60.0
        self.concurrency = concurrency
        self._by_host: dict[str, RateLimiter] = {}

    def for_host(self, host: str) -> RateLimiter:
        limiter = self._by_host.get(host)
        if limiter is None:
            limiter = RateLimiter(f"live:{host}", self.per_minute, self.concurrency)
            self._by_host[host] = limiter
        return limiter
