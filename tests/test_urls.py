"""Wayback URL parsing and encoding URLs exactly once."""

from preserver.urls import (
    canonical_key,
    encode_once,
    parse_wayback_url,
    resolve_link,
    same_original,
)

IMAGE = ("https://web.archive.org/web/20210712022351im_/https://www.hkcnews.com/news_新聞/"
         "hk-discuss/2018/11/donald%20trump-習近平-20181101223354_1ec3_large.png?1475201573")


def test_parse_snapshot_with_modifier_and_query():
    wayback = parse_wayback_url(IMAGE)
    assert wayback.timestamp == "20210712022351"
    assert wayback.modifier == "im_"
    assert wayback.original.endswith("_large.png?1475201573")
    assert wayback.replay_path("id_").startswith("/web/20210712022351id_/https://www.hkcnews")


def test_parse_relative_and_single_slash_forms():
    assert parse_wayback_url("/web/2021/http:/x.com/a").original == "http://x.com/a"
    other_host = parse_wayback_url("http://wayback.archive.org/web/2021/http://x.com/a")
    assert other_host.original == "http://x.com/a"
    # the archive reads an original without a scheme as http
    assert parse_wayback_url("/web/2021id_/www.x.com/a").original == "http://www.x.com/a"


def test_not_wayback_urls_are_none():
    for url in ["https://x.com/web/2021/https://y.com", "https://web.archive.org/details/x",
                "https://web.archive.org/web/2021/javascript:alert(1)", "", "::::", None]:
        assert parse_wayback_url(url) is None


def test_encode_once_is_idempotent_and_keeps_existing_escapes():
    once = encode_once(IMAGE)
    assert encode_once(once) == once
    assert "%E6%96%B0%E8%81%9E" in once  # 新聞 encoded
    assert "donald%20trump" in once  # %20 kept, not %2520
    assert encode_once("https://x.com/%EF%BF%BD a") == "https://x.com/%EF%BF%BD%20a"
    assert encode_once("https://x.com/100%") == "https://x.com/100%25"


def test_request_url_goes_to_the_configured_archive():
    from preserver.archive import Archive

    url = encode_once(Archive(None, "http://127.0.0.1:8080/").replay_url(IMAGE, "im_"))
    assert url.startswith("http://127.0.0.1:8080/web/20210712022351im_/https://www.hkcnews.com/")
    assert "?1475201573" in url


def test_relative_links_resolve_against_the_archive():
    page = "https://web.archive.org/web/2021/https://www.hkcnews.com/article/1"
    assert resolve_link("/web/2021/https://x.com/", page) == "https://web.archive.org/web/2021/https://x.com/"


def test_spellings_of_one_page_meet():
    assert same_original("https://www.hkcnews.com/a/新聞", "http://hkcnews.com/a/%E6%96%B0%E8%81%9E")
    assert not same_original("https://hkcnews.com/a", "https://hkcnews.com/b")
    assert canonical_key("https://WWW.HKCNEWS.com/x") == canonical_key("http://hkcnews.com/x")
