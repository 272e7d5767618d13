"""The root of the command line: global options, and the one place errors become a line and an exit code."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tagtrail import __version__
from tagtrail.cli import output
from tagtrail.cli.startup import importing
from tagtrail.errors import ConfigError, TagtrailError

if TYPE_CHECKING:
    from tagtrail.config import Config

EXIT_ERROR = 1
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="tagtrail",
    help=(
        "Continuous deployment for a monorepo of container apps.\n\n"
        "Every image is tagged with the branch, time and commit that built it (the scheme in tagtrail.yaml);"
        " tagtrail reads those tags back to decide what runs, writes the choice to git, and rolls back in one"
        " command."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class State:
    """What every command may need, loaded only when asked for (the config's import alone, pydantic's
    models, costs more than a light command's whole run)."""

    config_path: Path | None = None
    verbose: int = 0
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        if self._config is None:
            with importing():  # the config's pydantic models: the bulk of a light command's start-up
                from tagtrail.config import load_config  # noqa: PLC0415

            self.config_path = self.config_path or _find_config()
            self._config = load_config(self.config_path)
        return self._config

    def optional_config(self) -> Config | None:
        """The config when there is one; None when none is found (commands that can work without it).
        A config that exists but is invalid is still an error."""
        if self._config is None and self.config_path is None:
            try:
                self.config_path = _find_config()
            except ConfigError:
                return None
        return self.config()

    def project_root(self) -> Path:
        """The folder holding tagtrail.yaml: paths in the config are relative to it."""
        self.config_path = self.config_path or _find_config()
        return self.config_path.resolve().parent


def _find_config() -> Path:
    from tagtrail.config.loader import find_config as find  # noqa: PLC0415

    return find()


def state(ctx: typer.Context) -> State:
    return ctx.find_root().ensure_object(State)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tagtrail {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="TAGTRAIL_CONFIG",
            metavar="PATH",
            show_default=False,
            help="tagtrail.yaml to use. Default: the one in this folder or the nearest parent.",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, show_default=False, help="Log what happens (-vv for more)."
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Global options come before the command: tagtrail -c path/tagtrail.yaml plan."""
    ctx.obj = State(config_path=config, verbose=verbose)
    configure_logging(verbose)


_HANDLERS: dict[str, logging.Handler] = {}


def _rich() -> logging.Handler:
    """rich's log handler, made when first wanted: importing rich.logging costs more than most commands."""
    if "rich" not in _HANDLERS:
        from rich.logging import RichHandler  # noqa: PLC0415

        _HANDLERS["rich"] = RichHandler(console=output.stderr, show_path=False, markup=False)
    return _HANDLERS["rich"]


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a line is logged (tests and embedders replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_PLAIN = _Stderr()
_PLAIN.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))


class _Warnings(logging.Handler):
    """Without -v, tagtrail's warnings still reach the user, as `warning: …` lines (a lock being waited for,
    a decision log that cannot be written)."""

    def emit(self, record: logging.LogRecord) -> None:
        output.warn(record.getMessage())


_WARNINGS = _Warnings(logging.WARNING)


def configure_logging(verbose: int, *, plain: bool = False) -> None:
    """tagtrail's own log lines at -v, and the HTTP client's at -vv, to stderr (one plain line each with
    `plain`, for a server's log collector). Only these loggers are touched, never the root logger, so
    running the CLI in-process leaves the host's logging alone."""
    handler: logging.Handler | None
    if plain:
        handler, other = _PLAIN, _HANDLERS.get("rich")
    else:  # without -v no handler is added, so rich's is not made
        handler, other = (_rich() if verbose else _HANDLERS.get("rich")), _PLAIN
    levels = {
        "tagtrail": logging.INFO if verbose == 1 else logging.DEBUG,
        "httpx": logging.DEBUG,
        "httpcore": logging.INFO,
        "uvicorn.error": logging.INFO if verbose >= 2 else logging.WARNING,
    }
    for name, level in levels.items():
        logger = logging.getLogger(name)
        wanted = verbose >= (1 if name in ("tagtrail", "uvicorn.error") else 2)
        if other is not None and other in logger.handlers:
            logger.removeHandler(other)
        if wanted and handler is not None:
            logger.setLevel(level)
            logger.propagate = name != "uvicorn.error"
            if handler not in logger.handlers:
                logger.addHandler(handler)
        elif handler is not None and handler in logger.handlers:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
    tagtrail = logging.getLogger("tagtrail")
    if verbose == 0 and not plain:
        if _WARNINGS not in tagtrail.handlers:
            tagtrail.addHandler(_WARNINGS)
    elif _WARNINGS in tagtrail.handlers:
        tagtrail.removeHandler(_WARNINGS)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with the commands registered so far (`tagtrail.cli.main` registers the one `argv` names:
    this root imports no command, the commands import it); return its exit code. Never shows a traceback
    for a TagtrailError; an unexpected exception is reported as a bug."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="tagtrail", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: typer prints them with the command's usage line
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            output.error(exc.format_message())
        return exc.exit_code
    except typer.Abort:
        output.error("interrupted")
        return EXIT_INTERRUPTED
    except TagtrailError as exc:
        output.error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        output.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if "-v" in args or "--verbose" in args or "-vv" in args:
            logging.getLogger("tagtrail").exception("internal error")
        output.error(
            f"internal error: {type(exc).__name__}: {exc} — this is a bug in tagtrail; rerun with -v"
            " and report it with the output"
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0
