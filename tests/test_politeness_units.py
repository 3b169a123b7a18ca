"""Retry-After parsing, the retry decision, and the limiter's spacing, pause and stop."""

import asyncio
import email.utils
import time

import pytest

from preserver.errors import BlockedRequest, RequestFailed
from preserver.limits import CATCH_UP, RateLimiter
from preserver.retry import RetryableAnswer, is_retryable, parse_retry_after
from preserver.status import UrlStatus


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after(when) <= 31
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_what_is_retried():
    assert is_retryable(RequestFailed(UrlStatus.TIMEOUT, "t"))
    assert is_retryable(RetryableAnswer(UrlStatus.RATE_LIMITED, "429", 429, None))
    assert not is_retryable(RequestFailed(UrlStatus.DNS_ERROR, "d"))
    assert not is_retryable(BlockedRequest(UrlStatus.BLOCKED, "b"))
    # a server asking for a very long rest is not hammered: we come back next run
    assert not is_retryable(RetryableAnswer(UrlStatus.RATE_LIMITED, "429", 429, 3600))


def test_limiter_spaces_requests_evenly():
    async def main():
        limiter = RateLimiter("t", per_minute=600)  # one every 0.1 s
        starts = []
        for _ in range(5):
            async with limiter.slot():
                starts.append(time.monotonic())
        return starts

    starts = asyncio.run(main())
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 0.095 for gap in gaps), gaps


def test_a_late_turn_does_not_push_back_every_later_one():
    """A busy event loop wakes a waiter late; the pace must not drop by that lateness for
    every request after it (that cost preserver a fifth of its replay rate)."""
    async def main():
        limiter = RateLimiter("t", per_minute=6000)  # one every 10 ms
        limiter._next_start = time.monotonic() - 0.004  # this turn was due 4 ms ago
        due = limiter._next_start
        async with limiter.slot():
            pass
        return due, limiter._next_start

    due, next_start = asyncio.run(main())
    assert next_start == pytest.approx(due + 0.010)


def test_a_busy_loop_never_lets_the_limiter_exceed_its_rate():
    """Over any window of W seconds at most W / interval + CATCH_UP requests start, however
    late the loop wakes the waiters."""
    async def main():
        limiter = RateLimiter("t", per_minute=12000, concurrency=3)  # one every 5 ms
        starts = []

        async def request(k: int):
            async with limiter.slot():
                starts.append(time.monotonic())
                if k % 7 == 0:
                    time.sleep(0.008)  # block the whole loop, as a slow fsync would
                await asyncio.sleep(0.001)

        await asyncio.gather(*(request(k) for k in range(150)))
        return starts

    starts = sorted(asyncio.run(main()))
    for window in (0.02, 0.1, 0.3):
        most = max(sum(1 for t in starts if s <= t < s + window) for s in starts)
        assert most <= window / 0.005 + CATCH_UP, (window, most)


def test_a_429_slows_its_class_for_the_rest_of_the_run():
    limiter = RateLimiter("replay", per_minute=540, pause_seconds=0.0, max_strikes=5)
    limiter.penalise("HTTP 429")
    assert 60 / limiter.interval == pytest.approx(540 * 0.8)
    limiter.penalise("HTTP 429")
    assert 60 / limiter.interval == pytest.approx(540 * 0.8 * 0.8)


def test_a_429_takes_one_connection_away():
    """4 parallel downloads drew a 429: from then on at most 3 (never fewer than 1)."""
    async def main():
        limiter = RateLimiter("replay", per_minute=600000, concurrency=4, pause_seconds=0.0,
                              max_strikes=10)
        in_flight, peaks = 0, []

        async def request():
            nonlocal in_flight
            async with limiter.slot():
                in_flight += 1
                peaks[-1] = max(peaks[-1], in_flight)
                await asyncio.sleep(0.01)
                in_flight -= 1
            limiter.note_success()

        for _ in range(5):
            peaks.append(0)
            await asyncio.gather(*(request() for _ in range(8)))
            limiter.penalise("HTTP 429")
        return peaks, limiter.concurrency

    peaks, concurrency = asyncio.run(main())
    assert peaks == [4, 3, 2, 1, 1]  # one fewer after each 429, never below 1
    assert concurrency == 1


def test_a_429_pauses_the_whole_class_and_repeated_ones_stop_it():
    async def main():
        limiter = RateLimiter("CDX", per_minute=6000, pause_seconds=0.3, max_strikes=2)
        async with limiter.slot():
            pass
        limiter.penalise("HTTP 429")
        before = time.monotonic()
        async with limiter.slot():
            waited = time.monotonic() - before
        limiter.penalise("HTTP 429")
        with pytest.raises(RequestFailed) as info:
            async with limiter.slot():
                pass
        return waited, info.value

    waited, error = asyncio.run(main())
    assert waited >= 0.29
    assert error.status == UrlStatus.RATE_LIMITED
    assert "risk an IP block" in str(error)


def test_after_a_429_one_request_probes_before_the_others_follow():
    async def main():
        limiter = RateLimiter("replay", per_minute=60000, concurrency=3, pause_seconds=0.05,
                              max_strikes=10)
        limiter.penalise("HTTP 429")
        in_flight, peak = 0, 0

        async def request(ok: bool):
            nonlocal in_flight, peak
            async with limiter.slot():
                in_flight += 1
                peak = max(peak, in_flight)
                await asyncio.sleep(0.02)
                in_flight -= 1
            if ok:
                limiter.note_success()

        await asyncio.gather(*(request(True) for _ in range(3)))
        probing_peak = peak
        peak = 0
        await asyncio.gather(*(request(True) for _ in range(3)))
        return probing_peak, peak

    probing_peak, recovered_peak = asyncio.run(main())
    assert probing_peak == 1  # one at a time while the class is on probation
    assert recovered_peak == 2  # back to parallel once a request succeeded, one connection fewer


def test_shortcuts_are_not_retried_and_backoff_follows_the_config():
    import tenacity

    from preserver.config import RetryConfig
    from preserver.retry import policy

    known_dead = RequestFailed(UrlStatus.CONNECTION_ERROR, "unreachable earlier in this run")
    known_dead.sent = False
    assert not is_retryable(known_dead)
    waits = policy(RetryConfig(attempts=5, initial_wait_seconds=0.01, max_wait_seconds=0.05))
    state = tenacity.RetryCallState(waits, None, (), {})
    for attempt in range(1, 5):
        state.attempt_number = attempt
        state.outcome = tenacity.Future(attempt)
        state.outcome.set_exception(RequestFailed(UrlStatus.TIMEOUT, "t"))
        assert waits.wait(state) <= 0.05  # never the library's default 1 s of jitter
