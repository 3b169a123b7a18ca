"""Fault injection shared by the test servers: scripted failures, rate limits, latency, refusals.

The Wayback Machine answers 429 without Retry-After past about 30 CDX or 600 replay requests a
minute, draws 429s past 3 to 4 concurrent downloads, and under load drops connections outright.
The client must survive all of that, so every test server can be told to behave the same way,
per endpoint class (a label such as "replay" or "cdx" that the server gives each request).
All state here is guarded by one lock: handler threads call `admit`/`release` concurrently.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable

from .messages import Response

__all__ = ["FaultInjection", "SlidingWindow"]

TOO_MANY = b"<html><body><h1>429 Too Many Requests</h1></body></html>"


class SlidingWindow:
    """At most `limit` admitted requests in any `window` seconds. Rejected ones do not count."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        while self._times and now - self._times[0] >= self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


class FaultInjection:
    """Mixin for BackgroundServer. Faults are checked in this order for each request:
    refusal, scripted failure (fail_next), lasting fault (always), concurrency limit, rate limit."""

    def __init__(self) -> None:
        self._fault_lock = threading.Lock()
        self._scripted: dict[str, deque[Response]] = {}
        self._windows: dict[str, SlidingWindow] = {}
        self._concurrency: dict[str, int] = {}
        self._in_flight: Counter[str] = Counter()
        self._refusing = False
        self._always: dict[str, Response] = {}
        self.latency = 0.0
        self.latency_by_class: dict[str, float] = {}

    def fail_next(
        self,
        endpoint_class: str,
        status: int = 429,
        count: int = 1,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """The next `count` requests of that class get this answer instead of the real one.
        Status 0 drops the connection (TCP RST) without answering."""
        response = Response(status, body, dict(headers or {}))
        with self._fault_lock:
            self._scripted.setdefault(endpoint_class, deque()).extend([response] * count)

    def always(self, endpoint_class: str | Iterable[str], status: int = 429,
               headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        """A lasting fault mode: every request of that class gets this answer until
        `clear_faults()` (an overloaded archive, an empty CDX page, an outage).
        Status 0 drops the connection (TCP RST) without answering."""
        classes = [endpoint_class] if isinstance(endpoint_class, str) else list(endpoint_class)
        with self._fault_lock:
            for name in classes:
                self._always[name] = Response(status, body, dict(headers or {}))

    def rate_limit(
        self, endpoint_class: str | Iterable[str], per_minute: int, window: float = 60.0
    ) -> None:
        """Sliding-window limit: past `per_minute` requests within `window` seconds, answer 429
        without Retry-After. Several classes given together share one pool (as CDX and TimeMap
        do at archive.org). `clear_faults()` removes limits."""
        classes = [endpoint_class] if isinstance(endpoint_class, str) else list(endpoint_class)
        pool = SlidingWindow(per_minute, window)
        with self._fault_lock:
            for name in classes:
                self._windows[name] = pool

    def concurrency_limit(self, endpoint_class: str, n: int) -> None:
        """More than `n` requests of that class in flight at once get 429."""
        with self._fault_lock:
            self._concurrency[endpoint_class] = n

    def refuse_connections(self, refuse: bool = True) -> None:
        """While on, every request is answered by dropping the connection (TCP RST)."""
        with self._fault_lock:
            self._refusing = refuse

    def clear_faults(self) -> None:
        """Forget scripted failures, limits, latency and refusal."""
        with self._fault_lock:
            self._scripted.clear()
            self._windows.clear()
            self._concurrency.clear()
            self._always.clear()
            self._refusing = False
        self.latency = 0.0
        self.latency_by_class = {}

    def latency_for(self, endpoint_class: str) -> float:
        return self.latency_by_class.get(endpoint_class, self.latency)

    def admit(self, endpoint_class: str) -> Response | None:
        """None if the request may proceed (then call `release`), else the fault to answer."""
        with self._fault_lock:
            if self._refusing:
                return Response(0)
            scripted = self._scripted.get(endpoint_class)
            if scripted:
                return scripted.popleft()
            if endpoint_class in self._always:
                return self._always[endpoint_class]
            cap = self._concurrency.get(endpoint_class)
            if cap is not None and self._in_flight[endpoint_class] >= cap:
                return Response(429, TOO_MANY)
            window = self._windows.get(endpoint_class)
            if window is not None and not window.allow(time.monotonic()):
                return Response(429, TOO_MANY)
            self._in_flight[endpoint_class] += 1
            return None

    def release(self, endpoint_class: str) -> None:
        with self._fault_lock:
            self._in_flight[endpoint_class] -= 1
