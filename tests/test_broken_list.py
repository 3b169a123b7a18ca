"""`preserver list`: every failing URL (or every article with problems), after real runs
against the local archive and site, in each format, with each filter; CJK, spaces and `%` in
paths and URLs."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlite_utils

from preserver.broken import parse_since
from tests.conftest import PNG, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
CJK_IMAGE = f"{HK}/news_新聞/hk-discuss/2018/11/習近平 %E6%96%B0-圖_large.png?1475201573"
ERROR_PAGE = f"{HK}/uploads/錯誤 頁.png"  # the archive serves an HTML page for it
NEVER = f"{HK}/uploads/never 存.png"  # never archived
PATH_A = "新聞/2019/六四 紀念.md"
PATH_B = "評論/100% 真相.md"
PATH_OK = "ok/好.md"
PATH_GONE = "gone/刪除.md"


def html(title: str) -> bytes:
    return f"<html><head><title>{title}</title></head><body>x</body></html>".encode()


@pytest.fixture
def world(tmp_path, corpus, archive, site):
    """Two articles with problems (one sharing a broken image with the other), one without,
    one whose file is gone by the second run; every run real."""
    def image(src: str) -> str:
        return f"{WB}/{TS}im_/{src}"

    archive.add(CJK_IMAGE, TS, PNG, "image/png")
    archive.add(ERROR_PAGE, TS, html("Error"), "image/png")
    archive.add(f"{HK}/article/1/新聞", TS, html("one"))
    site.route("/article/1/%E6%96%B0%E8%81%9E", status=404)  # original gone
    write_article(corpus, PATH_A, f"{WB}/{TS}/{HK}/article/1/新聞", f"{HK}/article/1/新聞",
                  [image(CJK_IMAGE), image(NEVER), image(ERROR_PAGE)], title="六四")
    # snapshot never archived; original fine
    site.route("/article/2", body=html("two"))
    write_article(corpus, PATH_B, f"{WB}/{TS}/{HK}/article/2", f"{HK}/article/2",
                  [image(ERROR_PAGE)], title="真相")
    archive.add(f"{HK}/article/3", TS, html("three"))
    site.route("/article/3", body=html("three"))
    write_article(corpus, PATH_OK, f"{WB}/{TS}/{HK}/article/3", f"{HK}/article/3",
                  [image(CJK_IMAGE)])
    write_article(corpus, PATH_GONE, f"{WB}/{TS}/{HK}/article/4", f"{HK}/article/4")
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    (corpus / PATH_GONE).unlink()
    assert run_cli("run", "--config", str(config)).exit_code == 0
    return config


EXPECTED = {  # (role, status, url): the article paths citing it
    ("snapshot", "not_found", f"{WB}/{TS}/{HK}/article/2"): [PATH_B],
    ("original", "not_found", f"{HK}/article/1/新聞"): [PATH_A],
    ("image", "missing", f"{WB}/{TS}im_/{NEVER}"): [PATH_A],
    ("image", "invalid", f"{WB}/{TS}im_/{ERROR_PAGE}"): [PATH_A, PATH_B],
}


def listing(config, *args: str):
    result = run_cli("list", "--config", str(config), *args)
    assert result.exit_code == 0, result.output
    return result.output


def as_json(config, *args: str) -> list:
    return json.loads(listing(config, "--format", "json", *args))


def keyed(rows: list[dict]) -> dict:
    return {(r["role"], r["status"], r["url"]): r["articles"] for r in rows}


def test_json_lists_each_failing_url_once_with_every_citing_article(world):
    rows = as_json(world)
    assert keyed(rows) == EXPECTED
    assert [r["url"] for r in rows] == sorted(r["url"] for r in rows)
    by_url = {r["url"]: r for r in rows}
    original = by_url[f"{HK}/article/1/新聞"]
    assert original["http_status"] == 404 and original["checked_at"] and original["first_failed_at"]
    invalid = by_url[f"{WB}/{TS}im_/{ERROR_PAGE}"]
    assert invalid["article_count"] == 2 and invalid["error"].startswith("not an image")
    assert invalid["checked_at"]


def test_csv_has_a_header_and_one_row_per_url(world):
    rows = list(csv.DictReader(io.StringIO(listing(world, "--format", "csv"))))
    assert keyed([{**r, "articles": r["articles"].split("\n")} for r in rows]) == EXPECTED
    assert all(int(r["article_count"]) == len(r["articles"].split("\n")) for r in rows)


def test_text_and_markdown_name_every_url_and_article(world):
    text = listing(world)
    markdown = listing(world, "--format", "markdown")
    for (role, status, url), paths in EXPECTED.items():
        assert f"{status}  {role}  {url}" in text
        assert all(f"    in {p}" in text for p in paths)
        row = next(line for line in markdown.splitlines() if f"| {url} |" in line)
        assert row.startswith(f"| {status} | {role} |") and "<br>".join(paths) in row
    assert text.endswith("4 failing URLs\n")
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(EXPECTED)
    assert all(line.count(" | ") == 5 for line in table[2:])  # no cell broke the table


@pytest.mark.parametrize(("args", "expected"), [
    (("--role", "image"), {k for k in EXPECTED if k[0] == "image"}),
    (("--role", "snapshot", "--role", "original"), {k for k in EXPECTED if k[0] != "image"}),
    (("--status", "not_found"), {k for k in EXPECTED if k[1] == "not_found"}),
    (("--status", "missing", "--role", "snapshot"), set()),
    # a Wayback URL matches the original's host; an original its own; subdomains match
    (("--host", "hkcnews.com"), set(EXPECTED)),
    (("--host", "web.archive.org"), {k for k in EXPECTED if k[0] != "original"}),
    (("--host", "example.org"), set()),
    (("--since", "2000-01-01"), set(EXPECTED)),
    (("--since", "2999-01-01T00:00:00+08:00"), set()),
])
def test_filters(world, args, expected):
    assert set(keyed(as_json(world, *args))) == expected


def test_since_that_is_not_a_date_is_a_usage_error(world):
    result = run_cli("list", "--config", str(world), "--since", "last week")
    assert result.exit_code == 2 and "ISO date" in result.output


def test_by_article_lists_each_article_with_its_problems(world):
    articles = as_json(world, "--by-article")
    assert [a["path"] for a in articles] == sorted([PATH_A, PATH_B])
    problems = {a["path"]: [(p["role"], p["status"], p["url"]) for p in a["problems"]]
                for a in articles}
    assert problems[PATH_A] == [  # in the order the article has them
        ("original", "not_found", f"{HK}/article/1/新聞"),
        ("image", "missing", f"{WB}/{TS}im_/{NEVER}"),
        ("image", "invalid", f"{WB}/{TS}im_/{ERROR_PAGE}")]
    assert problems[PATH_B] == [("snapshot", "not_found", f"{WB}/{TS}/{HK}/article/2"),
                                ("image", "invalid", f"{WB}/{TS}im_/{ERROR_PAGE}")]
    assert {a["title"] for a in articles} == {"六四", "真相"}
    only_images = as_json(world, "--by-article", "--role", "image", "--status", "missing")
    assert [(a["path"], len(a["problems"])) for a in only_images] == [(PATH_A, 1)]


def test_by_article_parses_in_every_format(world):
    rows = list(csv.DictReader(io.StringIO(listing(world, "--by-article", "--format", "csv"))))
    assert [(r["path"], r["role"], r["status"]) for r in rows] == [
        (PATH_A, "original", "not_found"), (PATH_A, "image", "missing"),
        (PATH_A, "image", "invalid"), (PATH_B, "snapshot", "not_found"),
        (PATH_B, "image", "invalid")]
    text = listing(world, "--by-article")
    assert f"{PATH_A}  六四\n    not_found  original  {HK}/article/1/新聞" in text
    assert text.endswith("2 articles with problems\n")
    markdown = listing(world, "--by-article", "--format", "markdown")
    assert f"### {PATH_B} — 真相" in markdown and "- **invalid** image" in markdown


def test_nothing_broken_is_an_empty_list_in_every_format(world):
    args = ("--host", "example.org")
    assert json.loads(listing(world, "--format", "json", *args)) == []
    assert listing(world, "--format", "csv", *args).splitlines() == [
        "url,role,status,http_status,error,checked_at,first_failed_at,article_count,articles"]
    assert listing(world, *args) == "0 failing URLs\n"


def test_checked_at_is_the_last_conclusive_check(world):
    """A later rate-limited check says nothing about the URL: the time stays the 404's."""
    url = f"{HK}/article/1/新聞"
    db = sqlite_utils.Database(world.parent / "preserver.db")
    conclusive = db.execute("select max(checked_at) from checks where url = ?", [url]).fetchone()
    db["checks"].insert({"run_id": 99, "url": url, "checked_at": "2999-01-01T00:00:00Z",
                         "status": "rate_limited", "method": "live"})
    db.execute("update urls set status = 'rate_limited' where url = ?", [url])
    db.conn.commit()
    row = next(r for r in as_json(world) if r["url"] == url)
    assert (row["status"], row["checked_at"]) == ("rate_limited", conclusive[0])


def test_parse_since_normalises_to_utc_text():
    assert parse_since("2026-12-01") == "2026-12-01T00:00:00Z"
    assert parse_since("2026-12-01T08:30:00+08:00") == "2026-12-01T00:30:00Z"
    assert parse_since("2026-12-01T08:30:00Z") == "2026-12-01T08:30:00Z"
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_excluded_urls_are_not_failures_and_corrupt_images_are(world):
    """`excluded` by a pattern (never requested on purpose) is left out, excluded by the
    archive is listed; an image file found `corrupt` (or any status but `saved`) is listed,
    with the file's status."""
    db = sqlite_utils.Database(world.parent / "preserver.db")
    snapshot = f"{WB}/{TS}/{HK}/article/2"
    saved = f"{WB}/{TS}im_/{CJK_IMAGE}"
    db.execute("update urls set status = 'excluded', method = 'config' where url = ?",
               [snapshot])
    db.execute("update images set status = 'corrupt', error = 'hash differs' where url = ?",
               [saved])
    db.conn.commit()
    rows = {(r["role"], r["status"], r["url"]): r for r in as_json(world)}
    assert ("snapshot", "not_found", snapshot) not in rows
    assert not any(key[1] == "excluded" for key in rows)
    db.execute("update urls set method = 'replay' where url = ?", [snapshot])
    db.conn.commit()
    assert ("snapshot", "excluded", snapshot) in {(r["role"], r["status"], r["url"])
                                                  for r in as_json(world)}
    corrupt = rows[("image", "corrupt", saved)]
    assert corrupt["articles"] == sorted([PATH_A, PATH_OK]) and corrupt["error"] == "hash differs"
