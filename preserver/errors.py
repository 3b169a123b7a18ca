"""Every exception preserver raises on purpose, in one place.

Link outcomes are data (`preserver.status.UrlStatus`), never exceptions. These are program
failures: the run cannot go on, or one step must tell its caller something went wrong.

    PreserverError
    ├── ConfigError           bad or unreadable config.toml (exit code 2)
    ├── LedgerLockedError     another run holds the ledger (exit code 3)
    ├── LedgerMissingError    a reader found no ledger, or none it can read (exit code 2)
    ├── ArticleError          one article cannot be read; recorded, the run goes on
    ├── UnsafePathError       a media path would leave the media folder
    ├── NoNetworkError        nothing answered at all: no verdict written (exit code 4)
    ├── ExportError           an export cannot start (no ledger, unsafe destination; exit 2)
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


class LedgerMissingError(PreserverError):
    """There is no ledger to read yet (or one an older preserver wrote): run first."""


class ArticleError(PreserverError):
    """An article file cannot be read; the message is meant for a person."""


class UnsafePathError(PreserverError):
    """A path derived from a URL would land outside the media folder."""


class NoNetworkError(PreserverError):
    """Requests went out and neither the archive nor any origin nor a resolver answered."""


class ExportError(PreserverError):
    """An export cannot start (no ledger, an unsafe destination); the message says why."""


class RequestFailed(PreserverError):
    """One request ended without a usable answer; `status` says how (a UrlStatus)."""

    def __init__(self, status, message: str, http_status: int | None = None):
        super().__init__(message)
        self.status = status
        self.http_status = http_status


class BlockedRequest(RequestFailed):
    """Our safety policy refused the request (scheme, private address)."""
