"""Typed configuration, read from config.toml.

One frozen dataclass per table of the file, so the rest of the code never digs in loose dicts.
Relative paths resolve against the folder of the config file, not the working directory, so a
crontab line can point at the file from anywhere. Unknown keys are errors: a typo should not
silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError
from .exclude import compile_patterns

ARCHIVE_DEFAULT = "https://web.archive.org"
KNOWN_TIMEMAPS = {
    "arquivo.pt": "https://arquivo.pt/wayback/timemap/link/",
    "archive.today": "https://archive.ph/timemap/",
    "UK Web Archive": "https://www.webarchive.org.uk/wayback/archive/timemap/link/",
    "Library of Congress": "https://webarchive.loc.gov/all/timemap/link/",
}
AVAILABILITY_DEFAULT = "https://archive.org/wayback/available"


@dataclass(frozen=True)
class ArchiveConfig:
    kind: str = "wayback"  # or "pywb": then base_url ends with the collection
    base_url: str = ARCHIVE_DEFAULT
    availability_url: str = AVAILABILITY_DEFAULT
    cdx_per_minute: float = 24.0  # archive.org allows 30 per IP (CDX and TimeMap share it)
    replay_per_minute: float = 540.0  # archive.org allows about 600; a 429 slows it by 20%
    availability_per_minute: float = 6.0  # the archive's flakiest endpoint
    save_per_minute: float = 3.0  # SPN allows about 4 anonymous
    replay_concurrency: int = 4  # more than 3-4 draws 429s; each 429 takes one away
    pause_after_429_seconds: float = 60.0  # a 429 pauses the whole endpoint class this long
    max_429_per_class: int = 3  # then the class stops for this run rather than risk a block
    timeout_seconds: float = 60.0
    cdx_page_size: int = 10_000  # rows per CDX page (the archive's hard maximum is 150,000)
    bulk_threshold: int = 20  # URLs under one host/first path segment that earn a prefix query


@dataclass(frozen=True)
class ScheduleConfig:
    """When a URL is due for another check (incremental runs for cron)."""

    recheck_ok_days: float = 30.0  # a healthy URL is looked at again after this long
    recheck_failed_hours: float = 24.0  # a failing one after this, doubling per failure
    dead_after_failures: int = 3  # called dead after this many failed checks in a row ...
    dead_after_days: float = 3.0  # ... spread over at least this many days (InternetArchiveBot)
    cdx_max_age_days: float = 7.0  # cached CDX prefix queries are refreshed after this long


@dataclass(frozen=True)
class SaveConfig:
    """Save Page Now (`preserver save`, opt-in)."""

    max_capture_age_days: float = 365.0  # a live original with no newer capture is submitted
    poll_seconds: float = 5.0  # between SPN2 status polls
    max_polls: int = 24


@dataclass(frozen=True)
class MementoConfig:
    """Other archives, asked through their Memento TimeMaps (opt-in)."""

    archives: list = field(default_factory=list)  # names of `endpoints` to ask; [] = none
    # name -> TimeMap prefix (the original URL is appended); these four are known, add more
    endpoints: dict = field(default_factory=lambda: dict(KNOWN_TIMEMAPS))

    @property
    def timemaps(self) -> dict[str, str]:
        """The archives to ask, with their TimeMap prefixes."""
        return {name: self.endpoints[name] for name in self.archives}


@dataclass(frozen=True)
class LiveConfig:
    per_host_per_second: float = 1.0
    timeout_seconds: float = 20.0
    max_redirects: int = 10
    # A dead site restored elsewhere (a static mirror) can stand in for its origin:
    # {"https://www.hkcnews.com" = "http://mirror.example:8080"}. Like curl --resolve.
    origins: dict = field(default_factory=dict)
    # Regular expressions searched in each URL (lychee's --exclude): a match is never
    # requested and is recorded as `excluded`. Also `--exclude PATTERN` on the command line.
    exclude: list = field(default_factory=list)


@dataclass(frozen=True)
class RetryConfig:
    attempts: int = 3
    initial_wait_seconds: float = 2.0
    max_wait_seconds: float = 30.0


@dataclass(frozen=True)
class SecurityConfig:
    allow_private_addresses: bool = False
    max_image_bytes: int = 25_000_000
    max_article_bytes: int = 5_000_000


@dataclass(frozen=True)
class MediaConfig:
    """[media] beside its `path`: how saved images are kept honest (preserver.fixity)."""

    # bytes of saved images re-hashed (sha256) per run, verified longest ago first: the whole
    # folder is re-hashed every (folder size / this) runs; 0 = sizes only
    fixity_bytes_per_run: int = 500_000_000


@dataclass(frozen=True)
class NetworkConfig:
    """How requests leave this machine. HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY are
    honoured as httpx honours them; `proxy` replaces the environment's HTTP(S)_PROXY."""

    proxy: str = ""  # "http://proxy.example:3128" (user:password@ allowed); "" = none


@dataclass(frozen=True)
class Config:
    corpus_path: Path
    ledger_path: Path
    media_path: Path
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    save: SaveConfig = field(default_factory=SaveConfig)
    memento: MementoConfig = field(default_factory=MementoConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    source: Path | None = None  # the file this came from, if any



_TABLES = {
    "archive": ArchiveConfig,
    "live": LiveConfig,
    "retry": RetryConfig,
    "security": SecurityConfig,
    "schedule": ScheduleConfig,
    "save": SaveConfig,
    "memento": MementoConfig,
    "network": NetworkConfig,
}
_PATH_TABLES = {"corpus": "corpus_path", "ledger": "ledger_path", "media": "media_path"}
_PATH_TABLE_KEYS = {"media": {f.name for f in dataclasses.fields(MediaConfig)}}  # besides path


def load_config(path: Path | str) -> Config:
    """Read and validate a config.toml; raise ConfigError with a readable message."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    folder = path.resolve().parent
    unknown = set(raw) - set(_TABLES) - set(_PATH_TABLES)
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {sorted(unknown)}")
    paths = {attr: _path_of(raw, table, folder, path) for table, attr in _PATH_TABLES.items()}
    tables = {name: _table(raw.get(name, {}), cls, name, path) for name, cls in _TABLES.items()}
    media = {k: v for k, v in raw["media"].items() if k != "path"}  # _path_of checked the keys
    config = Config(**paths, **tables, media=_table(media, MediaConfig, "media", path),
                    source=path)
    _validate(config, path)
    return config


def _path_of(raw: dict, table: str, folder: Path, source: Path) -> Path:
    section = raw.get(table)
    if not isinstance(section, dict) or not isinstance(section.get("path"), str):
        raise ConfigError(f"{source}: [{table}] path is required (a string)")
    extra = set(section) - {"path"} - _PATH_TABLE_KEYS.get(table, set())
    if extra:
        raise ConfigError(f"{source}: unknown key(s) in [{table}]: {sorted(extra)}")
    return (folder / Path(section["path"]).expanduser()).resolve()


def _table(section: object, cls: type, name: str, source: Path):
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(section) - set(fields)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) in [{name}]: {sorted(unknown)}")
    values = {}
    for key, value in section.items():
        expected = type(getattr(cls(), key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{source}: [{name}] {key} must be {expected.__name__}, got {value!r}"
            )
        values[key] = value
    return cls(**values)


def _validate(config: Config, source: Path) -> None:
    urls = {f"[archive] {name}": getattr(config.archive, name)
            for name in ("base_url", "availability_url")}
    urls.update({f"[live] origins key {k!r}": k for k in config.live.origins})
    urls.update({f"[live] origins value for {k!r}": v for k, v in config.live.origins.items()})
    unknown = [n for n in config.memento.archives if n not in config.memento.endpoints]
    if unknown:
        raise ConfigError(f"{source}: [memento] archives names {unknown}, which [memento] "
                          f"endpoints does not define (known: {sorted(config.memento.endpoints)})")
    urls.update({f"[memento] endpoints value for {k!r}": v
                 for k, v in config.memento.endpoints.items()})
    if not all(isinstance(p, str) for p in config.live.exclude):
        raise ConfigError(f"{source}: [live] exclude must be a list of strings (regular "
                          f"expressions), got {config.live.exclude!r}")
    compile_patterns(config.live.exclude, f"{source}: [live] exclude")
    if config.archive.kind not in ("wayback", "pywb"):
        raise ConfigError(f"{source}: [archive] kind must be \"wayback\" or \"pywb\", "
                          f"got {config.archive.kind!r}")
    if config.network.proxy:
        urls["[network] proxy"] = config.network.proxy
    for name, url in urls.items():
        parts = urlsplit(url) if isinstance(url, str) else None
        if not parts or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{source}: {name} must be an http(s) URL, got {url!r}")
    positive = {
        "archive.cdx_per_minute": config.archive.cdx_per_minute,
        "archive.replay_per_minute": config.archive.replay_per_minute,
        "archive.availability_per_minute": config.archive.availability_per_minute,
        "archive.save_per_minute": config.archive.save_per_minute,
        "archive.replay_concurrency": config.archive.replay_concurrency,
        "archive.max_429_per_class": config.archive.max_429_per_class,
        "archive.timeout_seconds": config.archive.timeout_seconds,
        "live.per_host_per_second": config.live.per_host_per_second,
        "live.timeout_seconds": config.live.timeout_seconds,
        "retry.attempts": config.retry.attempts,
        "security.max_image_bytes": config.security.max_image_bytes,
        "archive.cdx_page_size": config.archive.cdx_page_size,
        "archive.bulk_threshold": config.archive.bulk_threshold,
        "schedule.dead_after_failures": config.schedule.dead_after_failures,
        "security.max_article_bytes": config.security.max_article_bytes,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{source}: {key} must be greater than 0, got {value!r}")
    if config.media.fixity_bytes_per_run < 0:
        raise ConfigError(f"{source}: media.fixity_bytes_per_run must be 0 or more, "
                          f"got {config.media.fixity_bytes_per_run!r}")
