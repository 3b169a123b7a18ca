"""The one HTTP path: every request preserver makes goes through `HttpClient.get`.

It owns, in order: the URL's scheme (http/https only), the per-class or per-host limiter, the
retry policy, a total deadline, a byte cap on the decoded body, redirects followed by hand
(each hop goes through the same checks), and the mapping of every answer to a `Response` or
a `RequestFailed`. Hosts that fail DNS or refuse connections are remembered for the run, so
their other URLs cost no request (hkcnews.com is 49,118 originals on one dead host).

The connection underneath (private addresses refused after DNS resolution, proxies, httpx
failures mapped to a `UrlStatus`) is `network.py`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from . import retry
from .config import Config
from .errors import BlockedRequest, RequestFailed
from .limits import HostLimiters, RateLimiter
from .network import classify, open_client
from .status import UrlStatus
from .urls import encode_once, rebase

ARCHIVE_CLASSES = ("cdx", "replay", "availability", "save")
_REDIRECTS = (301, 302, 303, 307, 308)
CONFIRMING_REFUSALS = 2  # refusals by one origin before it counts as down for the run
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass
class Response:
    """A complete answer: final status, headers, the (capped) decoded body."""

    url: str  # the URL that gave this answer, after redirects
    status_code: int
    headers: httpx.Headers
    body: bytes = b""
    redirects: list[str] = field(default_factory=list)  # each Location followed, in order
    elapsed_ms: int = 0
    attempts: int = 1
    too_large: bool = False  # the body passed max_bytes; `body` is empty then

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def is_memento(self) -> bool:
        """A capture replayed (it carries `Memento-Datetime`): its status is the one the site
        gave when it was captured (an archived 429 or 503 included), not the server's own."""
        return "memento-datetime" in self.headers

    @property
    def is_archive_trouble(self) -> bool:
        """A 429 or 5xx that is no capture: the server's own overload or outage, worth a
        retry, and from the archive no verdict about the URL."""
        return (self.status_code == 429 or self.status_code >= 500) and not self.is_memento


@dataclass(frozen=True)
class _Ask:
    """What to send, apart from the URL."""

    method: str
    endpoint: str  # an archive class or "live": which limiter paces it
    max_bytes: int
    read_body: bool
    data: dict | None = None
    headers: dict | None = None


class HttpClient:
    """Shared by the whole run; use as `async with HttpClient(config) as client`."""

    def __init__(self, config: Config):
        self.config = config
        archive = config.archive
        self.limiters = {
            "cdx": RateLimiter("CDX", archive.cdx_per_minute, 1, archive.pause_after_429_seconds,
                               archive.max_429_per_class),
            "replay": RateLimiter("replay", archive.replay_per_minute, archive.replay_concurrency,
                                  archive.pause_after_429_seconds, archive.max_429_per_class),
            "availability": RateLimiter("availability", archive.availability_per_minute, 1,
                                        archive.pause_after_429_seconds, archive.max_429_per_class),
            "save": RateLimiter("save", archive.save_per_minute, 1,
                                archive.pause_after_429_seconds, archive.max_429_per_class),
        }
        self.live_limiters = HostLimiters(config.live.per_host_per_second)
        self.down_hosts: dict[str, RequestFailed] = {}
        self.answered: set[str] = set()  # origins that gave an HTTP answer this run
        self._refusals: dict[str, int] = {}
        self._dns_failures: dict[str, int] = {}
        self._probes: dict[str, asyncio.Event] = {}
        self.requests_sent = 0
        self._client, self._backend = open_client(config)

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._client.aclose()

    async def get(self, url: str, endpoint: str = "live", *, follow_redirects: bool = True,
                  max_bytes: int = 2_000_000, read_body: bool = True) -> Response:
        """GET `url`: see `request`."""
        return await self.request(_Ask("GET", endpoint, max_bytes, read_body), url,
                                  follow_redirects)

    async def post(self, url: str, endpoint: str, data: dict, headers: dict) -> Response:
        """POST a form (Save Page Now); never retried blindly past a 429: see `request`."""
        return await self.request(_Ask("POST", endpoint, 2_000_000, True, data, headers), url,
                                  follow_redirects=False)

    async def request(self, ask: _Ask, url: str, follow_redirects: bool = True) -> Response:
        """Send one request politely; a Response for any HTTP answer, RequestFailed otherwise.

        429 and 5xx answers are retried; after the last try the final answer is returned (its
        status code tells what happened). `ask.endpoint` is an archive class or "live".
        Header values (an Authorization) never reach a message or the ledger.
        """
        if ask.endpoint == "live":
            url = rebase(url, self.config.live.origins)
        url = encode_once(url)
        attempts = 0
        started = time.monotonic()
        try:
            async for attempt in retry.policy(self.config.retry):
                with attempt:
                    attempts += 1
                    response = await self._follow(url, ask, follow_redirects)
        except retry.RetryableAnswer as exc:
            response = exc.response
        except RequestFailed as exc:
            exc.attempts = attempts - (0 if getattr(exc, "sent", True) else 1)
            raise
        response.attempts = attempts
        response.elapsed_ms = int((time.monotonic() - started) * 1000)
        return response

    async def _follow(self, url: str, ask: _Ask, follow_redirects: bool) -> Response:
        redirects: list[str] = []
        while True:
            response = await self._once(url, ask)
            location = response.headers.get("location")
            if not (follow_redirects and response.status_code in _REDIRECTS and location):
                break
            if len(redirects) >= self.config.live.max_redirects:
                raise RequestFailed(UrlStatus.TOO_MANY_REDIRECTS,
                                    f"more than {len(redirects)} redirects; last to {location}")
            url = encode_once(urljoin(url, location))
            redirects.append(url)
        response.redirects = redirects
        if response.is_archive_trouble:  # an archived 429/5xx is an answer: no retry
            raise _retryable(response)
        return response

    async def _once(self, url: str, ask: _Ask) -> Response:
        endpoint = ask.endpoint
        origin = _origin_of(url)
        async with self._first_contact(origin):
            self._raise_if_down(origin)
            limiter = self._limiter(endpoint, origin)
            async with limiter.slot(precheck=lambda: self._raise_if_down(origin)):
                self.requests_sent += 1
                strike = limiter.strikes  # a burst of 429s for requests sent now: one strike
                try:
                    response = await self._send(url, ask)
                except RequestFailed as exc:
                    self._note_failure(origin, limiter, exc, strike)
                    raise
        self.answered.add(origin)
        self._dns_failures.pop(origin, None)  # its name resolves again: probing is over
        if endpoint in ARCHIVE_CLASSES:
            if response.status_code == 429 and not response.is_memento:
                limiter.penalise("HTTP 429", strike)
            else:
                limiter.note_success()
        return response

    @contextlib.asynccontextmanager
    async def _first_contact(self, origin: str):
        """Until an origin has answered once, one request probes it and the others wait for
        the outcome: a dead host costs one probe, not one per worker. While its name fails
        to resolve for a while (EAI_AGAIN), the probing goes on one request at a time, so
        the origin costs its retry budget in all, then is given up for the run."""
        while (probe := self._probes.get(origin)) is not None and not probe.is_set():
            await probe.wait()
        if probe is not None:
            yield
            return
        probe = self._probes[origin] = asyncio.Event()
        try:
            yield
        finally:
            if self._dns_failures.get(origin) and origin not in self.down_hosts:
                del self._probes[origin]  # not settled: the next request probes again
            probe.set()

    async def _send(self, url: str, ask: _Ask) -> Response:
        timeout = self._timeout(ask.endpoint)
        deadline = timeout * 3
        try:
            async with asyncio.timeout(deadline):
                async with self._client.stream(ask.method, url, data=ask.data,
                                               headers=ask.headers, timeout=timeout) as r:
                    body, too_large = b"", _declared_too_large(r, ask.max_bytes)
                    if ask.read_body and not too_large:
                        body, too_large = await _read_capped(r, ask.max_bytes)
                    return Response(str(r.url), r.status_code, r.headers, body,
                                    too_large=too_large)
        except TimeoutError:
            message = f"no complete answer within {deadline:g} s"
            raise RequestFailed(UrlStatus.TIMEOUT, message) from None
        except httpx.HTTPError as exc:
            raise classify(exc) from exc

    @property
    def offline(self) -> bool:
        """Requests went out and nothing answered: no HTTP answer, no name resolved."""
        return bool(self.requests_sent) and not self.answered \
            and not self._backend.resolver_answered

    def _raise_if_down(self, origin: str) -> None:
        down = self.down_hosts.get(origin)
        if down is not None:
            shortcut = RequestFailed(down.status, str(down))
            shortcut.sent = False  # no request left this machine for it
            shortcut.conclusive = getattr(down, "conclusive", False)
            raise shortcut

    def _limiter(self, endpoint: str, origin: str) -> RateLimiter:
        if endpoint == "live":
            return self.live_limiters.for_host(origin)
        return self.limiters[endpoint]

    def _timeout(self, endpoint: str) -> float:
        live = endpoint == "live"
        return self.config.live.timeout_seconds if live else self.config.archive.timeout_seconds

    def _note_failure(self, origin: str, limiter: RateLimiter, exc: RequestFailed,
                      strike: int) -> None:
        """Remember origins that cannot be reached this run (their other URLs cost no
        request), and whether that is a verdict: NXDOMAIN from a working resolver, or
        refusals confirmed by a second try while the network answers elsewhere. A refused
        connection to the archive pauses its class instead (the archive refuses connections
        rather than answer 429 when it is loaded)."""
        if exc.status == UrlStatus.DNS_ERROR:
            # a temporary failure is retried with backoff first: one URL's tries, then the
            # origin waits for the next run
            failures = self._dns_failures[origin] = self._dns_failures.get(origin, 0) + 1
            if not getattr(exc, "temporary", False) or failures >= self.config.retry.attempts:
                self.down_hosts[origin] = _host_down(origin, exc)
        elif getattr(exc, "unreachable", False):
            self.down_hosts[origin] = _host_down(origin, exc)
        elif exc.status == UrlStatus.CONNECTION_ERROR and getattr(exc, "refused", False):
            if limiter in self.limiters.values():
                limiter.penalise("connection refused", strike)
                return
            refusals = self._refusals[origin] = self._refusals.get(origin, 0) + 1
            if refusals >= CONFIRMING_REFUSALS:
                exc.conclusive = bool(self.answered - {origin})
                self.down_hosts[origin] = _host_down(origin, exc)


def _origin_of(url: str) -> str:
    """scheme://host:port of an http(s) URL; refuses every other scheme."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RequestFailed(UrlStatus.INVALID, f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedRequest(UrlStatus.BLOCKED,
                             f"scheme {scheme or '(none)'!r} is not allowed: http(s) only")
    if not parts.hostname:
        raise RequestFailed(UrlStatus.INVALID, "URL has no host")
    return f"{scheme}://{parts.hostname.lower()}:{port or (443 if scheme == 'https' else 80)}"


def _declared_too_large(response: httpx.Response, max_bytes: int) -> bool:
    declared = response.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > max_bytes


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """Decoded body up to max_bytes; (b"", True) as soon as it passes the cap.

    gzip and deflate are decoded here, never more than the cap at a time: httpx's decoder
    inflates a whole network chunk at once, and 64 KiB of a gzip bomb is 64 MiB."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in _WBITS:
        return await _inflate_capped(response, _WBITS[encoding], max_bytes)
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False


async def _inflate_capped(response: httpx.Response, wbits: int, max_bytes: int):
    inflater = zlib.decompressobj(wbits)
    chunks, size = [], 0
    try:
        async for raw in response.aiter_raw():
            data = raw
            while data and size <= max_bytes:
                out = inflater.decompress(data, max_bytes + 1 - size)
                size += len(out)
                chunks.append(out)
                data = inflater.unconsumed_tail
            if size > max_bytes:
                return b"", True
    except zlib.error as exc:
        encoding = response.headers.get("content-encoding")
        raise RequestFailed(UrlStatus.CONNECTION_ERROR,
                            f"corrupt {encoding} body: {exc}") from None
    return b"".join(chunks), False


def _retryable(response: Response) -> retry.RetryableAnswer:
    status = UrlStatus.RATE_LIMITED if response.status_code == 429 else UrlStatus.SERVER_ERROR
    exc = retry.RetryableAnswer(status, f"HTTP {response.status_code}", response.status_code,
                                retry.parse_retry_after(response.headers.get("retry-after")))
    exc.response = response
    return exc


def _host_down(origin: str, exc: RequestFailed) -> RequestFailed:
    down = RequestFailed(exc.status, f"{exc} (not retried: {origin} was unreachable earlier "
                                     "in this run)")
    down.first_error = str(exc)
    down.conclusive = getattr(exc, "conclusive", False)
    return down


