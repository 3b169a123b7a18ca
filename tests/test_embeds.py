"""Embeds: every video and iframe an article shows (Hugo shortcodes, <iframe>, <video>,
<source>) is in the ledger with the role `embed` and checked as a snapshot on every run, with
no `--links`. The expectations on the real sample come from plain regular expressions written
here, not from preserver's reader."""

from __future__ import annotations

import json
import re

import sqlite_utils

from preserver.articles import Article, parse_article
from tests.conftest import closed_port, run_cli, write_article, write_config
from tests.test_whole_corpus import corpus_files

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022119"

SHORTCODE = re.compile(r'\{\{< video src="([^"]+)" >\}\}')
HTML_EMBED = re.compile(r'<(?:iframe|video|source|audio|embed)\b[^>]*\bsrc="([^"]+)"', re.I)
IF_REFERENCE = re.compile(r'(?:https:)?//web\.archive\.org/web/\d{14}if_/[^"\s)]+')
EMAIL_PROTECTION = re.compile(r"\]\((/web/\d{14}/https://www\.hkcnews\.com/cdn-cgi/l/"
                              r"email-protection[^)]*)\)")
BRACKET_QUERY = re.compile(r"\]\((https://web\.archive\.org/web/\d{14}/https://www\.facebook"
                           r"\.com/[^)\s]*__xts__\[0\][^)\s]*)\)")
# any Wayback reference in a body, absolute or archive-relative
WAYBACK = re.compile(r'(?:https://web\.archive\.org)?/web/\d{14}[a-z_]*/[^"\s)]+')


def body_of(text: str) -> str:
    return text.split("\n---", 1)[1]


def absolute(url: str) -> str:
    """As the article's reader resolves it: `//host/...` takes https, `/web/...` the archive."""
    if url.startswith("//"):
        return "https:" + url
    return "https://web.archive.org" + url if url.startswith("/web/") else url


def test_the_real_sample_every_reference_is_in_the_ledger(tmp_path, archive):
    files = corpus_files()
    shortcodes, html_embeds, if_refs, mails, brackets, every = set(), set(), set(), set(), \
        set(), set()
    per_article = 0
    for file in files:
        path = file.relative_to(file.parents[1]).as_posix()
        body = body_of(file.read_text(encoding="utf-8"))
        found = SHORTCODE.findall(body)
        per_article += bool(found)
        shortcodes |= {(path, absolute(u)) for u in found}
        html_embeds |= {(path, absolute(u)) for u in HTML_EMBED.findall(body)}
        if_refs |= {(path, absolute(u)) for u in IF_REFERENCE.findall(body)}
        mails |= {(path, absolute(u)) for u in EMAIL_PROTECTION.findall(body)}
        brackets |= {(path, u) for u in BRACKET_QUERY.findall(body)}
        every |= {(path, absolute(u).split("#")[0]) for u in WAYBACK.findall(body)}
    assert (len(shortcodes), per_article) == (92, 54)  # the sample's 92 videos in 54 articles
    assert len(if_refs) == 92 and len(mails) == 3 and len(brackets) == 2

    config = write_config(tmp_path, archive, files[0].parents[1])
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    links = {(r["article_path"], r["url"]): r["role"] for r in db["links"].rows}
    assert {k for k, role in links.items() if role == "embed"} == shortcodes | html_embeds
    assert all(links.get(ref) == "embed" for ref in if_refs)
    assert all(links.get(ref) == "link" for ref in mails | brackets)
    in_ledger = {(path, url.split("#")[0]) for path, url in links}
    assert len(every) > 1000
    assert every <= in_ledger, sorted(every - in_ledger)[:5]
    assert db.execute("select sum(embed_count) from articles").fetchone()[0] == 92


def test_embed_shapes_and_link_shapes_are_read():
    body = "\n".join([
        f'{{{{< video src="{WB}/{TS}if_/https://www.youtube.com/embed/7CfPEC3Sq-o" >}}}}',
        f'<iframe width="560" src="{WB}/{TS}if_/https://player.vimeo.com/video/1"></iframe>',
        f'<video controls><source src="{WB}/{TS}if_/{HK}/media/片段 1.mp4" type="video/mp4">'
        "</video>",
        f'<a href="{WB}/{TS}/{HK}/article/1">raw html</a>',
        f"歡迎聯絡： [[email\xa0protected]](/web/{TS}/{HK}/cdn-cgi/l/email-protection#5d30)",
        f"[貼文]({WB}/{TS}/https://www.facebook.com/p/posts/1?__xts__[0]=68.AR&__tn__=-R)",
        f'{{{{< video src="{WB}/{TS}if_/https://www.facebook.com/plugins/video.php?href=x'
        '&not=1&show_text=0" >}}',
    ])
    text = (f'---\ntitle: "t"\nurl: "{WB}/{TS}/{HK}/article/9"\n'
            f'original_url: "{HK}/article/9"\n---\n\n{body}\n')
    article = parse_article(Article("a.md"), text.encode())
    assert article.embeds == [
        f"{WB}/{TS}if_/https://www.youtube.com/embed/7CfPEC3Sq-o",
        f"{WB}/{TS}if_/https://player.vimeo.com/video/1",
        f"{WB}/{TS}if_/{HK}/media/片段 1.mp4",
        f"{WB}/{TS}if_/https://www.facebook.com/plugins/video.php?href=x&not=1&show_text=0"]
    assert article.links == [
        f"{WB}/{TS}/{HK}/article/1",
        f"{WB}/{TS}/{HK}/cdn-cgi/l/email-protection#5d30",
        f"{WB}/{TS}/https://www.facebook.com/p/posts/1?__xts__[0]=68.AR&__tn__=-R"]


def test_embeds_are_checked_as_snapshots_on_every_run(tmp_path, corpus, archive, site):
    exact = "https://www.youtube.com/embed/exact"
    nearest = "https://www.youtube.com/embed/nearest"
    missing = "https://www.facebook.com/plugins/video.php?href=gone&show_text=0"
    archive.add(exact, TS, b"<html>video</html>")
    archive.add(nearest, "20190101000000", b"<html>older</html>")
    archive.add(f"{HK}/article/1", TS, b"<html>article</html>")
    path = write_article(corpus, "新聞/a.md", f"{WB}/{TS}/{HK}/article/1", f"{HK}/article/1")
    path.write_text(path.read_text(encoding="utf-8") + "".join(
        f'\n{{{{< video src="{WB}/{TS}if_/{u}" >}}}}\n' for u in (exact, nearest, missing))
        + '\n<iframe src="https://player.example/live"></iframe>\n', encoding="utf-8")
    site.route("/live", body=b"<html><title>player</title></html>")
    config = write_config(tmp_path, archive, corpus, origins={
        HK: f"http://127.0.0.1:{closed_port()}", "https://player.example": site.base_url})
    result = run_cli("run", "--config", str(config))  # no --links
    assert result.exit_code == 0, result.output

    db = sqlite_utils.Database(tmp_path / "preserver.db")
    rows = {r["url"]: r for r in db.query(
        "select l.url, l.role, u.status, u.capture_timestamp, u.method from links l "
        "join urls u on u.url = l.url where l.role = 'embed'")}
    assert {u: (r["status"], r["capture_timestamp"]) for u, r in rows.items()} == {
        f"{WB}/{TS}if_/{exact}": ("ok", TS),
        f"{WB}/{TS}if_/{nearest}": ("redirected", "20190101000000"),
        f"{WB}/{TS}if_/{missing}": ("not_found", None),
        "https://player.example/live": ("ok", None)}  # not archived: asked on the live web
    replays = [r.path for r in archive.requests if r.endpoint_class == "replay"]
    assert sum("youtube.com/embed" in p or "facebook.com" in p for p in replays) == 3
    assert not any("youtube.com" in r.path for r in archive.requests
                   if r.endpoint_class == "cdx")  # no prefix query of YouTube's embeds

    summary = json.loads(run_cli("report", "--config", str(config), "--format", "json").output)
    assert summary["urls"]["embed"] == {"not_found": 1, "ok": 2, "redirected": 1}
    assert "Embeds:" in run_cli("report", "--config", str(config)).output
    health = next(db.query("select embeds_broken, embed_count, problems from article_health"))
    assert (health["embeds_broken"], health["embed_count"]) == (1, 4)
    assert "1 of 4 embeds gone from the archive" in health["problems"]


def test_a_ledger_scanned_before_embeds_reads_every_file_again(tmp_path, corpus, archive):
    path = write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/article/1", f"{HK}/article/1")
    path.write_text(path.read_text(encoding="utf-8")
                    + f'\n{{{{< video src="{WB}/{TS}if_/https://youtu.be/x" >}}}}\n',
                    encoding="utf-8")
    config = write_config(tmp_path, archive, corpus)
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    with db.conn:  # as an older preserver left it: no column, no embeds (views: rebuilt)
        for view in db.view_names():
            db.execute(f"drop view [{view}]")
        db.execute("delete from links where role = 'embed'")
        db.execute("alter table articles drop column embed_count")
    db.conn.close()
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    assert [r[0] for r in db.execute("select url from links where role = 'embed'")] == [
        f"{WB}/{TS}if_/https://youtu.be/x"]
