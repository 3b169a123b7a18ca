"""Fixtures: a local Wayback-compatible archive, a live site, a config pointing at them, and
articles written into a fresh corpus folder. Everything runs on 127.0.0.1."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

from preserver.cli import cli
from tests.servers import LiveSite, WaybackArchive

# property tests check what code does, not how fast: a loaded machine (CI shares two cores)
# must not fail one for taking 300 ms
settings.register_profile("preserver", deadline=None)
settings.load_profile("preserver")

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SHARED_CORPUS = REPO.parent / "shared" / "corpus" / "articles"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 40


@pytest.fixture
def archive():
    with WaybackArchive() as server:
        yield server


@pytest.fixture
def site():
    with LiveSite() as server:
        yield server


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    return folder


def write_article(corpus: Path, name: str, url: str, original_url: str,
                  images: list[str] = (), title: str = "標題") -> Path:
    """A Citizen-News-shaped article."""
    body = "\n".join(f'<figure>\n<img src="{src}" alt="">\n</figure>' for src in images)
    path = corpus / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        ---
        title: "{title}"
        date: "2019-06-04"
        author: "眾新聞記者"
        category: "眾聞"
        tags:
          - "測試"
        url: "{url}"
        original_url: "{original_url}"
        ---

        # {title}

        """) + body + "\n", encoding="utf-8")
    return path


def write_config(tmp_path: Path, archive: WaybackArchive, corpus: Path, *,
                 archive_extra: str = "", live_extra: str = "", security_extra: str = "",
                 schedule: str = "recheck_ok_days = 0\nrecheck_failed_hours = 0",
                 tables: str = "", media_extra: str = "",
                 allow_private: bool = True, origins: dict | None = None) -> Path:
    """A real config.toml for a run against the local servers, with fast (test) pacing.
    By default everything is due at every run; pass `schedule=""` for the real policy."""
    archive_defaults = {"base_url": f'"{archive.base_url}"',
                        "availability_url": f'"{archive.availability_url}"',
                        "cdx_per_minute": 60000, "replay_per_minute": 60000,
                        "pause_after_429_seconds": 0.05, "timeout_seconds": 2}
    origin_table = ", ".join(f'"{k}" = "{v}"' for k, v in (origins or {}).items())
    path = tmp_path / "config.toml"
    path.write_text(f"""
[corpus]
path = "{corpus}"
[ledger]
path = "preserver.db"
[media]
path = "media"
{media_extra}
[archive]
{_toml_lines(archive_defaults, archive_extra)}
[live]
per_host_per_second = 1000
timeout_seconds = 1
origins = {{ {origin_table} }}
{live_extra}
[retry]
attempts = 3
initial_wait_seconds = 0.01
max_wait_seconds = 0.05
[schedule]
{schedule}
[security]
allow_private_addresses = {"true" if allow_private else "false"}
{security_extra}
{tables}
""", encoding="utf-8")
    return path


def _toml_lines(defaults: dict, extra: str) -> str:
    """Default settings, overridden by `key = value` lines in extra."""
    settings = {k: str(v) for k, v in defaults.items()}
    for line in filter(None, extra.splitlines()):
        key, value = (part.strip() for part in line.split("=", 1))
        settings[key] = value
    return "\n".join(f"{k} = {v}" for k, v in settings.items())


def run_cli(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
