"""The command line: parses arguments, calls the library, formats output, picks the exit code.

Exit codes (documented in the README; cron relies on them):
  0  ran fine, nothing got worse
  1  ran fine, but something got worse (a URL or image that was good is now failing)
  2  bad usage or configuration; no corpus folder (nothing written); nothing to read yet
     (report, list, serve without a ledger, or with an empty or outdated one)
  3  another run holds the ledger
  4  the run failed or was interrupted (what was done is kept; rerun to resume)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__
from .audit import AuditUsageError, plan_audit
from .broken import FORMATS as BROKEN_FORMATS
from .broken import Filters, broken_articles, failing_urls, parse_since, write_articles, write_urls
from .cli_export import export
from .cli_options import (
    CONFIG_HELP,
    CONFIG_TYPE,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_WORSE,
    QUIET_HELP,
    VERBOSE_HELP,
    config_option,
    load_or_exit,
    set_logging,
)
from .errors import LedgerLockedError, LedgerMissingError
from .ledger import open_ledger, open_readonly
from .progress import make_progress
from .report import FORMATS, format_text, format_verdicts, ledger_summary
from .run import RunOptions, run_locked
from .schedule import Budget
from .status import RunStatus


@click.group()
@click.version_option(__version__, prog_name="preserver")
@click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
@click.option("--config", "config_path", type=CONFIG_TYPE, default=None, help=CONFIG_HELP)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool, config_path: Path | None) -> None:
    """Check an archive of articles, save their images, keep the history in SQLite."""
    ctx.obj = {"quiet": quiet, "verbose": verbose, "config": config_path}
    set_logging(ctx.obj)


def budget_options(command):
    """--max-minutes and --max-requests: an hourly cron slot ends on time; the next run
    resumes from the ledger, stalest first."""
    command = click.option("--max-requests", type=click.IntRange(min=1), default=None,
                           help="Start no new request after this many.")(command)
    return click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
                        default=None, help="Start no new work after this many minutes.")(command)


exclude_option = click.option(
    "--exclude", "exclude", multiple=True, metavar="PATTERN",
    help="Never request URLs matching this regular expression (repeatable; added to "
         "[live] exclude); they are recorded as excluded.")

links_option = click.option(
    "--links", is_flag=True,
    help="Check the articles' body links too (archived ones from the CDX index).")


@cli.command()
@config_option
@budget_options
@links_option
@exclude_option
def run(config_path: Path, max_minutes: float | None, max_requests: int | None,
        links: bool, exclude: tuple[str, ...]) -> None:
    """Scan the corpus, check what is due, save the images not saved yet."""
    _run_phases(config_path, RunOptions("run", Budget(_seconds(max_minutes), max_requests),
                                        links=links), exclude)


@cli.command()
@config_option
def scan(config_path: Path) -> None:
    """Read new and changed articles into the ledger (no network)."""
    _run_phases(config_path, RunOptions("scan", Budget(), check=False, images=False))


@cli.command()
@config_option
@budget_options
@links_option
@exclude_option
def check(config_path: Path, max_minutes: float | None, max_requests: int | None,
          links: bool, exclude: tuple[str, ...]) -> None:
    """Check the snapshots and originals that are due."""
    _run_phases(config_path, RunOptions("check", Budget(_seconds(max_minutes), max_requests),
                                        scan=False, images=False, links=links), exclude)


@cli.command()
@config_option
@budget_options
def images(config_path: Path, max_minutes: float | None, max_requests: int | None) -> None:
    """Save the images of the scanned articles that are not saved yet."""
    _run_phases(config_path, RunOptions("images", Budget(_seconds(max_minutes), max_requests),
                                        scan=False, check=False))


@cli.command("plan")
@config_option
@budget_options
@links_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def plan_command(config_path: Path, max_minutes: float | None, max_requests: int | None,
                 links: bool, fmt: str) -> None:
    """Show what `run` would do now and how long it would take at the configured limits, and
    whether --max-minutes/--max-requests would cut it. No request; the ledger is not touched."""
    import json

    from .plan import format_plan, make_plan

    config = load_or_exit(config_path)
    if not config.corpus_path.is_dir():
        click.echo(f"Error: corpus folder not found: {config.corpus_path}", err=True)
        sys.exit(EXIT_USAGE)
    planned = make_plan(config, links)
    if fmt == "json":
        click.echo(json.dumps(planned.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_plan(planned, config, max_minutes, max_requests))



def _seconds(minutes: float | None) -> float | None:
    return None if minutes is None else minutes * 60


@cli.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="text",
              show_default=True, help="text for people, markdown to paste, json/csv for scripts.")
def report(config_path: Path, fmt: str) -> None:
    """Print a summary of the ledger (read-only)."""
    click.echo(FORMATS[fmt](ledger_summary(_read_ledger(config_path))))


def _read_ledger(config_path: Path):
    """The ledger, opened read-only; exit 2 in words if there is none to read."""
    try:
        return open_readonly(load_or_exit(config_path).ledger_path)
    except LedgerMissingError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


def _since(ctx: click.Context, param, value: str | None) -> str | None:
    try:
        return None if value is None else parse_since(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date or time "
                                 "(e.g. 2026-12-01 or 2026-12-01T08:00:00Z)") from None


@cli.command("list")
@config_option
@click.option("--role", "roles", multiple=True, metavar="ROLE",
              help="Only this role (snapshot, original, image, link, ...); repeatable.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Only this status (not_found, missing, timeout, ...); repeatable.")
@click.option("--since", callback=_since, metavar="DATE",
              help="Only failures checked on or after this ISO date or time (UTC).")
@click.option("--host", "hosts", multiple=True, metavar="HOST",
              help="Only URLs of this host or its subdomains (for a Wayback URL, the "
                   "original's host or web.archive.org); repeatable.")
@click.option("--by-article", is_flag=True,
              help="Articles with problems, each with its failing URLs and unsaved images.")
@click.option("--format", "fmt", type=click.Choice(BROKEN_FORMATS), default="text",
              show_default=True, help="json is an array, written as it goes.")
def list_(config_path: Path, roles: tuple[str, ...], statuses: tuple[str, ...],
          since: str | None, hosts: tuple[str, ...], by_article: bool, fmt: str) -> None:
    """List what is broken: each failing URL with the articles citing it (read-only)."""
    db = _read_ledger(config_path)
    filters = Filters(roles, statuses, since, tuple(h.lower() for h in hosts))
    try:
        if by_article:
            write_articles(broken_articles(db, filters), fmt, sys.stdout)
        else:
            write_urls(failing_urls(db, filters), fmt, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `preserver list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit


@cli.command()
@config_option
@click.argument("items", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@exclude_option
def audit(config_path: Path, items: tuple[str, ...], fmt: str,
          exclude: tuple[str, ...]) -> None:
    """Check ITEMS now (article files, folders of the corpus, or single URLs), whatever the
    schedule says; print how each stands; exit 0 if all are good, 1 if any is not."""
    config = load_or_exit(config_path, exclude)
    try:
        plan = plan_audit(config, list(items))
        options = RunOptions("audit", Budget(), scan=False, check=False, images=False,
                             audit=plan)
        outcome = run_locked(config, options, make_progress(quiet=True))
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
    _run_phases(config_path, RunOptions("save", Budget(_seconds(max_minutes), max_requests),
                                        scan=False, check=False, images=False, save=True,
                                        save_limit=max_saves))


def _run_phases(config_path: Path, options: RunOptions, exclude: tuple[str, ...] = ()) -> None:
    config = load_or_exit(config_path, exclude)
    if options.scan and not config.corpus_path.is_dir():  # before the lock: nothing written
        click.echo(f"Error: corpus folder not found: {config.corpus_path} "
                   f"([corpus] path in {config_path})", err=True)
        sys.exit(EXIT_USAGE)
    quiet = (click.get_current_context().obj or {}).get("quiet", False)
    try:
        outcome = run_locked(config, options, make_progress(quiet))
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
        click.echo(f"Could not reach {origin}: {reason}. Its other URLs got the same "
                   "outcome without a request each (a verdict only where the failure was "
                   "conclusive); the next run tries again.")
    stopped = summary.get("stopped_classes", {})
    if stopped:  # one line, however many requests the stop saved
        left = sum(summary.get("left_due", {}).values())
        click.echo(f"rate_limited: {'; '.join(stopped.values())}. {left} left due for the "
                   "next run, none recorded as failing.")
    fixity = summary.get("fixity", {})
    if fixity.get("changed") or fixity.get("vanished") or fixity.get("gone_or_resized"):
        click.echo(f"Fixity: {fixity.get('changed', 0)} saved files changed, "
                   f"{fixity.get('vanished', 0) + fixity.get('gone_or_resized', 0)} vanished "
                   "or changed size on disk; their images were fetched again.")
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
        serve_ledger(load_or_exit(config_path), host, port)
    except ServeError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


cli.add_command(export)
