"""`preserver serve`: browse the ledger in Datasette, read-only.

Datasette (the optional `[datasette]` extra) opens the ledger as a normal, mutable file whose
connections are read-only (`mode=ro`), not `--immutable`: a cron run may write while people
browse, and WAL lets them read meanwhile. What it shows is shipped in `preserver/datasette/`:
metadata (titles, descriptions of every table, view and column, units, sort orders, facets,
canned queries), a custom page `/chart` (SVG bar charts, no JavaScript) and a plugin that turns
URLs, article paths and saved image files into links. The media folder is served at `/media/`
by a route of the plugin (told the folder through the metadata's plugin settings), not by
Datasette's `--static`, which answers 404 for every path with a CJK character, a space or a `%`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import tempfile
from pathlib import Path

import yaml

from .config import Config
from .errors import LedgerMissingError
from .ledger import VIEWS, open_readonly

PLUGIN_NAME = "preserver_links"  # the plugin module's name: its settings key in the metadata

log = logging.getLogger("preserver")
PACKAGE_DATA = Path(__file__).resolve().parent / "datasette"
METADATA = PACKAGE_DATA / "metadata.yaml"
TEMPLATES = PACKAGE_DATA / "templates"
PLUGINS = PACKAGE_DATA / "plugins"
PLACEHOLDER = "LEDGER_DB"  # stands for the database's name in metadata.yaml
INSTALL_HINT = ("install the extra: pip install 'preserver[datasette]' "
                "(from a clone: pip install -e '.[datasette]')")
SETTINGS = {  # Datasette's time limits stay at their defaults: the views read kept health rows
    "truncate_cells_html": 200,
    # trying every column of a view as a facet costs seconds on a large corpus; the useful
    # facets are configured in the metadata
    "suggest_facets": "off",
}


class ServeError(Exception):
    """Why the ledger cannot be served, in words (the CLI exits 2 with it)."""


def datasette_available() -> bool:
    return importlib.util.find_spec("datasette") is not None


def require_datasette() -> None:
    if not datasette_available():
        raise ServeError(f"Datasette is not installed; {INSTALL_HINT}")


def database_name(ledger_path: Path) -> str:
    """The name Datasette gives the ledger: its file name without the extension."""
    return Path(ledger_path).stem


def metadata_for(ledger_path: Path, media_path: Path | None = None) -> dict:
    """The shipped metadata, keyed and linked for this ledger's database name; with the media
    folder the plugin serves at /media/."""
    from datasette.utils import tilde_encode

    name = database_name(ledger_path)
    text = METADATA.read_text(encoding="utf-8").replace(PLACEHOLDER, tilde_encode(name))
    metadata = yaml.safe_load(text)
    metadata["databases"] = {name: metadata["databases"].pop(tilde_encode(name))}
    if media_path is not None:
        metadata.setdefault("plugins", {})[PLUGIN_NAME] = {"media_path": str(media_path)}
    return metadata


def datasette_args(config: Config, host: str, port: int, metadata_path: Path) -> list[str]:
    """The `datasette serve` command line for this config (without the program name)."""
    args = ["serve", str(config.ledger_path), "--metadata", str(metadata_path),
            "--template-dir", str(TEMPLATES), "--plugins-dir", str(PLUGINS),
            "--host", host, "--port", str(port)]
    for name, value in SETTINGS.items():
        args += ["--setting", name, str(value)]
    return args


def views_are_current(ledger_path: Path) -> bool:
    """Whether the ledger holds every view as this version defines it (read-only check)."""
    import sqlite3

    uri = f"{Path(ledger_path).resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        stored = dict(conn.execute("select name, sql from sqlite_master where type = 'view'"))
    finally:
        conn.close()
    # stored as `CREATE VIEW <name> AS <sql>`, the name quoted as sqlite-utils quotes it
    return all(name in stored and stored[name].split(" AS ", 1)[-1] == sql
               for name, sql in VIEWS.items())


def prepare_ledger(config: Config) -> None:
    """Check there is a ledger to read, without writing to it (a reader never does: the next
    run brings an older ledger's views up to date), and make sure the media folder exists to
    be served."""
    try:
        open_readonly(config.ledger_path).close()
    except LedgerMissingError as exc:
        raise ServeError(str(exc)) from None
    if not views_are_current(config.ledger_path):
        log.warning("the ledger's views were made by an older preserver and some pages may "
                    "differ; the next `preserver run` (or `preserver scan`, no network) "
                    "updates them")
    config.media_path.mkdir(parents=True, exist_ok=True)


def serve_ledger(config: Config, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Run Datasette on the ledger until interrupted (it exits through SystemExit)."""
    require_datasette()
    prepare_ledger(config)
    from datasette.cli import cli as datasette_cli

    with tempfile.TemporaryDirectory(prefix="preserver-serve-") as folder:
        metadata_path = Path(folder) / "metadata.json"
        metadata_path.write_text(json.dumps(metadata_for(config.ledger_path, config.media_path),
                                            ensure_ascii=False),
                                 encoding="utf-8")
        datasette_cli.main(args=datasette_args(config, host, port, metadata_path),
                           prog_name="datasette")
