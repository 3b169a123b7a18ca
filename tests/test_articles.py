"""Reading articles: every parse outcome from a real corpus file, and damaged input."""

from pathlib import Path

import pytest

from preserver.articles import read_article
from preserver.status import ParseStatus

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def read(path: Path, root: Path | None = None, max_bytes: int = 5_000_000):
    return read_article(root or path.parent, path, max_bytes)


def test_real_article_reads_ok():
    article = read(SEEDS / "16001-17000/article_16142.md", SEEDS)
    assert article.parse_status == ParseStatus.OK
    assert article.path == "16001-17000/article_16142.md"
    assert article.title.startswith("特朗普習近平通電話")
    assert article.date == "2018-11-01"
    assert article.snapshot_timestamp == "20210712022351"
    assert "xi jinping" in article.tags
    assert article.url_mismatch is False
    assert len(article.sha256) == 64
    assert article.images == [
        "https://web.archive.org/web/20210712022351im_/https://www.hkcnews.com/news_新聞/"
        "hk-discuss/2018/11/donald%20trump-習近平-中美關係-20181101223354_1ec3_large.png"
    ]
    # the relative /web/ link is resolved against the archive
    assert article.links == [
        "https://web.archive.org/web/20210712022351/https://www.hkcnews.com/aboutus/#subscribe"
    ]


def test_control_characters_are_repaired():
    article = read(SEEDS / "20001-21000/article_20979.md", SEEDS)
    assert article.parse_status == ParseStatus.REPAIRED
    assert "control characters" in article.parse_error
    assert "\x1c" not in article.title and "\x08" not in article.title
    assert article.url.startswith("https://web.archive.org/web/20210712030010/")
    assert article.images


def test_url_that_embeds_another_page_is_flagged_not_rejected():
    article = read(SEEDS / "32001-33000/article_32421.md", SEEDS)
    assert article.parse_status == ParseStatus.OK
    assert article.url_mismatch is True


def test_real_article_damaged_in_transit_is_an_error_with_a_reason(tmp_path):
    """The error outcome from real corpus files: one re-encoded as Big5, one cut short."""
    real = (SEEDS / "16001-17000/article_16142.md").read_text(encoding="utf-8")
    big5 = tmp_path / "big5.md"
    big5.write_bytes(real.encode("big5", errors="replace"))
    no_url = tmp_path / "no_url.md"
    no_url.write_text("".join(line for line in real.splitlines(keepends=True)
                              if not line.startswith("url:")), encoding="utf-8")
    assert "not UTF-8" in read(big5).parse_error
    assert read(no_url).parse_error == "front matter has no 'url'"


def write(tmp_path: Path, data: bytes | str, name: str = "a.md") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


GOOD = (
    '---\ntitle: "t"\nurl: "https://web.archive.org/web/20210101000000/https://x.com/a"\n'
    'original_url: "https://x.com/a"\n---\nbody ![i](/web/20210101000000im_/https://x.com/i.png)\n'
)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        ("", "empty"),
        ("just text\n", "no YAML front matter"),
        ('---\ntitle: "t"\noriginal_url: "https://x.com/a"\n---\n', "no 'url'"),
        ('---\nurl: "https://web.archive.org/web/2021/https://x.com/a"\n---\n',
         "no 'original_url'"),
        ('---\nurl: "https://x.com/a"\noriginal_url: "https://x.com/a"\n---\n',
         "not a Wayback snapshot URL"),
        ('---\ntitle: [unclosed\n---\n', "malformed"),
        (b"\x00\x01\x02binary", "binary"),
        ('---\nurl: "https://web.archive.org/web/2021/https://x.com/a"\n'
         'url: "https://web.archive.org/web/2021/https://x.com/b"\noriginal_url: "x"\n---\n',
         "duplicate key 'url'"),
    ],
)
def test_damaged_files_get_a_readable_error(tmp_path, data, message):
    article = read(write(tmp_path, data))
    assert article.parse_status == ParseStatus.ERROR
    assert message in article.parse_error


def test_bom_and_crlf_are_read(tmp_path):
    article = read(write(tmp_path, "\ufeff" + GOOD.replace("\n", "\r\n")))
    assert article.parse_status == ParseStatus.OK, article.parse_error
    assert article.images == ["https://web.archive.org/web/20210101000000im_/https://x.com/i.png"]


def test_file_over_the_size_limit_is_skipped_with_a_reason(tmp_path):
    article = read(write(tmp_path, GOOD), max_bytes=10)
    assert article.parse_status == ParseStatus.ERROR
    assert "limit" in article.parse_error


def test_yaml_python_tags_are_never_constructed(tmp_path):
    evil = GOOD.replace('title: "t"', "title: !!python/object/apply:os.system ['touch pwned']")
    article = read(write(tmp_path, evil))
    assert article.parse_status == ParseStatus.ERROR
    assert not (tmp_path / "pwned").exists()
