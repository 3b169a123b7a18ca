"""The `export` command group: wacz, bag and site, each writing from a ledger held so that
no run writes meanwhile."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_options import EXIT_LOCKED, EXIT_OK, EXIT_USAGE, EXIT_WORSE, config_option, load_or_exit
from .errors import LedgerLockedError
from .progress import make_progress


@click.group()
def export() -> None:
    """Write the collection in formats that outlive preserver: wacz, bag, site."""


wait_option = click.option(
    "--wait", "wait_seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="If a run holds the ledger, wait up to this many seconds for it to end "
         "(then exit 3).")


@export.command()
@config_option
@wait_option
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
def site(config_path: Path, wait_seconds: float, out: Path) -> None:
    """Copy the corpus to OUT/ so it reads without the archive: saved images copied beside
    it and referenced by relative links, OUT/index.md listing the articles by health.
    Again into the same OUT/: only what changed is written."""
    import sqlite_utils

    from .export_site import export_site

    config = load_or_exit(config_path)
    _run_export(config, wait_seconds, lambda db, progress: export_site(
        config, sqlite_utils.Database(db), out, progress))


@export.command("wacz")
@config_option
@wait_option
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def export_wacz(config_path: Path, wait_seconds: float, out: Path) -> None:
    """Write the saved images as a WACZ file OUT (WARC, CDXJ index, pages.jsonl) that pywb
    and ReplayWeb.page replay at their original URLs and capture times."""
    from .export_wacz import write_wacz

    config = load_or_exit(config_path)
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

    config = load_or_exit(config_path)
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
