"""Property tests: the parsers that meet hostile input never raise, and round-trip what they
accept."""

from pathlib import Path
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preserver.articles import Article, parse_article
from preserver.status import ParseStatus
from preserver.storage import media_relpath
from preserver.urls import (
    canonical_key,
    encode_once,
    is_http_url,
    parse_wayback_url,
    same_original,
)

url_text = st.one_of(
    st.text(),
    st.builds(lambda ts, mod, rest: f"https://web.archive.org/web/{ts}{mod}/{rest}",
              st.from_regex(r"\d{1,14}", fullmatch=True), st.sampled_from(["", "id_", "im_"]),
              st.text()),
    st.builds(lambda rest: f"https://www.hkcnews.com/{rest}", st.text()),
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(url_text)
def test_wayback_parser_never_raises_and_round_trips(url):
    parsed = parse_wayback_url(url)
    if parsed is not None:
        again = parse_wayback_url(parsed.canonical(parsed.modifier))
        assert again == parsed
        assert parse_wayback_url(encode_once(parsed.canonical())) is not None


@settings(max_examples=500)
@given(url_text)
def test_canonicalisation_never_raises_and_encoding_is_idempotent(url):
    key = canonical_key(url)
    assert isinstance(key, str)
    once = encode_once(url)
    assert encode_once(once) == once
    assert once.isascii()
    assert same_original(url, url)


def _urlsplit_says_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


@settings(max_examples=1000)
@given(st.one_of(url_text, st.builds(lambda a, b, c: a + b + c,
                                     st.sampled_from(["http://", "HTTPS://", "http:/", ""]),
                                     st.text(alphabet="a9.-:@[]/?#%\t\n ", max_size=8),
                                     st.text(max_size=5))))
def test_http_url_fast_path_agrees_with_urlsplit(url):
    assert is_http_url(url) == _urlsplit_says_http(url)


@settings(max_examples=300)
@given(url_text)
def test_media_paths_never_escape(url):
    relpath = media_relpath(url)
    parts = relpath.split("/")
    assert ".." not in parts and "" not in parts and not relpath.startswith("/")
    assert all(len(p.encode()) <= 255 for p in parts)


front_matter = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda body: ("---\n" + body + "\n---\n").encode("utf-8", "surrogatepass"),
              st.text(max_size=300)),
    st.builds(lambda k, v: f'---\n{k}: "{v}"\nurl: {v}\n---\nx'.encode("utf-8", "replace"),
              st.text(max_size=20), st.text(max_size=40)),
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(front_matter)
def test_front_matter_reader_never_raises(data):
    article = parse_article(Article(path="x.md"), data)
    assert article.parse_status in set(ParseStatus)
    if article.parse_status == ParseStatus.ERROR:
        assert article.parse_error
    else:
        assert article.url and article.original_url and article.snapshot_timestamp


def test_real_articles_parse_identically_twice():
    seeds = Path(__file__).resolve().parent.parent / "seeds"
    for file in sorted(seeds.rglob("*.md")):
        a = parse_article(Article(path=file.name), file.read_bytes())
        b = parse_article(Article(path=file.name), file.read_bytes())
        assert a == b
