"""Image paths derived from URLs never leave the media folder; writes are atomic."""

import os

import pytest

from preserver.errors import UnsafePathError
from preserver.storage import (
    clean_partial_files,
    media_relpath,
    safe_target,
    write_atomically,
)


def test_readable_path_from_cjk_url():
    url = "https://www.hkcnews.com/news_新聞/hk-discuss/2018/11/donald%20trump-習近平.png"
    expected = "www.hkcnews.com/news_新聞/hk-discuss/2018/11/donald trump-習近平.png"
    assert media_relpath(url) == expected


def test_query_string_gives_distinct_files():
    a = media_relpath("https://hkcnews.com/uploads/avatars/x.png?1")
    b = media_relpath("https://hkcnews.com/uploads/avatars/x.png?2")
    assert a != b and a.endswith(".png") and b.endswith(".png")


@pytest.mark.parametrize("url", [
    "https://x.com/../../etc/passwd",
    "https://x.com/%2e%2e/%2e%2e/etc/passwd",
    "https://x.com/a/..%2f..%2f..%2fetc/passwd",
    "https://x.com//absolute/path",
    "https://x.com/a\\..\\..\\b",
])
def test_dot_segments_never_escape(tmp_path, url):
    relpath = media_relpath(url)
    assert ".." not in relpath.split("/")
    target = safe_target(tmp_path, relpath)
    assert target.resolve().is_relative_to(tmp_path.resolve())


def test_very_long_names_are_shortened_and_distinct():
    a = media_relpath("https://x.com/" + "新" * 200 + "a.jpg")
    b = media_relpath("https://x.com/" + "新" * 200 + "b.jpg")
    assert a != b
    assert all(len(part.encode()) <= 255 for part in a.split("/"))


def test_symlink_planted_in_media_folder_is_refused(tmp_path):
    media, outside = tmp_path / "media", tmp_path / "outside"
    media.mkdir()
    outside.mkdir()
    os.symlink(outside, media / "x.com")
    with pytest.raises(UnsafePathError):
        safe_target(media, "x.com/a.png")


def test_atomic_write_and_cleanup(tmp_path):
    target = tmp_path / "a" / "b.png"
    write_atomically(target, b"data")
    assert target.read_bytes() == b"data"
    (tmp_path / "a" / ".preserver-tmp-x1y2.part").write_bytes(b"half")
    write_atomically(tmp_path / "a" / "scan.part", b"a real image named .part")
    assert clean_partial_files(tmp_path) == 1
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.png", "scan.part"]
