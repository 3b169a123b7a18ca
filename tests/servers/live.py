"""A scriptable stand-in for "the live web": the original sites the articles and images came from.

The project re-checks original URLs and downloads images, and the live web is hostile in ways
that must not hang or crash a long run: redirect loops, servers that stall or drip bytes,
truncated bodies, connection resets, gzip bombs, flaky 503s. Each helper here scripts one of
those for one exact raw request target (query included, percent-encoding as the client sent it).
Every request is classified as endpoint class "live", so `faults.py` applies here too.
"""

from __future__ import annotations

import functools
import itertools
import threading
import zlib
from collections.abc import Callable

from .base import BackgroundServer, Handler
from .messages import Request, Response

__all__ = ["LiveSite", "gzip_zeros"]

HTML = "text/html; charset=utf-8"
BINARY = "application/octet-stream"


@functools.lru_cache(maxsize=8)
def gzip_zeros(decoded_bytes: int) -> bytes:
    """A gzip stream of `decoded_bytes` zeros, compressed 1 MiB at a time (about 1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = memoryview(bytes(1 << 20))
    parts = []
    for start in range(0, decoded_bytes, len(block)):
        parts.append(compressor.compress(block[: min(len(block), decoded_bytes - start)]))
    parts.append(compressor.flush())
    return b"".join(parts)


class LiveSite(BackgroundServer):
    """Answers only the paths it was told about; everything else is 404."""

    def __init__(self) -> None:
        super().__init__()
        self._routes: dict[str, Callable[[], Response]] = {}
        self._routes_lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.base_url + path

    def classify(self, request: Request) -> str:
        return "live"

    def handle(self, request: Request) -> Response:
        with self._routes_lock:
            answer = self._routes.get(request.target)
        return answer() if answer else Response(404, b"<html><body>Not Found</body></html>")

    def _set(self, path: str, answer: Callable[[], Response]) -> None:
        with self._routes_lock:
            self._routes[path] = answer

    # -- plain answers -----------------------------------------------------------------------

    def route(
        self,
        path: str,
        status: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str | None = HTML,
    ) -> None:
        response = Response(status, body, dict(headers or {}), content_type)
        self._set(path, lambda: response)

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        """`to` goes into Location as given (relative or absolute)."""
        self.route(path, status, headers={"Location": to})

    def redirect_loop(self, path: str) -> str:
        """path -> other -> path -> ... (302s); returns the other path."""
        other = path + ("&" if "?" in path else "?") + "loop=1"
        self.redirect(path, other, 302)
        self.redirect(other, path, 302)
        return other

    def gzip_bomb(self, path: str, decoded_bytes: int) -> None:
        """Content-Encoding: gzip; a small body that inflates to `decoded_bytes` zeros."""
        self.route(path, body=gzip_zeros(decoded_bytes), headers={"Content-Encoding": "gzip"})

    def fail_times(
        self, path: str, status: int, times: int, then_status: int = 200, then_body: bytes = b""
    ) -> None:
        """The first `times` requests get `status`, later ones `then_status` and `then_body`."""
        seen = itertools.count()  # next() on a count is atomic under the GIL
        failure, success = Response(status), Response(then_status, then_body)
        self._set(path, lambda: failure if next(seen) < times else success)

    # -- broken answers (take over the socket) -----------------------------------------------

    def _stream(self, path: str, stream: Callable[[Handler, bool], None]) -> None:
        response = Response(200, content_type=BINARY, stream=stream)
        self._set(path, lambda: response)

    def stall(self, path: str, seconds: float, body: bytes = b"") -> None:
        """Accept the request, send nothing for `seconds`, then answer 200 with `body`."""

        def stream(handler: Handler, head: bool) -> None:
            if self.pause(seconds):
                handler.close_connection = True
            else:
                handler.deliver(Response(200, body, content_type=BINARY), head)

        self._stream(path, stream)

    def drip(self, path: str, bytes_per_second: int, total: int | None = None) -> None:
        """Headers at once, then the body at `bytes_per_second`: `total` bytes (with that
        Content-Length) or, when None, forever (no Content-Length, Connection: close)."""
        chunk = max(1, bytes_per_second // 20)

        def stream(handler: Handler, head: bool) -> None:
            headers = {} if total is not None else {"Connection": "close"}
            handler.send_head(Response(200, headers=headers, content_type=BINARY), total)
            sent = 0
            while not head and (total is None or sent < total):
                size = chunk if total is None else min(chunk, total - sent)
                if self.pause(size / bytes_per_second):
                    handler.close_connection = True
                    return
                handler.wfile.write(b"x" * size)
                sent += size

        self._stream(path, stream)

    def short_body(self, path: str, declared: int, actual: int) -> None:
        """Content-Length: `declared`, but only `actual` bytes, then a normal close (FIN)."""

        def stream(handler: Handler, head: bool) -> None:
            handler.send_head(Response(200, content_type=BINARY), declared)
            if not head:
                handler.wfile.write(b"x" * actual)
            handler.close_connection = True

        self._stream(path, stream)

    def reset_mid_body(self, path: str, declared: int = 65536, sent: int = 1024) -> None:
        """Headers and `sent` of `declared` body bytes, a 0.1 s pause, then a TCP RST."""

        def stream(handler: Handler, head: bool) -> None:
            handler.send_head(Response(200, content_type=BINARY), declared)
            if not head:
                handler.wfile.write(b"x" * sent)
            self.pause(0.1)
            handler.reset_connection()

        self._stream(path, stream)
