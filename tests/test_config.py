"""config.toml: defaults, relative paths, and readable errors for bad values."""

from pathlib import Path

import pytest

from preserver.config import load_config
from preserver.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
MINIMAL = '[corpus]\npath = "c"\n[ledger]\npath = "l.db"\n[media]\npath = "m"\n'


def test_bundled_config_loads_and_stays_below_archive_limits():
    config = load_config(REPO / "config.toml")
    assert config.corpus_path == REPO / "seeds"
    assert config.archive.base_url == "https://web.archive.org"
    assert config.archive.cdx_per_minute < 30
    assert config.archive.replay_per_minute < 600
    assert config.archive.replay_concurrency <= 4
    assert config.security.allow_private_addresses is False


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text(MINIMAL)
    monkeypatch.chdir("/")
    config = load_config(tmp_path / "config.toml")
    assert config.ledger_path == (tmp_path / "l.db").resolve()
    assert config.media_path == (tmp_path / "m").resolve()


@pytest.mark.parametrize("extra, message", [
    ("[archive]\ncdx_per_minute = 0\n", "greater than 0"),
    ("[archive]\ncdx_per_minute = 'fast'\n", "must be float"),
    ("[archive]\nbase_url = 'ftp://x'\n", "http(s) URL"),
    ("[archive]\ncdx_per_mintue = 3\n", "unknown key"),
    ("[nonsense]\n", "unknown table"),
    ("[security]\nallow_private_addresses = 1\n", "must be bool"),
])
def test_bad_values_are_refused_with_a_readable_message(tmp_path, extra, message):
    (tmp_path / "config.toml").write_text(MINIMAL + extra)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(tmp_path / "config.toml")


def test_missing_file_and_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "config.toml").write_text('[corpus]\npath = "c"\n')
    with pytest.raises(ConfigError, match=r"\[ledger\] path is required"):
        load_config(tmp_path / "config.toml")
