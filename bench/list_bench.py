"""Time `preserver list` (the broken list) on a ledger the size of the real corpus.

    python bench/list_bench.py [--articles 49118] [--repeat 5] [--out BENCHMARKS.md] [--keep]

`list` reads, it makes no request: what it costs is SQLite and writing rows. So this builds
the ledger a real run would leave without running one: it generates a corpus (bench/corpus.py,
cloned from the 269 real articles), scans it with `preserver scan`, then fills `urls`, `checks`
and `images` by SQL with a failing mix like the real corpus's (the site is dead: most
originals fail; a few percent of snapshots and images are gone; some failures were last seen
rate-limited, so their time comes from an earlier conclusive check). Each listing runs
`--repeat` times in its own process with stdout to a file; the table gives the median wall
time, the peak RSS of all runs and the rows written. The section goes into --out between
markers (replaced when present, else appended).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/list_bench.py` puts bench/, not the repo, first
    sys.path.insert(0, str(REPO))

from bench import corpus  # noqa: E402
from bench.run import BIN, git_head, machine, measure, write_toml  # noqa: E402

BEGIN, END = "<!-- list-bench: begin -->", "<!-- list-bench: end -->"
EARLIER, LATER = "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"
# per role, per mille of URLs: (status, share); the rest are good ("ok", or "saved" images)
MIX = {
    "snapshot": [("not_found", 30), ("redirected", 50)],
    "original": [("dns_error", 900), ("not_found", 40), ("soft_404", 10)],
    "image": [("missing", 30), ("invalid", 5), ("failed", 5)],
    "link": [("not_found", 80), ("timeout", 20), ("client_error", 20)],
}
RATE_LIMITED_LATER = 50  # per mille of failures last checked rate-limited
LISTINGS = [
    ("by URL, text", []), ("by URL, json", ["--format", "json"]),
    ("by URL, csv", ["--format", "csv"]),
    ("by URL, json, `--role image --status missing`",
     ["--format", "json", "--role", "image", "--status", "missing"]),
    ("by article, text", ["--by-article"]),
    ("by article, json", ["--by-article", "--format", "json"]),
]


def status_for(url: str, role: str) -> str:
    """A stable pick from MIX by the URL's CRC."""
    draw = zlib.crc32(url.encode()) % 1000
    for status, share in MIX.get(role, []):
        if draw < share:
            return status
        draw -= share
    return "saved" if role == "image" else "ok"


def fill(ledger: Path) -> dict:
    """urls, checks and images as a real run would leave them; returns counts."""
    db = sqlite3.connect(ledger)
    counts: dict = {}
    urls, checks, images = [], [], []
    rows = db.execute("select url, min(role) from links group by url").fetchall()
    for url, role in rows:
        status = status_for(url, role)
        good = status in ("ok", "redirected", "saved")
        url_status = "ok" if status == "saved" else "not_found" if status == "missing" \
            else "ok" if role == "image" else status
        later = not good and zlib.crc32(url.encode()[::-1]) % 1000 < RATE_LIMITED_LATER
        method = "live" if role in ("original", "link") else "replay"
        checks.append((url, EARLIER, url_status, method))
        if later:
            checks.append((url, LATER, "rate_limited", method))
        urls.append((url, "rate_limited" if later else url_status, LATER if later else EARLIER,
                     None if good else f"{status} (bench)", None if good else EARLIER))
        if role == "image":
            images.append((url, status, LATER, None if good else f"{status} (bench)"))
        key = f"{role} {status}"
        counts[key] = counts.get(key, 0) + 1
    with db:
        db.executemany("insert into urls (url, status, checked_at, error, first_failed_at) "
                       "values (?, ?, ?, ?, ?)", urls)
        db.executemany("insert into checks (run_id, url, checked_at, status, method) "
                       "values (1, ?, ?, ?, ?)", checks)
        db.executemany("insert into images (url, status, checked_at, error) values (?, ?, ?, ?)",
                       images)
    counts["links"] = db.execute("select count(*) from links").fetchone()[0]
    counts["urls"], counts["checks"] = len(urls), len(checks)
    db.execute("pragma wal_checkpoint(truncate)")
    db.close()
    return counts


def build(folder: Path, articles: int) -> Path:
    corpus.generate(folder / "corpus", articles)
    config = scan(folder)
    shutil.rmtree(folder / "corpus")  # `list` reads the ledger alone
    return config


def scan(folder: Path) -> Path:
    """`preserver scan` of folder/corpus into folder/preserver.db; returns its config.toml."""
    settings = {"corpus": {"path": str(folder / "corpus")},
                "ledger": {"path": str(folder / "preserver.db")},
                "media": {"path": str(folder / "media")}}
    config = write_toml(settings, folder / "config.toml")
    done = measure([str(BIN / "preserver"), "scan", "--config", str(config)], folder,
                   folder / "scan", 3600)
    if done.code != 0:
        raise SystemExit(f"scan failed ({done.code}): {done.stderr[-2000:]}")
    return config


def rows_written(fmt: list[str], stdout: str) -> int:
    if "json" in fmt:
        return max(stdout.count("\n") - 2, 0)  # one element a line between [ and ]
    if "csv" in fmt:
        return -1  # multi-line cells: counted from the text form instead
    last = stdout.rstrip("\n").rsplit("\n", 1)[-1]
    return int(last.split()[0]) if last.split() and last.split()[0].isdigit() else -1


def run(args: argparse.Namespace, folder: Path) -> str:
    started = time.monotonic()
    config = build(folder, args.articles)
    counts = fill(folder / "preserver.db")
    bare = [measure([str(BIN / "preserver"), "--version"], folder, folder / f"version-{k}", 60)
            for k in range(args.repeat)]
    startup = statistics.median(m.wall for m in bare)
    startup_cpu = statistics.median(m.cpu for m in bare)
    lines = []
    for name, extra in LISTINGS:
        cmd = [str(BIN / "preserver"), "list", "--config", str(config), *extra]
        runs = [measure(cmd, folder, folder / f"list-{k}", 600) for k in range(args.repeat)]
        if any(m.code != 0 for m in runs):
            raise SystemExit(f"{name}: exit {[m.code for m in runs]}: {runs[0].stderr[-2000:]}")
        walls = sorted(m.wall for m in runs)
        size = (folder / f"list-{args.repeat - 1}.stdout").stat().st_size
        written = rows_written(extra, runs[-1].stdout)
        cpu = statistics.median(m.cpu for m in runs)
        lines.append(f"| {name} | {statistics.median(walls):.2f} | "
                     + ", ".join(f"{w:.2f}" for w in walls)
                     + f" | {cpu:.2f} | {max(m.rss_mb for m in runs):.1f} | "
                     + (f"{written:,}" if written >= 0 else "—") + f" | {size / 1e6:.1f} |")
    mix = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())
                    if k.split()[0] in MIX and k.split()[1] not in ("ok", "redirected", "saved"))
    db_mb = (folder / "preserver.db").stat().st_size / 1e6
    return "\n".join([
        BEGIN,
        "## The broken list (`preserver list`)",
        "",
        f"Command: `python bench/list_bench.py --articles {args.articles} --repeat "
        f"{args.repeat}`",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; total time of this benchmark "
        f"{time.monotonic() - started:,.0f} s; {machine()}; preserver commit {git_head()}",
        f"- ledger: {args.articles:,} articles scanned by `preserver scan` from a generated "
        f"corpus; {counts['links']:,} links, {counts['urls']:,} distinct URLs, "
        f"{counts['checks']:,} checks; {db_mb:,.0f} MB",
        f"- failing (filled by SQL, a stable pick per URL): {mix}; "
        f"{RATE_LIMITED_LATER / 10:g}% of failures last checked rate-limited",
        f"- each listing {args.repeat} times, each in its own process, stdout to a file; "
        "wall time median (and every run), CPU (user + system) median, peak RSS the highest "
        "of the runs; rows: URLs (or articles) written",
        f"- the start-up alone (`preserver --version`): {startup:.2f} s wall, "
        f"{startup_cpu:.2f} s CPU (median of {args.repeat})",
        "",
        "| listing | median wall s | runs s | median CPU s | peak RSS MB | rows | output MB |",
        "|---|---|---|---|---|---|---|",
        *lines,
        END,
    ])


def put_section(section: str, out: Path, begin: str = BEGIN, end: str = END) -> None:
    """The section (which starts with `begin` and ends with `end`) replaces the one between
    those markers in out, or is appended."""
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    out.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=49_118)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="preserver-list-bench-"))
    try:
        section = run(args, folder)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(section)
    put_section(section, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
