"""`preserver save`: Save Page Now for live originals the archive lacks, SPN2 with keys from
the environment or waybackpy's anonymous save API, each save verified in the CDX index."""

from __future__ import annotations

import sqlite_utils

from tests.conftest import run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
SECRET = "s3cr3t-never-in-the-ledger"


def live_world(tmp_path, corpus, archive, site, **config_options):
    """Three articles: two whose originals are live but not archived, one archived."""
    for name in ("fresh-1", "fresh-2", "kept"):
        site.route(f"/{name}", body=b"<html><title>live</title></html>")
        write_article(corpus, f"{name}.md", f"{WB}/{TS}/{HK}/{name}", f"{HK}/{name}")
    archive.add(f"{HK}/kept", "20990101000000", b"<html>kept</html>")  # a recent capture
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url},
                          archive_extra="save_per_minute = 6000",
                          tables="[save]\npoll_seconds = 0.05\nmax_polls = 5", **config_options)
    assert run_cli("run", "--config", str(config)).exit_code == 0
    archive.clear_requests()
    return config


def saves(config) -> dict[str, dict]:
    return {r["url"]: r for r in sqlite_utils.Database(config.parent / "preserver.db")["saves"]
            .rows}


def test_anonymous_save_through_waybackpy_is_verified_in_the_cdx(tmp_path, corpus, archive,
                                                                   site, monkeypatch):
    for name in ("IA_ACCESS_KEY_ID", "IA_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = live_world(tmp_path, corpus, archive, site)
    result = run_cli("save", "--config", str(config))
    assert result.exit_code == 0, result.output
    rows = saves(config)
    assert set(rows) == {f"{HK}/fresh-1", f"{HK}/fresh-2"}  # not the one archived recently
    assert {r["method"] for r in rows.values()} == {"spn1"}
    assert {r["status"] for r in rows.values()} == {"verified"}
    assert all(r["capture_timestamp"] for r in rows.values())
    submitted = [r for r in archive.requests if r.endpoint_class == "save"]
    assert [r.method for r in submitted] == ["GET", "GET"]
    assert len(archive.captures(f"{HK}/fresh-1")) == 1


def test_spn2_with_keys_from_the_environment(tmp_path, corpus, archive, site, monkeypatch):
    monkeypatch.setenv("IA_ACCESS_KEY_ID", "access")
    monkeypatch.setenv("IA_SECRET_ACCESS_KEY", SECRET)
    config = live_world(tmp_path, corpus, archive, site)
    result = run_cli("save", "--config", str(config), "--max-saves", "1")
    assert result.exit_code == 0, result.output
    rows = saves(config)
    assert len(rows) == 1
    row = next(iter(rows.values()))
    assert (row["method"], row["status"]) == ("spn2", "verified")
    assert row["job_id"].startswith("spn2-") and "status=success" in row["answer"]
    assert any(r.method == "POST" for r in archive.requests)
    assert any(r.endpoint_class == "save_status" for r in archive.requests)
    # the secret reached the archive's header only: not the ledger, not the output
    assert SECRET not in (tmp_path / "preserver.db").read_bytes().decode("latin-1")
    assert SECRET not in result.output


def test_an_error_answer_is_checked_against_the_index(tmp_path, corpus, archive, site,
                                                      monkeypatch):
    monkeypatch.setenv("IA_ACCESS_KEY_ID", "access")
    monkeypatch.setenv("IA_SECRET_ACCESS_KEY", SECRET)
    archive.spn2_error = "error:too-many-daily-captures"
    archive.spn2_error_saves = True  # ... and yet it saved
    config = live_world(tmp_path, corpus, archive, site)
    assert run_cli("save", "--config", str(config), "--max-saves", "1").exit_code == 0
    row = next(iter(saves(config).values()))
    assert "too-many-daily-captures" in row["answer"]
    assert row["status"] == "verified"
    archive.spn2_error_saves = False  # ... and now it really did not
    assert run_cli("save", "--config", str(config), "--max-saves", "1").exit_code == 0
    statuses = sorted(r["status"] for r in sqlite_utils.Database(
        tmp_path / "preserver.db")["saves"].rows)
    assert "not_saved" in statuses
