"""URLs that are never requested: `[live] exclude` and `--exclude`, as lychee has.

Each pattern is a regular expression searched in the URL as the article writes it (for an
archived URL that is the whole Wayback URL, the original included), so `facebook\\.com` or
`^https?://gone\\.example/` both work. A URL that matches is recorded as `excluded`, with the
pattern in `error`: no request, and no verdict about the URL (not a failure, not a regression).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import ConfigError
from .status import CheckResult, UrlStatus


def compile_patterns(patterns: Iterable[str], where: str) -> list[re.Pattern]:
    """The patterns as regular expressions; ConfigError naming `where` for a bad one."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError(f"{where}: {pattern!r} is not a regular expression: {exc}") from None
    return compiled


class Exclusions:
    def __init__(self, patterns: Iterable[str] = ()):
        self.patterns = compile_patterns(patterns, "exclude")

    def match(self, url: str) -> str | None:
        """The first pattern found in url, or None."""
        for pattern in self.patterns:
            if pattern.search(url):
                return pattern.pattern
        return None

    def result(self, url: str) -> CheckResult | None:
        """The `excluded` check of url, or None if no pattern matches (then check it)."""
        pattern = self.match(url) if self.patterns else None
        if pattern is None:
            return None
        return CheckResult(url, UrlStatus.EXCLUDED, error=f"excluded by the pattern `{pattern}`",
                           method="config")
