"""What every command shares: --config, -v and -q before or after the command, logging,
loading the configuration (exit 2 in words if it is wrong), and the exit codes (listed in
cli.py's docstring)."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

import click

from .config import load_config
from .errors import ConfigError
from .exclude import compile_patterns

EXIT_OK, EXIT_WORSE, EXIT_USAGE, EXIT_LOCKED, EXIT_FAILED = 0, 1, 2, 3, 4

DEFAULT_CONFIG = Path("config.toml")
CONFIG_TYPE = click.Path(dir_okay=False, path_type=Path)
CONFIG_HELP = "Configuration file.  [default: config.toml]"
VERBOSE_HELP = "Log each phase in detail."
QUIET_HELP = "Only warnings and the summary."


def _command_config(ctx: click.Context, param, value: Path | None) -> Path:
    """--config after the command wins; else the one before it; else ./config.toml."""
    return value or (ctx.find_root().obj or {}).get("config") or DEFAULT_CONFIG


def _command_flag(ctx: click.Context, param, value: bool) -> None:
    """-v/-q after the command: as if given before it."""
    if value:
        options = ctx.find_root().ensure_object(dict)
        options[param.name] = True
        set_logging(options)


def config_option(command):
    """--config, -v and -q, accepted after the command as well as before it."""
    command = click.option("-q", "--quiet", is_flag=True, expose_value=False,
                           callback=_command_flag, help=QUIET_HELP)(command)
    command = click.option("-v", "--verbose", is_flag=True, expose_value=False,
                           callback=_command_flag, help=VERBOSE_HELP)(command)
    return click.option("--config", "config_path", type=CONFIG_TYPE, default=None,
                        callback=_command_config, help=CONFIG_HELP)(command)


def set_logging(options: dict) -> None:
    level = (logging.DEBUG if options.get("verbose")
             else logging.WARNING if options.get("quiet") else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormat())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


class _LogFormat(logging.Formatter):
    """Plain lines for progress; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {text}"


def load_or_exit(config_path: Path, exclude: tuple[str, ...] = ()):
    """The config, with `--exclude` patterns added to `[live] exclude`."""
    try:
        config = load_config(config_path)
        compile_patterns(exclude, "--exclude")
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if not exclude:
        return config
    live = replace(config.live, exclude=[*config.live.exclude, *exclude])
    return replace(config, live=live)
