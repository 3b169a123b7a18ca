"""`[live] exclude` and `--exclude`: URLs matching a pattern are never requested, and are
recorded as `excluded` (not a failure, not a regression, no exit 1)."""

from __future__ import annotations

import json

import sqlite_utils

from tests.conftest import PNG, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
GONE = "https://gone.example"
AD = f"{WB}/{TS}im_/{HK}/news_新聞/廣告/banner 1.png"
KEPT_IMAGE = f"{WB}/{TS}im_/{HK}/news_新聞/hk/相片 1.png"


def corpus_with_links(corpus, archive, site):
    archive.add(f"{HK}/article/1", TS, b"<html>article</html>")
    archive.add("https://www.youtube.com/embed/tracked", TS, b"<html>video</html>")
    for image in (AD, KEPT_IMAGE):
        archive.add(image.split("im_/")[1], TS, PNG, "image/png")
    path = write_article(corpus, "新聞/a.md", f"{WB}/{TS}/{HK}/article/1", f"{HK}/article/1",
                         images=[AD, KEPT_IMAGE])
    path.write_text(path.read_text(encoding="utf-8") + (
        f"\n[留言]({GONE}/forever/頁)\n"
        f"[追蹤](https://tracker.example/pixel?id=1)\n"
        f"[keep]({GONE}/kept)\n"
        f'{{{{< video src="{WB}/{TS}if_/https://www.youtube.com/embed/tracked" >}}}}\n'),
        encoding="utf-8")
    site.route("/article/1", body=b"<html><title>article</title></html>")
    site.route("/forever/頁", body=b"<html><title>page</title></html>")
    site.route("/kept", body=b"<html><title>kept</title></html>")
    site.route("/pixel", body=b"<html><title>pixel</title></html>")


def test_excluded_urls_are_never_requested(tmp_path, corpus, archive, site):
    corpus_with_links(corpus, archive, site)
    config = write_config(
        tmp_path, archive, corpus, live_extra='exclude = ["^https://tracker\\\\.example/"]',
        origins={HK: site.base_url, GONE: site.base_url, "https://tracker.example": site.base_url})
    result = run_cli("run", "--config", str(config), "--links", "--exclude", "/forever/",
                     "--exclude", r"youtube\.com/embed/", "--exclude", "廣告")
    assert result.exit_code == 0, result.output

    paths = [r.path for r in site.requests]
    assert "/kept" in paths and "/article/1" in paths  # the others were checked
    assert not any("forever" in p or "pixel" in p for p in paths)
    assert not any("youtube" in r.path or "%E5%BB%A3" in r.path for r in archive.requests)
    assert any("%E7%9B%B8" in r.path for r in archive.requests)  # 相: the kept image, fetched
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    images = {r["url"]: r["status"] for r in db["images"].rows}
    assert images == {KEPT_IMAGE: "saved"}  # the excluded image: no row, no file
    missing = list(db.query("select status, url from missing_images"))
    assert missing == [{"status": "excluded", "url": AD}]
    urls = {r["url"]: r for r in db["urls"].rows}
    for url, pattern in ((AD, "廣告"), (f"{GONE}/forever/頁", "/forever/"),
                         ("https://tracker.example/pixel?id=1", "^https://tracker\\.example/"),
                         (f"{WB}/{TS}if_/https://www.youtube.com/embed/tracked",
                          r"youtube\.com/embed/")):
        row = urls[url]
        assert (row["status"], row["method"], row["dead"]) == ("excluded", "config", 0), url
        assert pattern in row["error"]
    assert urls[f"{GONE}/kept"]["status"] == "ok"
    summary = json.loads(run_cli("report", "--config", str(config), "--format", "json").output)
    assert summary["urls"]["embed"] == {"excluded": 1}


def test_excluding_a_url_that_was_fine_is_not_a_regression(tmp_path, corpus, archive, site):
    corpus_with_links(corpus, archive, site)
    config = write_config(tmp_path, archive, corpus,
                          origins={HK: site.base_url, GONE: site.base_url,
                                   "https://tracker.example": site.base_url})
    assert run_cli("run", "--config", str(config), "--links").exit_code == 0
    site.clear_requests()
    archive.clear_requests()
    result = run_cli("run", "--config", str(config), "--links", "--exclude", "example",
                     "--exclude", "youtube")
    assert result.exit_code == 0, result.output  # not 1: nothing got worse
    assert not any("forever" in r.path or "kept" in r.path for r in site.requests)
    assert not any("youtube" in r.path for r in archive.requests)
    summary = json.loads(run_cli("report", "--config", str(config), "--format", "json").output)
    assert summary["changes"]["worse_count"] == 0
    assert summary["urls"]["link"] == {"excluded": 3}
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    assert db.execute("select count(*) from newly_broken").fetchone()[0] == 0


def test_audit_takes_exclude_and_an_excluded_url_is_not_bad(tmp_path, corpus, archive, site):
    config = write_config(tmp_path, archive, corpus)
    result = run_cli("audit", "--config", str(config), "--exclude", "gone",
                     f"{GONE}/forever")
    assert result.exit_code == 0, result.output
    assert "excluded" in result.output and not site.requests


def test_a_bad_pattern_is_a_usage_error(tmp_path, corpus, archive):
    config = write_config(tmp_path, archive, corpus, live_extra='exclude = ["(unclosed"]')
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 2 and "[live] exclude" in result.output
    assert "not a regular expression" in result.output
    config = write_config(tmp_path, archive, corpus)
    result = run_cli("check", "--config", str(config), "--exclude", "[")
    assert result.exit_code == 2 and "--exclude" in result.output
    config = write_config(tmp_path, archive, corpus, live_extra='exclude = "tracker"')
    assert run_cli("run", "--config", str(config)).exit_code == 2
    assert not (tmp_path / "preserver.db").exists()  # nothing written
