"""Local HTTP servers that stand in for the Wayback Machine and the live web in tests.

`WaybackArchive` imitates web.archive.org's replay, CDX, availability, TimeMap and Save Page Now
endpoints; `LiveSite` scripts the original sites, including their failures. Both are real
HTTP/1.1 servers on 127.0.0.1 (see `base.py`) with shared fault injection (see `faults.py`).
"""

from .base import BackgroundServer, Handler
from .live import LiveSite
from .messages import Request, RequestRecord, Response
from .model import Capture, url_key
from .wayback import WaybackArchive

__all__ = [
    "BackgroundServer",
    "Capture",
    "Handler",
    "LiveSite",
    "Request",
    "RequestRecord",
    "Response",
    "WaybackArchive",
    "url_key",
]
