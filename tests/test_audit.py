"""`preserver audit`: one-off answers about named articles, folders and URLs."""

import json

from tests.conftest import PNG, closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"


def test_audit_of_an_article_checks_it_now_and_exits_by_the_result(tmp_path, corpus, archive,
                                                                    site):
    archive.add(f"{HK}/good", TS, b"<html>a</html>")
    archive.add(f"{HK}/uploads/a.png", TS, PNG, "image/png")
    write_article(corpus, "good.md", f"{WB}/{TS}/{HK}/good", f"{HK}/good",
                  [f"{WB}/{TS}im_/{HK}/uploads/a.png"])
    write_article(corpus, "gone.md", f"{WB}/{TS}/{HK}/gone", f"{HK}/gone")
    site.route("/good", body=b"<html><title>ok</title></html>")
    config = write_config(tmp_path, archive, corpus, schedule="",
                          origins={HK: site.base_url})
    assert run_cli("run", "--config", str(config)).exit_code == 0  # a normal run first
    archive.clear_requests()

    good = run_cli("audit", "--config", str(config), str(corpus / "good.md"))
    assert good.exit_code == 0, good.output
    assert "4 of 4 good" in good.output
    # checked now, on the replay itself, although the schedule says nothing is due
    assert any(r.endpoint_class == "replay" and "/good" in r.path for r in archive.requests)

    gone = run_cli("audit", "--config", str(config), "--format", "json",
                   f"{WB}/{TS}/{HK}/gone")
    assert gone.exit_code == 1
    rows = json.loads(gone.output)
    assert rows == [{"kind": "snapshot", "what": f"{WB}/{TS}/{HK}/gone", "status": "not_found",
                     "good": False, "detail": "archive answered HTTP 404"}]
    runs = [r["command"] for r in __import__("sqlite_utils").Database(
        tmp_path / "preserver.db")["runs"].rows]
    assert runs.count("audit") == 2  # recorded like any run


def test_audit_refuses_what_it_cannot_check(tmp_path, corpus, archive):
    config = write_config(tmp_path, archive, corpus,
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    outside = tmp_path / "elsewhere.md"
    outside.write_text("---\n---\n")
    for item in ("nope.md", str(outside), "ftp://example.com/x"):
        result = run_cli("audit", "--config", str(config), item)
        assert result.exit_code == 2, (item, result.output)
    assert not (tmp_path / "preserver.db").exists()  # refused before anything was written
