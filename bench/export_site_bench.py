"""Time and peak memory of `preserver export site` on a generated corpus.

    python bench/export_site_bench.py [--articles 10000] [--image-kb 16] [--keep]

The corpus is cloned from the real sample (bench/corpus.py). The ledger is filled without the
archive: `preserver scan` reads the articles, then four in five of their distinct images are
recorded as saved with a file of --image-kb KB each in the media folder (the test suite's
`fill_images`), the fifth as missing. Then the export runs twice into the same folder, each in
its own process: first into an empty folder, then again with nothing changed. Prints one
Markdown line per export for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/...` puts bench/, not the repo, on the path
    sys.path.insert(0, str(REPO))

from bench import corpus  # noqa: E402
from bench.run import BIN, measure  # noqa: E402
from tests.test_export_site import fill_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--image-kb", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="preserver-export-site-"))
    try:
        corpus.generate(work / "corpus", args.articles)
        config = work / "config.toml"
        config.write_text('[corpus]\npath = "corpus"\n[ledger]\npath = "preserver.db"\n'
                          '[media]\npath = "media"\n', encoding="utf-8")
        preserver = str(BIN / "preserver")
        scan = measure([preserver, "-q", "scan", "--config", str(config)], work,
                       work / "scan", 3600)
        assert scan.code == 0, scan.stderr
        filled = fill_images(work / "preserver.db", args.image_kb * 1024)
        media = sum(f.stat().st_size for f in (work / "media").rglob("*") if f.is_file())
        for label in ("first export", "again, nothing changed"):
            m = measure([preserver, "-q", "export", "site", "--config", str(config),
                         str(work / "site")], work, work / "export", 3600)
            assert m.code == 0, m.stderr
            print(f"| preserver export site, {args.articles:,} articles, {label} | "
                  f"{m.wall:.1f} s | {m.rss_mb:.1f} MB | {m.cpu:.1f} s | "
                  f"ledger: `preserver scan`, then "
                  f"{filled['saved']:,} of {filled['distinct images']:,} distinct images "
                  f"recorded saved ({filled['image URLs']:,} image URLs; {media / 1e6:,.0f} MB "
                  f"of media) | {m.stdout.strip()} |", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
