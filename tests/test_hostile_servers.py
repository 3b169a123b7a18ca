"""Faults from servers and attacks through URLs: each one ends with the right status in the
ledger, no crash, nothing half-written, and no request where our policy forbids one."""

from __future__ import annotations

import email.utils
import os
import time
import tracemalloc
from pathlib import Path

import pytest
import sqlite_utils

from tests.conftest import PNG, closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"


def ledger(config) -> sqlite_utils.Database:
    return sqlite_utils.Database(config.parent / "preserver.db")


def no_partial_files(media) -> bool:
    return not [p for p in media.rglob("*") if p.name.endswith(".part")] if media.exists() \
        else True


@pytest.fixture
def one_page(tmp_path, corpus, archive, site):
    """Run one article whose original is `path` on the live site; return its urls row."""
    def run(path: str, **config_options) -> dict:
        original = f"{HK}{path}"
        archive.add(original, TS, b"<html>a</html>")
        write_article(corpus, "a.md", f"{WB}/{TS}/{original}", original)
        config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url},
                              **config_options)
        result = run_cli("run", "--config", str(config))
        assert result.exit_code == 0, result.output
        db = ledger(config)
        attempts = db.execute("select attempts from checks where url = ? order by id desc",
                              [original]).fetchone()[0]
        return {**db["urls"].get(original), "attempts_made": attempts}
    return run


def test_429_without_retry_after_is_retried_then_recorded(one_page, site):
    site.route("/busy", status=429)
    row = one_page("/busy")
    # the site being busy says nothing about the page: an attempt, not a verdict
    assert (row["status"], row["last_attempt_status"]) == (None, "rate_limited")
    assert row["attempts_made"] == 3
    assert len(site.requests) == 3  # bounded: never loops


def test_503_that_recovers_after_two_tries(one_page, site):
    site.fail_times("/flaky", 503, 2, then_status=200, then_body=b"<html>ok</html>")
    row = one_page("/flaky")
    assert (row["status"], row["attempts"]) == ("ok", 3)


def test_429_with_retry_after_as_an_http_date(tmp_path, corpus, archive):
    archive.add(f"{HK}/x", TS, b"<html>a</html>")
    write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/x", f"{HK}/x")
    # a date some seconds ahead: HTTP dates count whole seconds, and a loaded machine may take
    # a second or two to scan before the first request
    when = email.utils.formatdate(time.time() + 4, usegmt=True)
    archive.fail_next("replay", status=429, headers={"Retry-After": when})
    config = write_config(tmp_path, archive, corpus,
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    row = ledger(config)["urls"].get(f"{WB}/{TS}/{HK}/x")
    assert (row["status"], row["attempts"]) == ("ok", 2)
    assert row["elapsed_ms"] >= 900  # waited until the date it named


def test_connection_reset_mid_body(one_page, site):
    site.reset_mid_body("/reset")
    row = one_page("/reset")
    assert (row["status"], row["last_attempt_status"]) == (None, "connection_error")


def test_body_shorter_than_its_content_length(one_page, site):
    site.short_body("/short", declared=10_000, actual=100)
    row = one_page("/short")
    assert (row["status"], row["last_attempt_status"]) == (None, "connection_error")


def test_a_body_that_drips_forever_hits_the_total_deadline(one_page, site):
    site.drip("/drip", bytes_per_second=200)  # never a read timeout, never an end
    started = time.monotonic()
    row = one_page("/drip", live_extra="")
    assert (row["status"], row["last_attempt_status"]) == (None, "timeout")
    assert "no complete answer within 3 s" in row["last_attempt_error"]
    assert time.monotonic() - started < 20  # 3 tries of a 3 s deadline, not forever


@pytest.mark.parametrize("location", [
    "file:///etc/passwd", "ftp://example.com/x", "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:{port}/internal", "http://[::1]:{port}/internal",
])
def test_redirects_to_other_schemes_and_private_addresses_are_blocked(
        tmp_path, corpus, archive, site, location):
    """The stand-in origin is trusted (it is configuration); where it redirects is not."""
    other = closed_port()
    site.redirect("/go", location.format(port=other), 302)
    original = f"{HK}/go"
    archive.add(original, TS, b"<html>a</html>")
    write_article(corpus, "a.md", f"{WB}/{TS}/{original}", original)
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url},
                          allow_private=False)
    assert run_cli("run", "--config", str(config)).exit_code == 0
    row = ledger(config)["urls"].get(original)
    assert row["status"] == "blocked", row["error"]


def image_world(tmp_path, corpus, archive, site, images: dict[str, callable], **options):
    """One article whose images are live URLs on the site (not archive captures)."""
    archive.add(f"{HK}/a", TS, b"<html>a</html>")
    srcs = []
    for path, setup in images.items():
        setup(path)
        srcs.append(f"{HK}{path}")
    write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/a", f"{HK}/a", srcs)
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url}, **options)
    return config


def test_gzip_bomb_is_capped_on_decoded_bytes_with_flat_memory(tmp_path, corpus, archive, site):
    config = image_world(tmp_path, corpus, archive, site,
                         {"/bomb.png": lambda p: site.gzip_bomb(p, 256 * 1024 * 1024)},
                         security_extra="max_image_bytes = 5000000")
    tracemalloc.start()
    assert run_cli("run", "--config", str(config)).exit_code == 0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    row = ledger(config)["images"].get(f"{HK}/bomb.png")
    assert row["status"] == "too_large"
    assert peak < 60 * 1024 * 1024, f"peak {peak:,} bytes for a 256 MiB bomb"
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.png"))


def test_images_over_the_cap_with_and_without_content_length(tmp_path, corpus, archive, site):
    big = PNG + b"\x00" * 20_000
    config = image_world(tmp_path, corpus, archive, site, {
        "/declared.png": lambda p: site.route(p, body=big, content_type="image/png"),
        "/undeclared.png": lambda p: site.drip(p, bytes_per_second=2_000_000),
    }, security_extra="max_image_bytes = 10000")
    assert run_cli("run", "--config", str(config)).exit_code == 0
    images = {r["url"]: r for r in ledger(config)["images"].rows}
    assert images[f"{HK}/declared.png"]["status"] == "too_large"
    assert images[f"{HK}/undeclared.png"]["status"] == "too_large"
    assert no_partial_files(tmp_path / "media")


def test_planted_symlink_in_media_folder_is_not_followed(tmp_path, corpus, archive, site):
    outside = tmp_path / "outside"
    outside.mkdir()
    media = tmp_path / "media"
    media.mkdir()
    os.symlink(outside, media / "www.hkcnews.com")
    config = image_world(tmp_path, corpus, archive, site, {
        "/x.png": lambda p: site.route(p, body=PNG, content_type="image/png")})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    row = ledger(config)["images"].get(f"{HK}/x.png")
    assert row["status"] == "failed" and "symlink" in row["error"]
    assert list(outside.iterdir()) == []


def test_image_urls_with_dot_segments_stay_inside_media(tmp_path, corpus, archive, site):
    evil = f"{WB}/{TS}im_/{HK}/a/../../../../etc/cron.d/x.png"
    archive.add(f"{HK}/a/../../../../etc/cron.d/x.png", TS, PNG, "image/png")
    archive.add(f"{HK}/a", TS, b"<html>a</html>")
    write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/a", f"{HK}/a", [evil])
    config = write_config(tmp_path, archive, corpus, origins={HK: site.base_url})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    row = ledger(config)["images"].get(evil)
    media = (tmp_path / "media").resolve()
    if row["local_path"]:
        assert (media / row["local_path"]).resolve().is_relative_to(media)
    written = [p for p in tmp_path.rglob("*.png")]
    assert all(p.resolve().is_relative_to(media) for p in written)


def test_symlink_loop_in_the_corpus_is_recorded_and_the_run_goes_on(tmp_path, corpus, archive):
    os.symlink(corpus / "loop_b.md", corpus / "loop_a.md")
    os.symlink(corpus / "loop_a.md", corpus / "loop_b.md")
    os.symlink(corpus, corpus / "self")  # a directory loop: never followed
    archive.add(f"{HK}/a", TS, b"<html>a</html>")
    write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/a", f"{HK}/a")
    config = write_config(tmp_path, archive, corpus,
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    assert run_cli("run", "--config", str(config)).exit_code == 0
    rows = {r["path"]: r for r in ledger(config)["articles"].rows}
    assert rows["a.md"]["parse_status"] == "ok"
    assert rows["loop_a.md"]["parse_status"] == "error"
    assert "symbolic links" in rows["loop_a.md"]["parse_error"]


def test_gzip_pages_are_decoded_before_they_are_read(one_page, site):
    import gzip

    body = gzip.compress(b"<html><head><title>404 Not Found</title></head></html>")
    site.route("/gz", body=body, headers={"Content-Encoding": "gzip"})
    assert one_page("/gz")["status"] == "soft_404"  # the title was read through the gzip


def test_full_disk_while_saving_images(tmp_path, corpus, archive):
    """The media folder is a 64 KiB tmpfs (in a private mount namespace): the images that do
    not fit are `failed` with the reason, nothing half-written stays, the run ends cleanly."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for the full-disk test")
    archive.add(f"{HK}/a", TS, b"<html>a</html>")
    srcs = []
    for i in range(4):
        image = f"{HK}/uploads/{i}.png"
        archive.add(image, TS, PNG + bytes([i]) * 30_000, "image/png")
        srcs.append(f"{WB}/{TS}im_/{image}")
    write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/a", f"{HK}/a", srcs)
    config = write_config(tmp_path, archive, corpus,
                          origins={HK: f"http://127.0.0.1:{closed_port()}"})
    media = tmp_path / "media"
    media.mkdir()
    preserver = Path(sys.executable).parent / "preserver"
    script = (f"mount -t tmpfs -o size=64k tmpfs {media} && {preserver} run --config {config}; "
              f"echo exit=$?; find {media} -name '*.part' | wc -l")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                            text=True, timeout=120)
    assert "exit=0" in result.stdout, result.stdout + result.stderr
    assert result.stdout.strip().endswith("0"), "a .part file was left behind"
    rows = {r["url"]: r for r in ledger(config)["images"].rows}
    statuses = sorted(r["status"] for r in rows.values())
    assert "saved" in statuses and "failed" in statuses
    failed = [r for r in rows.values() if r["status"] == "failed"]
    assert all("No space left on device" in r["error"] for r in failed)
    run = list(ledger(config)["runs"].rows)[-1]
    assert run["status"] == "completed"
