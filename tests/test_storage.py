"""Image paths derived from URLs never leave the media folder; writes are atomic."""

import os
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preserver.errors import UnsafePathError
from preserver.storage import (
    clean_partial_files,
    media_relpath,
    safe_target,
    write_atomically,
)
from preserver.urls import canonical_key

HK = "https://www.hkcnews.com"
COLLIDING = ["photo_1.jpg", "photo:1.jpg", "photo|1.jpg", "photo%5C1.jpg", "photo%3F1.jpg"]


def on_disk(relpath: str) -> str:
    """What a case- and normalisation-insensitive file system (APFS, NTFS) compares."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", relpath).casefold())


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


def test_names_that_sanitise_alike_get_their_own_files():
    paths = [media_relpath(f"{HK}/uploads/{name}") for name in COLLIDING]
    assert len({on_disk(p) for p in paths}) == 5
    assert paths[0] == "www.hkcnews.com/uploads/photo_1.jpg"  # the plain name is kept
    assert all(p.startswith("www.hkcnews.com/uploads/photo_1-") for p in paths[1:])


@pytest.mark.parametrize(("url", "expected"), [
    (f"{HK}/news_新聞/hk-discuss/2017/09/法庭-李明哲.png",
     "www.hkcnews.com/news_新聞/hk-discuss/2017/09/法庭-李明哲.png"),
    (f"{HK}/news_新聞/08/美國-奧布賴恩%20Robert%20O'Brien-20200806135449_1cb6_large.png",
     "www.hkcnews.com/news_新聞/08/美國-奧布賴恩 Robert O'Brien-20200806135449_1cb6_large.png"),
    (f"{HK}/uploads/DSC_0012.JPG", "www.hkcnews.com/uploads/DSC_0012.JPG"),
])
def test_plain_names_keep_the_path_earlier_versions_gave_them(url, expected):
    assert media_relpath(url) == expected


def test_spellings_that_merge_get_a_hash():
    assert media_relpath(f"{HK}/a.png") != media_relpath("https://www.hkcnews.com:8080/a.png")
    assert media_relpath(f"{HK}/.a.png") != media_relpath(f"{HK}/a.png")
    assert media_relpath(f"{HK}/img/12345", "image/png") != media_relpath(f"{HK}/img/12345.png")
    # a name shaped like a hashed one is hashed too, so no URL can take another's hashed name
    taken = media_relpath(f"{HK}/x.png?1")
    assert media_relpath(f"{HK}/{taken.rsplit('/', 1)[1]}") != taken


# names built from the characters sanitising replaces, drops, decodes or folds
_piece = st.sampled_from(["a", "A", "b", "_", ":", "|", "%5C", "%5c", "%3F", "%3A", "%7C", "%20",
                          " ", ".", "..", "-", "ß", "SS", "ss", "新聞", "%E6%96%B0", "e\u0301",
                          "\u00e9", "~", "%25", "%", "#", "%23", "?", "=", "1"])
_name = st.lists(_piece, min_size=1, max_size=6).map("".join)
_url = st.builds(lambda host, folder, name, slash: f"https://{host}/{folder}/{name}{slash}",
                 st.sampled_from(["www.hkcnews.com", "hkcnews.com", "www.hkcnews.com:8080",
                                  "WWW.HKCNEWS.COM"]),
                 st.sampled_from(["uploads", "Uploads", "up:loads", "新聞", ".x"]),
                 _name, st.sampled_from(["", "/", "?1", "?A"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_url, min_size=2, max_size=8, unique=True),
       st.sampled_from([None, "image/png"]))
def test_distinct_keys_never_share_a_path(urls, content_type):
    """Injective over canonical keys, even where the disk ignores case and normalisation."""
    owner: dict[str, str] = {}
    for url in urls:
        path = on_disk(media_relpath(url, content_type))
        assert owner.setdefault(path, canonical_key(url)) == canonical_key(url), (url, path)
