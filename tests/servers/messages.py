"""The plain data the test servers pass around: a parsed request, an answer, a log record.

Kept apart from `base.py` so that `faults.py` can build answers without importing the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["Request", "RequestRecord", "Response"]


@dataclass(frozen=True)
class RequestRecord:
    """One line of a server's request log."""

    method: str
    path: str  # the raw request target, exactly as received (percent-encoding kept)
    endpoint_class: str
    status: int  # 0 when the connection was dropped without an answer
    time: float  # time.monotonic() when the request arrived


@dataclass
class Request:
    """A parsed request. `target` is raw: never percent-decoded."""

    method: str
    target: str
    headers: Message
    body: bytes = b""
    received: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def params(self) -> list[tuple[str, str]]:
        """Decoded query parameters, in order, repeats kept."""
        return parse_qsl(self.query, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.params() if k == name), default)


@dataclass
class Response:
    """What a server answers. Status 0 means: drop the connection without any answer.

    `stream`, when set, takes over the socket (for slow, short or broken answers); it is called
    with the request handler and a flag telling whether the request was HEAD.
    """

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "text/html; charset=utf-8"
    stream: Callable[[Any, bool], None] | None = None  # (base.Handler, is_head)
