"""bench/browse_bench.py end to end on a tiny ledger, so the benchmark cannot rot: it builds the
ledger through preserver's write API, serves it, times every page with and without a writer,
and writes its section without losing the others. No time is asserted (BENCHMARKS.md holds
the figures)."""

from __future__ import annotations

import os
import re

import pytest

from bench import browse_bench
from bench.run import other_sections
from preserver.serve import datasette_available
from tests.conftest import SHARED_CORPUS

LIST_SECTION = "<!-- list-bench: begin -->\nthe broken list\n<!-- list-bench: end -->\n"


@pytest.fixture
def shared_corpus():
    if not SHARED_CORPUS.is_dir():
        if os.environ.get("PRESERVER_REQUIRE_CORPUS"):
            pytest.fail(f"the shared corpus is missing at {SHARED_CORPUS}")
        pytest.skip("../shared/corpus is not beside this checkout")


@pytest.mark.skipif(not datasette_available(), reason="needs the [datasette] extra")
def test_browse_bench_on_a_tiny_ledger(tmp_path, shared_corpus):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n## Exact commands\n\n- preserver: x\n\n" + LIST_SECTION,
                   encoding="utf-8")
    assert browse_bench.main(["--articles", "30", "--repeat", "1", "--writer-warmup", "0.5",
                              "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    section = text[text.index(browse_bench.BEGIN):text.index(browse_bench.END)]
    for page in ("index page", "database page", "`article_health`", "`missing_images`",
                 "`article_health` `?verdict=images missing`", "query `one_article`",
                 "query `worse_since`", "`/chart`", "`preserver report`",
                 "`preserver list --format json`", "KB per article", "captures |"):
        assert page in section, page
    assert not re.search(r"\(HTTP \d+\)", section)  # every page answered 200
    assert "exit [" not in section  # report and list succeeded
    assert int(re.search(r"it wrote ([\d,]+) images", section)[1].replace(",", "")) > 0
    assert LIST_SECTION in text  # the other benchmark's section is left alone

    again = text.replace("| index page", "| old index page")
    out.write_text(again, encoding="utf-8")
    kept = other_sections(out)  # what bench/run.py keeps when it rewrites the file
    assert LIST_SECTION in kept and "| old index page" in kept and browse_bench.END in kept


def test_before_and_after_sit_side_by_side(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n" + LIST_SECTION, encoding="utf-8")
    browse_bench.put_section("### before\n\n| page | 5.0 |\n", "before", out)
    browse_bench.put_section("### after\n\n| page | 0.1 |\n", "after", out)
    browse_bench.put_section("### before\n\n| page | 4.0 |\n", "before", out)
    text = out.read_text(encoding="utf-8")
    assert text.count(browse_bench.BEGIN) == 1 and text.count(browse_bench.TITLE) == 1
    assert "| page | 4.0 |" in text and "| page | 0.1 |" in text and "5.0" not in text
    assert text.index("### before") < text.index("### after")
    assert LIST_SECTION in text
