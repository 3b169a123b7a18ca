"""Every exception preserver raises on purpose, in one place.

Link outcomes are data (`preserver.status.UrlStatus`), never exceptions. These are program
failures: the run cannot go on, or one step must tell its caller something went wrong.

    PreserverError
    ├── ConfigError           bad or unreadable config.toml (exit code 2)
    ├── LedgerLockedError     another run holds the ledger (exit code 3)
    ├── ArticleError          one article cannot be read; recorded, the run goes on
    ├── UnsafePathError       a media path would leave the media folder
    ├── ExportError           an export cannot be made as asked (exit code 2)
    └── RequestFailed         one HTTP request ended without a usable answer
        └── BlockedRequest    refused by our own safety policy before any byte was sent
"""

from __future__ import annotations


class PreserverError(Exception):
    """Base class of every error preserver raises on purpose."""


class ConfigError(PreserverError):
    """The configuration file is missing, unreadable or holds a bad value."""


class LedgerLockedError(PreserverError):
    """Another preserver process holds the ledger's lock."""


class ArticleError(PreserverError):
    """An article file cannot be read; the message is meant for a person."""


class UnsafePathError(PreserverError):
    """A path derived from a URL would land outside the media folder."""


class ExportError(PreserverError):
    """An export cannot be made as asked (no ledger yet, an output that is not ours)."""


class RequestFailed(PreserverError):
    """One request ended without a usable answer; `status` says how (a UrlStatus)."""

    def __init__(self, status, message: str, http_status: int | None = None):
        super().__init__(message)
        self.status = status
        self.http_status = http_status


class BlockedRequest(RequestFailed):
    """Our safety policy refused the request (scheme, private address)."""
