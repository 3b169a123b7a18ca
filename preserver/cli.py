"""The command line: parses arguments, calls the library, formats output, picks the exit code.

Exit codes (documented in the README; cron relies on them):
  0  ran fine, nothing got worse
  1  ran fine, but something got worse (a URL or image that was good is now failing)
  2  bad usage or configuration
  3  another run holds the ledger
  4  the run failed or was interrupted (what was done is kept; rerun to resume)
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import __version__
from .audit import AuditUsageError, plan_audit
from .config import load_config
from .crawl import run_locked
from .errors import ConfigError, LedgerLockedError
from .ledger import open_ledger
from .progress import make_progress
from .report import FORMATS, format_text, format_verdicts, ledger_summary
from .schedule import Budget
from .status import RunStatus

EXIT_OK, EXIT_WORSE, EXIT_USAGE, EXIT_LOCKED, EXIT_FAILED = 0, 1, 2, 3, 4

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("config.toml"), show_default=True, help="Configuration file.")


@click.group()
@click.version_option(__version__, prog_name="preserver")
@click.option("-v", "--verbose", is_flag=True, help="Log each phase in detail.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and the summary.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Check an archive of articles, save their images, keep the history in SQLite."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormat())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    ctx.obj = {"quiet": quiet}
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def budget_options(command):
    """--max-minutes and --max-requests: an hourly cron slot ends on time; the next run
    resumes from the ledger, stalest first."""
    command = click.option("--max-requests", type=click.IntRange(min=1), default=None,
                           help="Start no new request after this many.")(command)
    return click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
                        default=None, help="Start no new work after this many minutes.")(command)


links_option = click.option(
    "--links", is_flag=True,
    help="Check the articles' body links too (archived ones from the CDX index).")


@cli.command()
@config_option
@budget_options
@links_option
def run(config_path: Path, max_minutes: float | None, max_requests: int | None,
        links: bool) -> None:
    """Scan the corpus, check what is due, save the images not saved yet."""
    _run_phases(config_path, "run", Budget(_seconds(max_minutes), max_requests),
                scan=True, check=True, images=True, links=links)


@cli.command()
@config_option
def scan(config_path: Path) -> None:
    """Read new and changed articles into the ledger (no network)."""
    _run_phases(config_path, "scan", Budget(), scan=True, check=False, images=False)


@cli.command()
@config_option
@budget_options
@links_option
def check(config_path: Path, max_minutes: float | None, max_requests: int | None,
          links: bool) -> None:
    """Check the snapshots and originals that are due."""
    _run_phases(config_path, "check", Budget(_seconds(max_minutes), max_requests),
                scan=False, check=True, images=False, links=links)


@cli.command()
@config_option
@budget_options
def images(config_path: Path, max_minutes: float | None, max_requests: int | None) -> None:
    """Save the images of the scanned articles that are not saved yet."""
    _run_phases(config_path, "images", Budget(_seconds(max_minutes), max_requests),
                scan=False, check=False, images=True)


class _LogFormat(logging.Formatter):
    """Plain lines for progress; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {text}"


def _seconds(minutes: float | None) -> float | None:
    return None if minutes is None else minutes * 60


@cli.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="text",
              show_default=True, help="text for people, markdown to paste, json/csv for scripts.")
def report(config_path: Path, fmt: str) -> None:
    """Print a summary of the ledger."""
    config = _load(config_path)
    if not config.ledger_path.exists():
        raise click.ClickException(f"no ledger yet at {config.ledger_path}: run `preserver run`")
    click.echo(FORMATS[fmt](ledger_summary(open_ledger(config.ledger_path))))


def _load(config_path: Path):
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


@cli.command()
@config_option
@click.argument("items", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def audit(config_path: Path, items: tuple[str, ...], fmt: str) -> None:
    """Check ITEMS now (article files, folders of the corpus, or single URLs), whatever the
    schedule says; print how each stands; exit 0 if all are good, 1 if any is not."""
    config = _load(config_path)
    try:
        plan = plan_audit(config, list(items))
        outcome = run_locked(config, "audit", Budget(), scan=False, check=False, images=False,
                             progress=make_progress(quiet=True), audit=plan)
    except AuditUsageError as exc:
        raise click.UsageError(str(exc)) from None
    except LedgerLockedError as exc:
        click.echo(f"Error: {exc}; not starting.", err=True)
        sys.exit(EXIT_LOCKED)
    click.echo(format_verdicts(outcome.verdicts, fmt))
    if outcome.status != RunStatus.COMPLETED:
        click.echo(f"Audit {outcome.status.value}: {outcome.error}", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(EXIT_OK if all(v["good"] for v in outcome.verdicts) else EXIT_WORSE)


@cli.command()
@config_option
@budget_options
@click.option("--max-saves", type=click.IntRange(min=1), default=None,
              help="Submit at most this many pages.")
def save(config_path: Path, max_minutes: float | None, max_requests: int | None,
         max_saves: int | None) -> None:
    """Ask the archive to capture live originals it lacks (Save Page Now, opt-in).

    Uses SPN2 with IA_ACCESS_KEY_ID / IA_SECRET_ACCESS_KEY from the environment when both
    are set, else the anonymous save API; every save is verified in the CDX index."""
    _run_phases(config_path, "save", Budget(_seconds(max_minutes), max_requests),
                scan=False, check=False, images=False, save=True, save_limit=max_saves)


def _run_phases(config_path: Path, command: str, budget: Budget, *, scan: bool, check: bool,
                images: bool, **extra) -> None:
    config = _load(config_path)
    quiet = (click.get_current_context().obj or {}).get("quiet", False)
    try:
        outcome = run_locked(config, command, budget, scan=scan, check=check, images=images,
                             progress=make_progress(quiet), **extra)
    except LedgerLockedError as exc:
        click.echo(f"Error: {exc}; not starting.", err=True)
        sys.exit(EXIT_LOCKED)
    _print_summary(config, outcome.summary, outcome.status, outcome.error)
    if outcome.status != RunStatus.COMPLETED:
        sys.exit(EXIT_FAILED)
    sys.exit(EXIT_WORSE if outcome.summary["regressions"] else EXIT_OK)


def _print_summary(config, summary: dict, status: RunStatus, error: str | None) -> None:
    click.echo(format_text(ledger_summary(open_ledger(config.ledger_path))))
    click.echo(f"This run: {summary['requests']} requests, {summary['regressions']} "
               f"regressions, status {status.value}")
    for origin, reason in summary["unreachable_hosts"].items():
        click.echo(f"Could not reach {origin}: {reason}. Its other URLs were recorded with "
                   "the same status without a request each; the next run tries again.")
    if summary.get("budget_spent"):
        click.echo("The budget (--max-minutes/--max-requests) ran out: what is left is due "
                   "first next time.")
    if error:
        click.echo(f"Run {status.value}: {error}", err=True)


@cli.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 shows the ledger to the whole network).")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True,
              help="Port to listen on.")
def serve(config_path: Path, host: str, port: int) -> None:
    """Browse the ledger in Datasette, read-only: views, queries, charts, saved images."""
    from .serve import ServeError, require_datasette, serve_ledger

    try:
        require_datasette()  # first: without it nothing else matters
        serve_ledger(_load(config_path), host, port)
    except ServeError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


@cli.group()
def export() -> None:
    """Write the collection in formats that outlive preserver: wacz, bag, site."""


wait_option = click.option(
    "--wait", "wait_seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="If a run holds the ledger, wait up to this many seconds for it to end "
         "(then exit 3).")


@export.command("wacz")
@config_option
@wait_option
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def export_wacz(config_path: Path, wait_seconds: float, out: Path) -> None:
    """Write the saved images as a WACZ file OUT (WARC, CDXJ index, pages.jsonl) that pywb
    and ReplayWeb.page replay at their original URLs and capture times."""
    from .export_wacz import write_wacz

    config = _load(config_path)
    _run_export(config, wait_seconds,
                lambda db, progress: write_wacz(db, config.media_path, out, progress))


@export.command("bag")
@config_option
@wait_option
@click.option("--organization", default="unspecified", show_default=True,
              help="Source-Organization in bag-info.txt: who deposits the bag.")
@click.option("--wacz", "with_wacz", is_flag=True,
              help="Put a WACZ of the saved images in the bag too (data/preserver.wacz).")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
def export_bag(config_path: Path, wait_seconds: float, organization: str, with_wacz: bool,
               out: Path) -> None:
    """Make or update the BagIt bag OUT: the media folder, a consistent copy of the ledger
    (and with --wacz a WACZ). A second export copies only what changed."""
    from .export_bag import write_bag

    config = _load(config_path)
    _run_export(config, wait_seconds, lambda db, progress: write_bag(
        db, config.ledger_path, config.media_path, out, organization, progress, with_wacz))


def _run_export(config, wait_seconds: float, write) -> None:
    """Hold the ledger (no run may write meanwhile), write, print what was written. Exit 3
    if a run holds it past --wait, 2 if the export cannot be made as asked, 1 if some saved
    images were left out because their files are missing or changed."""
    from .errors import ExportError
    from .exporting import ledger_for_export

    quiet = (click.get_current_context().obj or {}).get("quiet", False)
    progress = make_progress(quiet)
    try:
        with ledger_for_export(config.ledger_path, wait_seconds) as db:
            summary = write(db, progress)
    except LedgerLockedError as exc:
        click.echo(f"Error: {exc}; not exporting (try again when it ends, or pass --wait "
                   "SECONDS).", err=True)
        sys.exit(EXIT_LOCKED)
    except ExportError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    finally:
        progress.close()
    for line in summary.lines():
        click.echo(line)
    sys.exit(EXIT_WORSE if getattr(summary, "damaged", None) else EXIT_OK)
