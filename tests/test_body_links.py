"""`--links`: the articles' body links, archived ones answered from the CDX index, live ones
checked on the live web; without the flag they are left alone."""

import sqlite_utils

from tests.conftest import closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"


def test_body_links_are_checked_only_when_asked(tmp_path, corpus, archive, site):
    archive.add(f"{HK}/aboutus/", TS, b"<html>about</html>")
    for i in range(25):  # a prefix worth a bulk query: the archived link is answered from it
        archive.add(f"{HK}/aboutus/{i}", TS, b"x")
    path = write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/aboutus/0", f"{HK}/aboutus/0")
    path.write_text(path.read_text(encoding="utf-8") + (
        f"\n[subscribe](/web/{TS}/{HK}/aboutus/0#subscribe)\n"
        f"[gone](/web/{TS}/{HK}/aboutus/missing)\n"
        f'<a href="https://elsewhere.example/page">live</a>\n'
        "[mail](mailto:editor@hkcnews.com)\n"), encoding="utf-8")
    for i in range(1, 25):
        write_article(corpus, f"b{i}.md", f"{WB}/{TS}/{HK}/aboutus/{i}", f"{HK}/aboutus/{i}")
    site.route("/page", body=b"<html><title>fine</title></html>")
    config = write_config(tmp_path, archive, corpus,
                          origins={HK: site.base_url, "https://elsewhere.example": site.base_url})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    link_rows = list(db.query("select l.url, u.status from links l left join urls u "
                              "on u.url = l.url where l.role = 'link'"))
    assert len(link_rows) == 4 and {r["status"] for r in link_rows} == {None}

    replays_before = archive.counts().get("replay", 0)
    result = run_cli("run", "--config", str(config), "--links")
    assert result.exit_code == 0, result.output
    urls = {r["url"]: r for r in db["urls"].rows}
    subscribe = urls[f"{WB}/{TS}/{HK}/aboutus/0#subscribe"]
    assert (subscribe["status"], subscribe["method"]) == ("ok", "cdx")
    assert urls[f"{WB}/{TS}/{HK}/aboutus/missing"]["status"] == "not_found"
    assert urls["https://elsewhere.example/page"]["status"] == "ok"
    assert "mailto:editor@hkcnews.com" not in urls  # not a URL we can check
    assert archive.counts().get("replay", 0) == replays_before  # no replay request for links


def test_one_link_named_by_every_article_costs_one_cdx_query(tmp_path, corpus, archive):
    """Citizen News: every article links /aboutus/ at its own timestamp (49,118 links)."""
    archive.add(f"{HK}/aboutus/", "20210101000000", b"<html>about</html>")
    for i in range(30):
        ts = f"202107{i + 1:02d}000000"
        archive.add(f"{HK}/x/{i}", ts, b"<html>x</html>")  # the prefix answer matches them
        path = write_article(corpus, f"a{i}.md", f"{WB}/{ts}/{HK}/x/{i}", f"{HK}/x/{i}")
        path.write_text(path.read_text(encoding="utf-8")
                        + f"\n[subscribe](/web/{ts}/{HK}/aboutus/#subscribe)\n",
                        encoding="utf-8")
    config = write_config(tmp_path, archive, corpus, origins={
        HK: f"http://127.0.0.1:{closed_port()}"}, archive_extra="bulk_threshold = 20")
    assert run_cli("check", "--config", str(config), "--links").exit_code == 0  # not scanned
    assert run_cli("scan", "--config", str(config)).exit_code == 0
    archive.clear_requests()
    assert run_cli("check", "--config", str(config), "--links").exit_code == 0
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    rows = list(db.query("select u.status, u.method, u.capture_timestamp from links l "
                         "join urls u on u.url = l.url where l.role = 'link'"))
    assert len(rows) == 30
    assert {(r["status"], r["method"], r["capture_timestamp"]) for r in rows} == {
        ("redirected", "cdx", "20210101000000")}
    exact = [r for r in archive.requests if "matchType=exact" in r.path]
    assert len(exact) == 1 and "aboutus" in exact[0].path
    assert archive.counts().get("replay", 0) == 0
