"""How a connection is made: the private-address rule, proxies, connection failures.

It owns the httpx client underneath `HttpClient`: a network backend that resolves each host
itself and refuses non-public addresses (checked after DNS resolution for every connection,
so redirects are covered too), the proxies, and the mapping of an httpx failure to a
`UrlStatus`. What is sent, how fast, how often and to which origin is `client.py`'s.

Proxies are picked as httpx picks them by default (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,
NO_PROXY), with `[network] proxy` in place of the environment's HTTP(S)_PROXY. A proxy is
configured, so trusted; the target is not: before a request goes through a proxy its host is
resolved here and refused if it is not public, exactly as for a direct connection.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

import certifi
import httpcore
import httpx

from . import USER_AGENT
from .config import Config
from .errors import BlockedRequest, ConfigError, RequestFailed
from .status import UrlStatus

_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}
# getaddrinfo's "no such host" answers (NXDOMAIN, or a name with no address)
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def open_client(config: Config) -> tuple[httpx.AsyncClient, SafeNetworkBackend]:
    """The httpx client every request goes through, and its network backend (which knows
    whether a name resolved this run)."""
    archive = config.archive
    configured = [archive.base_url, archive.availability_url, *config.live.origins.values()]
    trusted = frozenset(_host_port(u) for u in configured)
    proxies = proxy_map(config)
    backend = SafeNetworkBackend(config.security.allow_private_addresses, trusted | {
        _host_port(u) for u in proxies.values() if u is not None})
    # a proxy is trusted to connect to, not as a target
    backend.trusted_targets = trusted
    client = httpx.AsyncClient(
        transport=_transport(backend),
        mounts={pattern: None if url is None else _ProxiedTransport(url, backend)
                for pattern, url in proxies.items()},
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
        timeout=httpx.Timeout(config.live.timeout_seconds),
    )
    return client, backend


class SafeNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses non-public addresses, then connects to the address."""

    def __init__(self, allow_private: bool, trusted: frozenset[tuple[str, int]]):
        self.allow_private = allow_private
        self.trusted = trusted  # (host, port) of the configured archive and stand-ins
        self.resolver_answered = False  # a name resolved this run: NXDOMAIN can be believed
        self.trusted_targets = trusted  # what a request may target unchecked via a proxy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = await self._resolve(host, port)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def check_target(self, host: str, port: int) -> None:
        """The private-address rule for a target reached through a proxy (which resolves
        the name itself): resolve it here and refuse it as a direct connection would be.
        Trusted targets, or all with allow_private_addresses, need no lookup."""
        if not (self.allow_private or (host.lower(), port) in self.trusted_targets):
            await self._resolve(host, port, self.trusted_targets)

    async def _resolve(self, host: str, port: int, trusted: frozenset | None = None) -> str:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise self._dns_failure(host, exc) from None
        if not _is_ip_literal(host):
            self.resolver_answered = True
        addresses = [info[4][0] for info in infos]
        trusted = self.trusted if trusted is None else trusted
        if not (self.allow_private or (host.lower(), port) in trusted):
            for address in addresses:
                if not ipaddress.ip_address(address.split("%")[0]).is_global:
                    raise BlockedRequest(
                        UrlStatus.BLOCKED,
                        f"{host} resolves to non-public address {address}; "
                        "set [security] allow_private_addresses = true to allow it",
                    )
        return addresses[0]

    def _dns_failure(self, host: str, exc: socket.gaierror) -> RequestFailed:
        """NXDOMAIN from a resolver that answers other names is a verdict about the host;
        anything else (EAI_AGAIN, no resolver at all) is our network and worth a retry."""
        failed = RequestFailed(UrlStatus.DNS_ERROR, f"cannot resolve {host}: {exc.strerror}")
        nxdomain = exc.errno in _NO_SUCH_NAME
        failed.temporary = not nxdomain
        failed.conclusive = nxdomain and self.resolver_answered
        return failed

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise BlockedRequest(UrlStatus.BLOCKED, "unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _transport(backend: SafeNetworkBackend) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(retries=0)
    transport._pool = httpcore.AsyncConnectionPool(  # the only way to plug a network backend
        ssl_context=ssl.create_default_context(cafile=certifi.where()),
        max_connections=32,
        max_keepalive_connections=16,
        keepalive_expiry=5.0,
        network_backend=backend,
    )
    return transport


def proxy_map(config: Config) -> dict[str, str | None]:
    """URL pattern -> proxy URL (None: no proxy), as httpx builds it by default from the
    environment, with `[network] proxy` for http and https; only http(s) proxies."""
    from httpx._utils import get_environment_proxies  # what httpx's trust_env uses

    proxies = get_environment_proxies()
    if config.network.proxy:
        proxies.update({"http://": config.network.proxy, "https://": config.network.proxy})
    for pattern, url in proxies.items():
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"proxy {_without_password(url)!r} (for {pattern}) is not an "
                              "http(s) proxy; only http and https proxies are supported")
    return proxies


class _ProxiedTransport(httpx.AsyncBaseTransport):
    """Sends through an http(s) proxy (CONNECT for https targets), after checking the
    target against the private-address rule; the connection to the proxy goes through the
    same network backend (the proxy's own address is trusted: it is configured)."""

    def __init__(self, proxy_url: str, backend: SafeNetworkBackend):
        proxy = httpx.Proxy(proxy_url)
        self._backend = backend
        self._inner = httpx.AsyncHTTPTransport(retries=0)
        self._inner._pool = httpcore.AsyncHTTPProxy(  # as httpx builds it, with our backend
            proxy_url=httpcore.URL(scheme=proxy.url.raw_scheme, host=proxy.url.raw_host,
                                   port=proxy.url.port, target=proxy.url.raw_path),
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            max_connections=32,
            max_keepalive_connections=16,
            keepalive_expiry=5.0,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        await self._backend.check_target(url.raw_host.decode("ascii"), port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(f"{parts.password}@", "***@") if parts.password else url


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


def classify(exc: httpx.HTTPError) -> RequestFailed:
    """Map an httpx failure to a RequestFailed with the right UrlStatus."""
    chain = _causes(exc)
    if isinstance(exc, httpx.TimeoutException):
        return RequestFailed(UrlStatus.TIMEOUT, f"timed out ({type(exc).__name__})")
    if any(isinstance(c, ssl.SSLError) for c in chain):
        return RequestFailed(UrlStatus.TLS_ERROR, f"TLS failure: {_message(exc)}")
    if any(isinstance(c, socket.gaierror) for c in chain):
        return RequestFailed(UrlStatus.DNS_ERROR, f"cannot resolve host: {_message(exc)}")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return BlockedRequest(UrlStatus.BLOCKED, f"unsupported scheme: {_message(exc)}")
    if isinstance(exc, httpx.InvalidURL):
        return RequestFailed(UrlStatus.INVALID, f"invalid URL: {_message(exc)}")
    failed = RequestFailed(UrlStatus.CONNECTION_ERROR, f"connection failed: {_message(exc)}")
    errnos = {getattr(c, "errno", None) for c in chain}
    failed.refused = errno.ECONNREFUSED in errnos or isinstance(exc, httpx.ConnectError)
    failed.unreachable = bool(errnos & _UNREACHABLE_ERRNOS)
    return failed


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
