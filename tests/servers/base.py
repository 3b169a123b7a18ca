"""A tiny threaded HTTP server that tests can start, inspect and stop.

The project talks to two kinds of remote party, the Wayback Machine and the live web, and both
misbehave in ways a mock transport cannot show: slow sockets, dropped connections, keep-alive
reuse, raw percent-encoded request targets. So the test doubles are real HTTP servers on
127.0.0.1. This module holds what they share: request parsing that keeps the raw request target,
HTTP/1.1 responses with exact Content-Length, HEAD handled like GET, a thread-safe request log,
and the fault-injection hooks from `faults.py`. Subclasses only classify and answer requests.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import struct
import sys
import threading
import traceback
from collections import Counter

from .faults import FaultInjection
from .messages import Request, RequestRecord, Response

__all__ = ["BackgroundServer", "Request", "RequestRecord", "Response"]


def raw_target(path: str) -> str:
    """http.server decodes the request line as Latin-1; undo that so raw UTF-8 reads as text."""
    try:
        return path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return path


class Handler(http.server.BaseHTTPRequestHandler):
    """Parses each request, hands it to the owning BackgroundServer and writes the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "TestServer/1.0"
    sys_version = ""
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.owner.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.owner.track(self.connection, add=False)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: no log lines on stderr."""

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, raw_target(self.path), self.headers, body)
        self.server.owner.serve(request, self)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_GET

    def deliver(self, response: Response, head: bool) -> None:
        if response.status == 0:
            self.reset_connection()
        elif response.stream is not None:
            response.stream(self, head)
        else:
            self.send_head(response, len(response.body))
            if not head:
                self.wfile.write(response.body)

    def send_head(self, response: Response, content_length: int | None) -> None:
        """Status line and headers; no Content-Length header when content_length is None."""
        self.send_response(response.status)
        custom = {name.lower() for name in response.headers}
        if response.content_type and "content-type" not in custom:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if content_length is not None:
            self.send_header("Content-Length", str(content_length))
        self.end_headers()

    def reset_connection(self) -> None:
        """Close with a TCP RST (SO_LINGER 0): the client sees 'connection reset', no answer."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the socket only really closes once its file objects are gone
        self.connection.close()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never wait for stalled or dripping handlers
    request_queue_size = 128

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), which can hang on a reverse DNS lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: object, client_address: object) -> None:
        self.owner.record_error()


class BackgroundServer(FaultInjection):
    """An HTTP/1.1 server on 127.0.0.1:<free port>, run from a daemon thread.

    Subclasses override `classify(request) -> str` and `handle(request) -> Response`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._log: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self.errors: list[str] = []  # tracebacks of unexpected handler exceptions

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BackgroundServer:
        """Listen on a fresh free port. After stop(), that port refuses connections."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        self._port = self._httpd.server_address[1]
        self._httpd.owner = self
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The listening port; still known after stop() (requests to it are then refused)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what subclasses provide -------------------------------------------------------------

    def classify(self, request: Request) -> str:
        return "default"

    def handle(self, request: Request) -> Response:
        return Response(404, b"<html><body>Not Found</body></html>")

    # -- request flow ------------------------------------------------------------------------

    def serve(self, request: Request, handler: Handler) -> None:
        endpoint_class = self.classify(request)
        fault = self.admit(endpoint_class)
        try:
            if fault is None or fault.status != 0:
                self.pause(self.latency_for(endpoint_class))
            response = fault or self._answer(request)
            self._record(request, endpoint_class, response.status)
            handler.deliver(response, head=request.method == "HEAD")
        finally:
            if fault is None:
                self.release(endpoint_class)

    def _answer(self, request: Request) -> Response:
        try:
            return self.handle(request)
        except Exception:
            self.errors.append(traceback.format_exc())
            return Response(500, b"<html><body>Internal Server Error</body></html>")

    def pause(self, seconds: float) -> bool:
        """Sleep, but wake at stop(). Returns True if the server is stopping."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def record_error(self) -> None:
        """Called for exceptions escaping a handler; a client hanging up is not an error."""
        if not isinstance(sys.exc_info()[1], OSError) and not self.stopping:
            self.errors.append(traceback.format_exc())

    # -- request log -------------------------------------------------------------------------

    def _record(self, request: Request, endpoint_class: str, status: int) -> None:
        record = RequestRecord(
            request.method, request.target, endpoint_class, status, request.received
        )
        with self._lock:
            self._log.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def counts(self) -> dict[str, int]:
        """endpoint_class -> number of requests seen (including refused and failed ones)."""
        return dict(Counter(r.endpoint_class for r in self.requests))

    def count_status(self, status: int) -> int:
        return sum(1 for r in self.requests if r.status == status)
