"""One file per image, and files that stay the bytes that were saved: names that sanitise alike
each get their own file through a real run, ledgers of the old path mapping are repaired without
re-downloading what is unique, and a budgeted sha256 sample per run finds changed files."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import unquote

import pytest
import sqlite_utils

from preserver.config import load_config
from preserver.errors import ConfigError
from tests.conftest import JPEG, PNG, closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
COLLIDING = ["photo_1.jpg", "photo:1.jpg", "photo|1.jpg", "photo%5C1.jpg", "photo%3F1.jpg"]
UNIQUE = f"{HK}/news_新聞/hk-discuss/2017/09/法庭-李明哲.png"


def image_world(tmp_path, corpus, archive, originals: list[str], **config):
    """One article citing each image in `originals`, each archived with its own bytes: the
    bodies by image URL, and the config."""
    bodies = {}
    for i, original in enumerate(originals):
        body = (PNG if original.endswith(".png") else JPEG) + f"image {i}".encode()
        archive.add(original, TS, body, "image/png" if original.endswith(".png") else
                    "image/jpeg")
        bodies[f"{WB}/{TS}im_/{original}"] = body
    page = f"{HK}/article/1"
    archive.add(page, TS, b"<html>a</html>")
    write_article(corpus, "a.md", f"{WB}/{TS}/{page}", page, list(bodies))
    config.setdefault("origins", {HK: f"http://127.0.0.1:{closed_port()}"})
    return bodies, write_config(tmp_path, archive, corpus, **config)


def images_of(config) -> dict[str, dict]:
    db = sqlite_utils.Database(config.parent / "preserver.db")
    return {row["url"]: row for row in db["images"].rows}


def assert_each_saved_to_its_own_file(config, bodies: dict[str, bytes]) -> dict[str, dict]:
    rows = images_of(config)
    assert {url: rows[url]["status"] for url in bodies} == {url: "saved" for url in bodies}
    paths = [rows[url]["local_path"] for url in bodies]
    assert len({p.casefold() for p in paths}) == len(bodies)
    for url, body in bodies.items():
        assert (config.parent / "media" / rows[url]["local_path"]).read_bytes() == body, url
        assert rows[url]["sha256"] == hashlib.sha256(body).hexdigest()
    return rows


def test_colliding_names_each_saved_byte_exact_to_their_own_file(tmp_path, corpus, archive):
    bodies, config = image_world(tmp_path, corpus, archive,
                                 [f"{HK}/uploads/{name}" for name in COLLIDING])
    assert run_cli("run", "--config", str(config)).exit_code == 0
    rows = assert_each_saved_to_its_own_file(config, bodies)
    assert rows[f"{WB}/{TS}im_/{HK}/uploads/photo_1.jpg"]["local_path"] == \
        "www.hkcnews.com/uploads/photo_1.jpg"  # the plain name keeps its readable path


def old_mapping(config, bodies: dict[str, bytes]) -> None:
    """Turn the ledger and media folder into what the previous version left: the five names
    on one path, holding the bytes of the last download, every row claiming that file."""
    db = sqlite_utils.Database(config.parent / "preserver.db")
    media = config.parent / "media"
    shared = "www.hkcnews.com/uploads/photo_1.jpg"
    last = list(bodies.values())[-1]
    for url in bodies:
        row = db["images"].get(url)
        (media / row["local_path"]).unlink()
    (media / shared).write_bytes(last)
    with db.conn:
        db.execute("drop table migrations")  # older versions had none
        db.conn.executemany(
            "update images set local_path = ?, sha256 = ?, bytes = ?, verified_at = null "
            "where url = ?",
            [(shared, hashlib.sha256(body).hexdigest(), len(body), url)
             for url, body in bodies.items()])


def test_old_ledgers_refetch_shared_files_and_keep_unique_ones(tmp_path, corpus, archive):
    colliding = [f"{HK}/uploads/{name}" for name in COLLIDING]
    bodies, config = image_world(tmp_path, corpus, archive, [*colliding, UNIQUE],
                                 schedule="")  # the real schedule: nothing is due again
    assert run_cli("run", "--config", str(config)).exit_code == 0
    unique_url = f"{WB}/{TS}im_/{UNIQUE}"
    unique = config.parent / "media" / images_of(config)[unique_url]["local_path"]
    assert unique.relative_to(config.parent / "media").as_posix() == \
        "www.hkcnews.com/news_新聞/hk-discuss/2017/09/法庭-李明哲.png"
    stamp = unique.stat().st_mtime_ns
    old_mapping(config, {url: body for url, body in bodies.items() if url != unique_url})
    archive.clear_requests()
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 0  # a repair, not a regression
    fetched = [unquote(r.path) for r in archive.requests if r.endpoint_class == "replay"]
    assert len(fetched) == 5 and not any("李明哲" in target for target in fetched)
    assert_each_saved_to_its_own_file(config, bodies)
    assert unique.stat().st_mtime_ns == stamp  # unique: never written again
    archive.clear_requests()
    assert run_cli("run", "--config", str(config)).exit_code == 0
    assert "replay" not in archive.counts()  # repaired once, then left alone


def test_fixity_rehashes_a_budget_per_run_and_refetches_changed_files(tmp_path, corpus,
                                                                      archive):
    originals = [f"{HK}/news_新聞/2020/08/圖-{i}.png" for i in range(4)]
    size = len(PNG + b"image 0")
    origins = {HK: f"http://127.0.0.1:{closed_port()}"}
    bodies, config = image_world(tmp_path, corpus, archive, originals, schedule="",
                                 origins=origins,
                                 media_extra=f"fixity_bytes_per_run = {2 * size}")
    assert {len(b) for b in bodies.values()} == {size}
    assert run_cli("run", "--config", str(config)).exit_code == 0
    db = sqlite_utils.Database(config.parent / "preserver.db")
    assert db["fixity"].count == 0  # nothing was saved before this run's images
    checked = []
    for _ in range(2):  # two runs of two files each: every file re-hashed once
        time.sleep(1.05)  # verified_at has a resolution of one second
        assert run_cli("run", "--config", str(config)).exit_code == 0
        run_id = db.execute("select max(id) from runs").fetchone()[0]
        rows = list(db.query("select * from fixity where run_id = ?", [run_id]))
        assert len(rows) == 2 and all(r["ok"] == 1 for r in rows)
        checked += [r["local_path"] for r in rows]
    assert sorted(checked) == sorted(r["local_path"] for r in images_of(config).values())
    assert all(r["verified_at"] for r in images_of(config).values())

    # bit rot that keeps the size: only the hash sees it
    victim_url = next(iter(bodies))
    victim = config.parent / "media" / images_of(config)[victim_url]["local_path"]
    victim.write_bytes(bodies[victim_url][:-1] + b"X")
    write_config(tmp_path, archive, corpus, schedule="", origins=origins,
                 media_extra=f"fixity_bytes_per_run = {10 * size}")
    archive.clear_requests()
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 1  # a regression: a saved file changed
    assert "Fixity: 1 saved files changed, 0 vanished" in result.output
    assert archive.counts()["replay"] == 1  # fetched again in the same run, nothing else
    assert victim.read_bytes() == bodies[victim_url]
    failed = list(db.query("select * from fixity where ok = 0"))
    assert len(failed) == 1 and failed[0]["local_path"] == victim.relative_to(
        config.parent / "media").as_posix()
    assert failed[0]["expected_sha256"] == hashlib.sha256(bodies[victim_url]).hexdigest()
    assert failed[0]["actual_sha256"] == hashlib.sha256(victim.read_bytes()[:-1] + b"X") \
        .hexdigest()
    assert images_of(config)[victim_url]["status"] == "saved"
    assert db.execute("select regressions from runs order by id desc").fetchone()[0] == 1

    # a file that vanished: the stat every run catches it, and it is fetched again at once
    victim.unlink()
    archive.clear_requests()
    result = run_cli("run", "--config", str(config))
    assert result.exit_code == 1 and "0 saved files changed, 1 vanished" in result.output
    assert archive.counts()["replay"] == 1 and victim.read_bytes() == bodies[victim_url]


def test_fixity_budget_is_checked(tmp_path):
    config = tmp_path / "config.toml"
    base = '[corpus]\npath = "c"\n[ledger]\npath = "l.db"\n[media]\npath = "m"\n'
    config.write_text(base + "fixity_bytes_per_run = 0\n", encoding="utf-8")
    assert load_config(config).media.fixity_bytes_per_run == 0
    config.write_text(base + "fixity_bytes_per_run = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="fixity_bytes_per_run"):
        load_config(config)
    config.write_text(base + "fixity = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(config)


def test_a_new_image_never_overwrites_a_file_an_old_version_placed_on_its_path(tmp_path, corpus,
                                                                            archive):
    """`photo:1.jpg` alone, saved by the old mapping at `photo_1.jpg` (unique, so kept); then an
    article cites `photo_1.jpg` itself, whose path that is now."""
    colon, plain = f"{HK}/uploads/photo:1.jpg", f"{HK}/uploads/photo_1.jpg"
    bodies, config = image_world(tmp_path, corpus, archive, [colon], schedule="")
    assert run_cli("run", "--config", str(config)).exit_code == 0
    old_mapping(config, bodies)  # one row on `photo_1.jpg`: nothing shared
    archive.add(plain, TS, JPEG + b"the plain one", "image/jpeg")
    bodies[f"{WB}/{TS}im_/{plain}"] = JPEG + b"the plain one"
    write_article(corpus, "b.md", f"{WB}/{TS}/{HK}/article/2", f"{HK}/article/2",
                  [f"{WB}/{TS}im_/{plain}"])
    archive.add(f"{HK}/article/2", TS, b"<html>b</html>")
    assert run_cli("run", "--config", str(config)).exit_code == 0
    rows = images_of(config)
    assert rows[f"{WB}/{TS}im_/{colon}"]["status"] == "failed"  # not silently overwritten
    assert rows[f"{WB}/{TS}im_/{colon}"]["damaged_at"]
    assert run_cli("run", "--config", str(config)).exit_code == 0  # fetched to its own path
    assert_each_saved_to_its_own_file(config, bodies)
