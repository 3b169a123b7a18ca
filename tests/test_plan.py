"""`preserver plan` against the local archive and live site: it sends no request and writes
nothing to the ledger, and what it announces (URLs due, requests per endpoint class) is what
the run that follows finds due and sends, on a first run and on a later one."""

from __future__ import annotations

import json

import pytest
import sqlite_utils

from preserver.config import load_config
from preserver.plan import format_plan, make_plan
from preserver.progress import seconds_at_limit
from tests.conftest import closed_port, run_cli, write_article, write_config

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
DENSE, SPARSE = 22, 2  # articles under hkcnews.com/article/ (one prefix query), elsewhere


@pytest.fixture
def world(tmp_path, corpus, archive, site):
    """Real-corpus-shaped articles: most under one prefix, a few sparse ones; CJK images,
    one of them never archived; one original gone."""
    originals = [f"{HK}/article/{n}/新聞-{n}" for n in range(DENSE)]
    originals += [f"{HK}/opinion/評論 {n}" for n in range(SPARSE)]
    for n, original in enumerate(originals):
        archive.add(original, TS, b"<html><title>a</title></html>")
        images = [f"{HK}/news_新聞/hk-discuss/2017/09/法庭 {n}-{i}.png" for i in range(2)]
        for image in images[: 1 if n == 0 else 2]:  # article 0's second image: never archived
            archive.add(image, TS, PNG, "image/png")
        write_article(corpus, f"{n}/article_{n}.md", f"{WB}/{TS}/{original}", original,
                      [f"{WB}/{TS}im_/{image}" for image in images])
        path = original.removeprefix(HK)
        site.route(path.replace(" ", "%20") if n < DENSE else path, status=404 if n == 1 else 200,
                   body=b"<html><title>a</title></html>")
    return write_config(tmp_path, archive, corpus, origins={HK: site.base_url},
                        archive_extra="cdx_per_minute = 24\nreplay_per_minute = 540")


def plan_json(config) -> dict:
    result = run_cli("plan", "--config", str(config), "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.output.lstrip().startswith("{"), result.output[:1500]
    return json.loads(result.output)


def test_plan_sends_nothing_and_announces_what_the_run_sends(world, archive, site):
    ledger = world.parent / "preserver.db"
    for run in ("first", "second"):
        archive.clear_requests()
        site.clear_requests()
        before = ledger.read_bytes() if ledger.exists() else None
        plan = plan_json(world)
        assert archive.requests == [] and site.requests == []  # not one request
        assert (ledger.read_bytes() if ledger.exists() else None) == before  # untouched
        articles = DENSE + SPARSE
        assert plan["due"] == {"snapshot": articles, "original": articles, "embed": 0,
                               "image": 2 * articles if run == "first" else 1}, run
        assert plan["image_urls"] == plan["due"]["image"]

        result = run_cli("run", "--config", str(world))
        assert result.exit_code in (0, 1), result.output
        sent = archive.counts()
        assert sent.get("cdx", 0) == plan["cdx_pages"] + plan["cdx_exact"], (run, sent, plan)
        # the first plan cannot know that one image has no capture (no index yet): it counts
        # a replay the run does not send; once the index exists the plan knows
        unknown = 1 if run == "first" else 0
        assert sent.get("replay", 0) == plan["replays"] - unknown, (run, sent, plan)
        assert len(site.requests) == sum(plan["live"].values()) == articles
        assert plan["requests"] - unknown == len(archive.requests) + len(site.requests)
        assert plan["live"] == {site.base_url.split("//")[1]: articles}
        checked = sqlite_utils.Database(ledger).execute(
            "select count(*) from checks where run_id = (select max(id) from runs)").fetchone()[0]
        assert checked >= plan["due"]["snapshot"] + plan["due"]["original"]
    # the first run made the index: the second answers every snapshot from it
    assert plan["from_index"]["snapshot"] == DENSE + SPARSE
    assert plan["cdx_pages"] == 0 and plan["cdx_exact"] == 0


def test_the_estimate_is_the_progress_arithmetic_and_names_the_budget_that_cuts(world):
    config = load_config(world)
    plan = make_plan(config)  # a first run: two prefix queries, then the rest side by side
    assert (plan.cdx_queries, plan.cdx_pages, plan.cdx_exact) == (2, 2, SPARSE)  # articles,
    assert plan.replays == SPARSE + 2 * (DENSE + SPARSE)  # images; sparse snapshots, images
    cdx, replay = 24 / 60, 540 / 60
    assert plan.seconds == {"cdx": seconds_at_limit(2 + SPARSE, cdx),
                            "replay": seconds_at_limit(plan.replays, replay),
                            "live": seconds_at_limit(DENSE + SPARSE, 1000)}
    assert plan.total_seconds == pytest.approx(seconds_at_limit(2, cdx) + max(
        seconds_at_limit(plan.replays, replay), seconds_at_limit(SPARSE, cdx),
        plan.seconds["live"]))
    text = format_plan(plan, config, max_minutes=0.1)
    assert "--max-minutes 0.1 cuts this run" in text
    assert "images            48  distinct images to fetch (48 image URLs)" in text
    assert "Any --max-minutes below 1 cuts this run" in format_plan(plan, config)
    assert "enough" in format_plan(plan, config, max_minutes=60)
    assert "--max-requests 10 cuts this run" in format_plan(plan, config, max_requests=10)


def test_plan_without_a_corpus_exits_2(tmp_path, archive):
    config = write_config(tmp_path, archive, tmp_path / "nowhere")
    result = run_cli("plan", "--config", str(config))
    assert result.exit_code == 2 and "corpus folder not found" in result.output
    assert not (tmp_path / "preserver.db").exists()


def test_a_host_unreachable_at_its_last_check_counts_one_probe(world, site):
    dead = f"127.0.0.1:{closed_port()}"
    world.write_text(world.read_text(encoding="utf-8").replace(site.base_url, f"http://{dead}"),
                     encoding="utf-8")
    run_cli("run", "--config", str(world))  # every original: connection refused
    plan = plan_json(world)
    assert plan["due"]["original"] == DENSE + SPARSE
    assert plan["unreachable"] == {dead: DENSE + SPARSE} and plan["live"] == {dead: 1}
    assert "counted as one probe" in run_cli("plan", "--config", str(world)).output
