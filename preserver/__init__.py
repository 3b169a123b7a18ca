"""preserver: keep a web archive honest.

Checks every article's Wayback snapshot and original URL, saves its images locally, and keeps
the whole history in a SQLite ledger. The library does the work; `preserver.cli` only parses
arguments and formats output.
"""

__version__ = "0.1.0"
USER_AGENT = (
    f"preserver/{__version__} (+https://github.com/preserver-archive/preserver; "
    "web-archive link checker)"
)
