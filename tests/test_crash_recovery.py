"""Crash recovery, proven on a real `preserver run` process.

Why this file exists: preserver is meant to run unattended from cron for hours on a corpus of
49,118 articles, and such a process gets killed: by the OOM killer, a reboot, a `kill -9`, a
Ctrl-C. The tracker asks for three promises and this file holds preserver to each of them:

- SIGKILL at any moment (during the scan, the bulk CDX paging, the replay snapshot checks, the
  live checks of originals, the middle of an image download, just after the first images are
  saved) leaves a ledger that passes `PRAGMA integrity_check`, no partial file in the media
  folder once the next run has started (`.part` leftovers are removed at the start), and a
  rerun that ends with the same ledger as one uninterrupted run: same URL statuses and capture
  timestamps, same images with the same hashes and paths, same articles, same CDX captures.
- SIGTERM and SIGINT (Ctrl-C) stop a run within 5 s, keep what was done, mark the run
  `interrupted` and exit with code 4.
- A second run started while one holds the ledger exits at once with code 3 and a clear message,
  writing nothing, and a plain sqlite3 reader can read the ledger (WAL) while a run writes.

Every run is a real subprocess (the console script: `preserver.cli` has no `__main__` guard)
against the local archive and live site of `tests/servers`. A run is killed at a chosen moment
by making the phase slow (server latency, an image whose body drips) and waiting for a
condition in the ledger or on the server, never for a fixed time. The world is built once per
module and run once uninterrupted into its own folder: that run is the reference.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from preserver.ledger import LINKS_URL_INDEX
from tests.conftest import PNG, write_article, write_config
from tests.servers import Handler, LiveSite, Request, Response, WaybackArchive

PRESERVER = Path(sys.executable).parent / "preserver"
WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
OTHER_TS = "20200105000000"
DENSE = 24  # articles under hkcnews.com/article/: one paged prefix CDX query answers them
SPARSE = 9  # articles each under their own first path segment: replay checks, exact CDX
PADDING = 5000  # copies of one article: a scan long enough to kill (and parsed in processes)
SLOW_IMAGE = f"{HK}/news_新聞/2020/slow-image.png"
SLOW_BYTES = 6000  # body of SLOW_IMAGE; when dripping, 100 bytes every 50 ms (3 s)
POLL = 0.01


# -- an archive that can drip one image ------------------------------------------------------

class DrippingArchive(WaybackArchive):
    """The local archive, plus: while `drip` is on, the replay of SLOW_IMAGE sends its headers
    at once and its body slowly, counting what it has sent in `dripped`."""

    def __init__(self) -> None:
        super().__init__()
        self.drip = False
        self.dripped = 0

    def _replay(self, request: Request) -> Response:
        response = super()._replay(request)
        if self.drip and "slow-image.png" in request.target and response.status == 200:
            response.stream = self._dripping(response)
        return response

    def _dripping(self, response: Response):
        def stream(handler: Handler, head: bool) -> None:
            handler.send_head(response, len(response.body))
            for start in range(0, 0 if head else len(response.body), 100):
                handler.wfile.write(response.body[start : start + 100])
                handler.wfile.flush()
                self.dripped += len(response.body[start : start + 100])
                if self.pause(0.05):
                    handler.close_connection = True
                    return
        return stream


# -- the world --------------------------------------------------------------------------------

@dataclass
class World:
    archive: DrippingArchive
    site: LiveSite
    corpus: Path
    articles: int  # files in the corpus
    remote_snapshots: list[str]  # snapshot URLs the CDX index does not cover: replay checks
    originals: list[str]
    images: list[str]  # image URLs as the articles write them
    reference: dict = field(default_factory=dict)  # ledger_state() of the uninterrupted run
    reference_media: dict = field(default_factory=dict)  # media_files() of that run

    def config(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return write_config(folder, self.archive, self.corpus, origins={HK: self.site.base_url})

    def calm(self) -> None:
        """Servers back to normal: no latency, no drip, empty request logs."""
        for server in (self.archive, self.site):
            server.clear_faults()
            server.clear_requests()
        self.archive.drip = False
        self.archive.dripped = 0


def html(title: str) -> bytes:
    return f"<html><head><title>{title}</title></head><body>x</body></html>".encode()


def build_world(corpus: Path, archive: DrippingArchive, site: LiveSite) -> World:
    """Articles whose URLs, between them, take every path a run has: snapshots answered from
    the CDX index (ok, nearest capture, archived redirect, never archived) and from the replay
    endpoint, live originals (ok, 404, redirected), images saved, missing, invalid, slow."""
    archive.cdx_page_size = 10  # prefix queries span pages: a kill can land between them
    remote, originals, images = [], [], []
    for i in range(DENSE):
        original = f"{HK}/article/{i}/title-{i}"
        if i % 4 == 0:
            archive.add(original, TS, html(f"article {i}"))
        elif i % 4 == 1:
            archive.add(original, OTHER_TS, html(f"article {i}"))  # nearest capture only
        elif i % 4 == 3:
            archive.add(original, TS, b"", status=301, location=f"{HK}/article/{i}b")
        if i % 3 == 0:
            site.route(f"/article/{i}/title-{i}", body=html(f"live {i}"))
        elif i % 3 == 1:
            site.route(f"/article/{i}/title-{i}", status=404)
        else:
            site.redirect(f"/article/{i}/title-{i}", f"/article/{i}-new")
            site.route(f"/article/{i}-new", body=html(f"moved {i}"))
        srcs = []
        for j in range(2):
            image = f"{HK}/news_新聞/2020/{i}-{j}.png"
            if i == 7 and j == 0:
                archive.add(image, TS, html("Error"), "image/png")  # invalid: not an image
            elif not (i % 6 == 5 and j == 1):  # else never archived: missing
                archive.add(image, TS, PNG + f"{i}-{j}".encode() * 50, "image/png")
            srcs.append(f"{WB}/{TS}im_/{image}")
        if i == 0:
            archive.add(SLOW_IMAGE, TS, PNG + b"\x01" * (SLOW_BYTES - len(PNG)), "image/png")
            srcs.append(f"{WB}/{TS}im_/{SLOW_IMAGE}")
        write_article(corpus, f"core/article_{i}.md", f"{WB}/{TS}/{original}", original, srcs)
        originals.append(original)
        images += srcs
    for i in range(SPARSE):
        original = f"{HK}/sparse{i}/page"
        if i % 3 == 0:
            archive.add(original, TS, html(f"sparse {i}"))
        elif i % 3 == 1:
            archive.add(original, OTHER_TS, html(f"sparse {i}"))
        site.route(f"/sparse{i}/page", body=html(f"sparse live {i}"), status=200 + 210 * (i % 2))
        write_article(corpus, f"core/sparse_{i}.md", f"{WB}/{TS}/{original}", original)
        remote.append(f"{WB}/{TS}/{original}")
        originals.append(original)
    template = (corpus / "core/article_0.md").read_text(encoding="utf-8").split("<figure>")[0]
    for i in range(PADDING):
        path = corpus / f"padding/{i // 500}/copy_{i}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template + f"copy {i}\n", encoding="utf-8")
    return World(archive, site, corpus, DENSE + SPARSE + PADDING, remote, originals, images)


# -- looking at a ledger and a media folder ---------------------------------------------------

def ledger_of(folder: Path) -> Path:
    return folder / "preserver.db"


def read(ledger: Path, sql: str, params=()) -> list[tuple] | None:
    """Rows of a query on a fresh plain read connection; None while the ledger is not there
    yet (mode=rw: never create it)."""
    if not ledger.exists():
        return None
    try:
        with closing(sqlite3.connect(f"file:{ledger}?mode=rw", uri=True, timeout=5)) as con:
            return con.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # no such table yet
        return None


def scalar(ledger: Path, sql: str, params=()) -> int:
    rows = read(ledger, sql, params)
    return rows[0][0] if rows else 0


def integrity(ledger: Path) -> str:
    with closing(sqlite3.connect(ledger)) as con:
        return "; ".join(row[0] for row in con.execute("PRAGMA integrity_check"))


def run_statuses(ledger: Path) -> list[str]:
    return [row[0] for row in read(ledger, "select status from runs order by id") or []]


def ledger_state(ledger: Path) -> dict[str, dict]:
    """What must be equal after a crash and a rerun; no times, attempts, run ids or counts."""
    with closing(sqlite3.connect(ledger)) as con:
        def table(sql: str) -> dict:
            return {row[0]: row[1:] for row in con.execute(sql)}
        return {
            "urls (status, capture_timestamp)":
                table("select url, status, capture_timestamp from urls"),
            "images (status, sha256, local_path)":
                table("select url, status, sha256, local_path from images"),
            "articles (parse_status, sha256)":
                table("select path, parse_status, sha256 from articles"),
            "links (count)": table("select article_path || ' ' || role, count(*) from links "
                                   "group by article_path, role"),
            "captures": table("select urlkey || ' ' || timestamp || ' ' || statuscode || ' ' || "
                              "digest, original from captures"),
        }


def differences(got: dict[str, dict], want: dict[str, dict]) -> list[str]:
    """Human-readable differences between two ledger_state()s, at most 8 per table."""
    lines = []
    for name, expected in want.items():
        actual = got[name]
        diff = [f"{name}: {k}: got {actual.get(k, '(absent)')}, want {expected.get(k, '(absent)')}"
                for k in sorted(set(actual) | set(expected), key=str)
                if actual.get(k) != expected.get(k)]
        lines += diff[:8] + ([f"{name}: ... {len(diff) - 8} more"] if len(diff) > 8 else [])
    return lines


def media_files(folder: Path) -> dict[str, str]:
    """Every file under the media folder (relative path -> sha256), `.part` files included."""
    root = folder / "media"
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# -- running preserver as a process -----------------------------------------------------------

def session_members(sid: int) -> list[str]:
    """Live processes of a session (pid and command line): what a killed run left behind."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if os.getsid(int(entry.name)) == sid and state != "Z":
                fds = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
                lock = [f for f in fds if f.endswith(".lock")]
                members.append(f"pid {entry.name} holding {lock or 'no lock file'}")
        except OSError:
            continue
    return members


class Runs:
    """Starts preserver processes, each in its own session (so a Ctrl-C can reach its whole
    process group), with output in files (never a full pipe); kills what is left at the end."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, config: Path, command: str = "run") -> subprocess.Popen:
        n = len(self.started)
        out = open(config.parent / f"stdout.{n}", "wb")  # closed in cleanup()
        err = open(config.parent / f"stderr.{n}", "wb")
        proc = subprocess.Popen([str(PRESERVER), command, "--config", str(config)],
                                stdout=out, stderr=err, start_new_session=True)
        proc.files = (out, err)
        self.started.append(proc)
        return proc

    @staticmethod
    def output(proc: subprocess.Popen) -> str:
        for handle in proc.files:
            handle.flush()
        out, err = (Path(h.name).read_text(errors="replace") for h in proc.files)
        return f"--- stdout ---\n{out[-1500:]}\n--- stderr ---\n{err[-2500:]}"

    def finish(self, proc: subprocess.Popen, timeout: float) -> int:
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"preserver did not end within {timeout} s\n{self.output(proc)}")

    def run(self, config: Path, timeout: float = 40, command: str = "run"
            ) -> tuple[int, subprocess.Popen]:
        proc = self.start(config, command)
        return self.finish(proc, timeout), proc

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            try:  # the group of a killed run: parse workers it may have left behind
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for handle in proc.files:
                handle.close()


def wait_for(condition: Callable[[], object], what: str, proc: subprocess.Popen | None = None,
             timeout: float = 20):
    """Poll until condition() is truthy; fail clearly if the run ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}\n"
                        f"{Runs.output(proc)}")
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what} in vain")
        time.sleep(POLL)


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The world, and the ledger and media of one uninterrupted run of it (the reference)."""
    root = tmp_path_factory.mktemp("crash")
    corpus = root / "corpus"
    corpus.mkdir()
    with DrippingArchive() as archive, LiveSite() as site:
        built = build_world(corpus, archive, site)
        runs = Runs()
        try:
            code, proc = runs.run(built.config(root / "reference"))
            assert code == 0, f"the reference run failed\n{runs.output(proc)}"
        finally:
            runs.cleanup()
        ledger = ledger_of(root / "reference")
        built.reference = ledger_state(ledger)
        built.reference_media = media_files(root / "reference")
        _check_reference(built, ledger)
        built.calm()
        yield built


def _check_reference(world: World, ledger: Path) -> None:
    """The reference really covers every path a run can take (else comparing proves little)."""
    images = world.reference["images (status, sha256, local_path)"]
    assert {row[0] for row in images.values()} == {"saved", "missing", "invalid"}
    urls = world.reference["urls (status, capture_timestamp)"]
    assert {urls[u][0] for u in world.remote_snapshots} == {"ok", "redirected", "not_found"}
    assert {urls[u][0] for u in world.originals} >= {"ok", "not_found", "redirected"}
    assert scalar(ledger, "select count(*) from articles") == world.articles
    assert scalar(ledger, "select max(pages) from cdx_queries where match_type = 'prefix'") > 1
    assert sorted(world.reference_media) == sorted(r[2] for r in images.values() if r[2])


@pytest.fixture
def calm_world(world):
    world.calm()
    yield world
    world.calm()


@pytest.fixture
def runs():
    started = Runs()
    yield started
    started.cleanup()


# -- the moments to kill at -------------------------------------------------------------------

def in_list(urls: list[str]) -> str:
    return "(" + ", ".join("?" * len(urls)) + ")"


@dataclass
class Moment:
    name: str
    what: str  # the condition waited for, in words
    slow_down: Callable[[World], None]
    ready: Callable[[World, Path], object]


def _articles_partly_scanned(world: World, ledger: Path) -> bool:
    return 0 < scalar(ledger, "select count(*) from articles") < world.articles


def _cdx_paging(world: World, ledger: Path) -> bool:
    return scalar(ledger, "select count(*) from cdx_queries where match_type = 'prefix' "
                          "and status = 'partial' and pages >= 1") > 0


def _some_snapshots_checked(world: World, ledger: Path) -> bool:
    urls = world.remote_snapshots
    done = scalar(ledger, f"select count(distinct url) from checks where url in {in_list(urls)}",
                  urls)
    return 0 < done < len(urls)


def _some_originals_checked(world: World, ledger: Path) -> bool:
    urls = world.originals
    done = scalar(ledger, f"select count(distinct url) from checks where url in {in_list(urls)}",
                  urls)
    return 0 < done < len(urls)


def _image_dripping(world: World, ledger: Path) -> bool:
    return world.archive.dripped >= 200  # headers and the first chunks are out


def _first_images_saved(world: World, ledger: Path) -> bool:
    saved = scalar(ledger, "select count(*) from images where status = 'saved'")
    return 0 < saved < len(world.reference_media)


def _latency(cls: str, seconds: float) -> Callable[[World], None]:
    def slow_down(world: World) -> None:
        server = world.site if cls == "live" else world.archive
        server.latency_by_class = {cls: seconds}
    return slow_down


def _drip(world: World) -> None:
    world.archive.drip = True


MOMENTS = [
    Moment("scan", "some but not all articles committed", lambda w: None,
           _articles_partly_scanned),
    Moment("cdx-paging", "a prefix CDX query with pages stored, not complete",
           _latency("cdx", 0.15), _cdx_paging),
    Moment("snapshot-replay", "some but not all replay snapshot checks recorded",
           _latency("replay", 0.25), _some_snapshots_checked),
    Moment("live-checks", "some but not all originals checked", _latency("live", 0.25),
           _some_originals_checked),
    Moment("mid-download", "the slow image's body half sent", _drip, _image_dripping),
    Moment("first-images-saved", "some but not all images saved", _latency("replay", 0.1),
           _first_images_saved),
]
BY_NAME = {m.name: m for m in MOMENTS}


# -- SIGKILL ----------------------------------------------------------------------------------

@pytest.mark.parametrize("moment", MOMENTS, ids=[m.name for m in MOMENTS])
def test_sigkill_then_rerun_ends_like_an_uninterrupted_run(calm_world, runs, tmp_path, moment):
    world = calm_world
    config = world.config(tmp_path / "run")
    ledger, media = ledger_of(config.parent), config.parent / "media"
    moment.slow_down(world)
    proc = runs.start(config)
    wait_for(lambda: moment.ready(world, ledger), moment.what, proc)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(5) == -signal.SIGKILL
    dripped = world.archive.dripped
    world.calm()

    # right after the kill: a sound database, the run still marked running, no torn file
    assert integrity(ledger) == "ok"
    assert run_statuses(ledger) == ["running"]
    left = media_files(config.parent)
    torn = {p: h for p, h in left.items()
            if not p.endswith(".part") and world.reference_media.get(p) != h}
    assert not torn, f"files under media that are not the complete image: {sorted(torn)}"
    saved = read(ledger, "select local_path, sha256 from images where status = 'saved'") or []
    assert {p: left.get(p) for p, _ in saved} == dict(saved), "a saved row without its file"

    if moment.name == "mid-download":
        assert 0 < dripped < SLOW_BYTES, f"not killed mid-body: {dripped} of {SLOW_BYTES} sent"
        slow = [p for p in world.reference_media if p.endswith("slow-image.png")]
        assert slow and slow[0] not in left, "the half-downloaded image was written"
        assert scalar(ledger, "select count(*) from images where url like '%slow-image%' "
                              "and status = 'saved'") == 0
        # preserver holds a download in memory and writes it in one go (mkstemp .part, fsync,
        # rename), so a kill mid-body leaves no .part: plant the leftover that a kill inside
        # that write leaves, to see the next start remove it.
        leftover = media / Path(slow[0]).parent / ".preserver-tmp-k1ll3d.part"
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(PNG[:5])

    # the rerun. `kill -9 PID` (or the OOM killer) ends that one process: whatever it forked
    # (the scan's parse workers) must not outlive it holding the ledger's lock
    survivors = session_members(proc.pid)
    code, rerun = runs.run(config)
    assert code == 0, (f"the rerun after a SIGKILL {moment.name} exited {code}; processes of "
                       f"the killed run still alive: {survivors or 'none'}\n{runs.output(rerun)}")
    assert integrity(ledger) == "ok"
    assert run_statuses(ledger) == ["interrupted", "completed"]
    after = media_files(config.parent)
    assert not [p for p in after if p.endswith(".part")], "a .part file survived the rerun"
    diff = differences(ledger_state(ledger), world.reference)
    assert not diff, "ledger after kill + rerun differs from the uninterrupted run:\n" + \
        "\n".join(diff)
    assert after == world.reference_media
    index = scalar(ledger, "select count(*) from sqlite_master where name = ?",
                   [LINKS_URL_INDEX])
    assert index == 1, "the index a large scan drops is back"


# -- SIGTERM and Ctrl-C ---------------------------------------------------------------------

@pytest.mark.parametrize("phase", ["scan", "checks"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_ctrl_c_stop_within_5_s_and_keep_the_work(calm_world, runs, tmp_path,
                                                               signum, phase):
    """SIGTERM is sent to the process (`kill PID`); SIGINT to its whole process group, as a
    terminal's Ctrl-C does (the scan's parse workers get it too)."""
    world = calm_world
    config = world.config(tmp_path / "run")
    ledger = ledger_of(config.parent)
    if phase == "checks":
        world.site.latency_by_class = {"live": 0.2}
    ready = BY_NAME["live-checks" if phase == "checks" else "scan"]
    proc = runs.start(config)
    wait_for(lambda: ready.ready(world, ledger), ready.what, proc)
    checks_before = scalar(ledger, "select count(*) from checks")
    articles_before = scalar(ledger, "select count(*) from articles")
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    sent = time.monotonic()
    try:
        code = proc.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 5 s after {signum.name} during the {phase}\n"
                    f"{runs.output(proc)}")
    took = time.monotonic() - sent
    assert code == 4, f"exit {code} after {signum.name}\n{runs.output(proc)}"
    assert took < 5
    assert integrity(ledger) == "ok"
    (run,) = read(ledger, "select id, status, finished_at, checks, error, requests from runs")
    assert run[1] == "interrupted" and run[2], run
    checks = scalar(ledger, "select count(*) from checks where run_id = ?", [run[0]])
    assert checks >= checks_before and run[3] == checks, "the checks done are committed"
    assert scalar(ledger, "select count(*) from articles") >= articles_before
    if phase == "checks":
        assert checks > 0
        assert run[5] and run[5] >= scalar(  # the run record says what was sent
            ledger, "select count(*) from checks where run_id = ? and method = 'live'",
            [run[0]]), run
    assert "status interrupted" in runs.output(proc)
    left = wait_for_no_members(proc.pid)
    assert not left, f"processes of the interrupted run still alive: {left}"


def wait_for_no_members(sid: int, timeout: float = 3) -> list[str]:
    deadline = time.monotonic() + timeout
    while (members := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return members


# -- the lock, and readers ------------------------------------------------------------------

def test_a_second_run_exits_3_at_once_and_readers_read_while_a_run_writes(calm_world, runs,
                                                                           tmp_path):
    world = calm_world
    world.site.latency_by_class = {"live": 0.15}  # the first run holds the ledger ~4 s
    config = world.config(tmp_path / "run")
    ledger = ledger_of(config.parent)
    first = runs.start(config)
    wait_for(lambda: run_statuses(ledger) == ["running"], "the first run started", first)

    started = time.monotonic()
    code, second = runs.run(config, timeout=10)
    took = time.monotonic() - started
    assert code == 3, f"second run exited {code}\n{runs.output(second)}"
    assert took < 5, f"the second run took {took:.1f} s to give up"
    err = Path(second.files[1].name).read_text()
    assert "holds the ledger" in err and str(first.pid) in err, err
    assert Path(second.files[0].name).read_text() == ""
    assert first.poll() is None, "the first run must still hold the ledger for this to prove"
    assert run_statuses(ledger) == ["running"], "the second run wrote a runs row"
    lock = ledger.with_name("preserver.db.lock").read_text()
    assert lock == str(first.pid), f"the lock file names {lock!r}, not the first run"

    # a plain sqlite3 connection reads while the first run writes (WAL)
    seen = []
    with closing(sqlite3.connect(ledger, timeout=1)) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        deadline = time.monotonic() + 30
        while first.poll() is None and time.monotonic() < deadline:
            seen.append(reader.execute("select count(*) from checks").fetchone()[0])
            time.sleep(0.02)
    assert runs.finish(first, 30) == 0, runs.output(first)
    assert len(set(seen)) >= 3, f"the reader saw no writes happening: {sorted(set(seen))}"
    assert seen == sorted(seen)
    assert run_statuses(ledger) == ["completed"]
