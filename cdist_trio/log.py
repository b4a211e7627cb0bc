"""cdist-style log lines, ``<LEVEL>: <target>: <message>`` (cdist-spec §12.1), on stdlib logging.

Everything cdist-trio logs goes below the ``cdist_trio`` logger.  Only the CLI installs
handlers (:func:`setup_logging`); library users configure that logger as they like.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from cdist_trio.settings import Settings

__all__ = [
    "LOGGER_NAME",
    "OFF",
    "TRACE",
    "VERBOSE",
    "CdistFormatter",
    "colors_enabled",
    "get_logger",
    "level_for",
    "level_name",
    "output_gone",
    "reset_logging",
    "setup_logging",
    "target_logger",
    "verbosity_for_level",
    "verbosity_for_name",
]

TRACE = 5
"""Every local and remote command and its captured output."""
VERBOSE = 15
"""Between DEBUG and INFO: the stages of a host run (cdist's ``-vv``)."""
OFF = 60
"""Above CRITICAL: nothing is logged (``-q``)."""

logging.addLevelName(TRACE, "TRACE")
logging.addLevelName(VERBOSE, "VERBOSE")
logging.addLevelName(OFF, "OFF")

LOGGER_NAME = "cdist_trio"
"""The namespace of every cdist-trio logger; configure this one to see our records."""

# Index = verbosity + 1: -1 ERROR, 0 WARNING, 1 INFO (-v), 2 VERBOSE, 3 DEBUG, 4+ TRACE.
_LEVELS = (logging.ERROR, logging.WARNING, logging.INFO, VERBOSE, logging.DEBUG, TRACE)

_COLORS = {
    logging.ERROR: "\033[0;31m",  # red
    logging.WARNING: "\033[0;33m",  # yellow
    logging.INFO: "\033[0;94m",  # bright blue
    VERBOSE: "\033[0;34m",  # blue
    logging.DEBUG: "\033[0;90m",  # grey
    TRACE: "\033[0;37m",  # light grey
}
_RESET = "\033[0m"


def level_for(verbosity: int, quiet: bool) -> int:
    """The logging level for cdist's verbosity counter, or OFF when ``quiet``.

    Verbosity below -1 counts as -1 (ERROR), above 4 as 4 (TRACE).
    """
    if quiet:
        return OFF
    return _LEVELS[min(max(verbosity, -1), len(_LEVELS) - 2) + 1]


def level_name(level: int) -> str:
    """The name cdist exports in ``__cdist_log_level_name`` for ``level`` (30 → WARNING)."""
    return logging.getLevelName(level)


def verbosity_for_level(level: int) -> tuple[int, bool]:
    """Map a numeric level (``__cdist_log_level``) back to ``(verbosity, quiet)``.

    Raises ValueError for a number that is none of cdist's levels.
    """
    if level == OFF:
        return 0, True
    if level not in _LEVELS:
        allowed = ", ".join(str(lvl) for lvl in (*_LEVELS, OFF))
        raise ValueError(f"{level} is not a cdist log level (one of {allowed})")
    return _LEVELS.index(level) - 1, False


def verbosity_for_name(name: str) -> tuple[int, bool]:
    """Map a level name (cdist.cfg ``verbosity``: ``INFO``, ``OFF``...) to ``(verbosity, quiet)``.

    Raises ValueError for any other name.
    """
    names = [level_name(lvl) for lvl in (*_LEVELS, OFF)]
    if name not in names:
        raise ValueError(f"{name!r} is not a log level name (one of {', '.join(names)})")
    return verbosity_for_level(logging.getLevelNamesMapping()[name])


def get_logger(name: str = "") -> logging.Logger:
    """The logger ``cdist_trio.<name>``; it prints as ``<name>`` (``cdist`` when empty)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def target_logger(target: str) -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose lines read ``<LEVEL>: <target>: <message>``, for one target host."""
    return logging.LoggerAdapter(get_logger("host"), {"cdist_target": target})


def _short_name(name: str) -> str:
    if name == LOGGER_NAME:
        return "cdist"
    if name.startswith(LOGGER_NAME + "."):
        return name.rsplit(".", 1)[1]
    return name


class CdistFormatter(logging.Formatter):
    """Formats records as cdist does: ``LEVEL: target: [timestamp] message``.

    The target is the record's ``cdist_target`` extra, else the logger's short name.
    With ``timestamp`` the message gets cdist's ``-P`` prefix ``[YYYYmmddHHMMSS.ffffff] ``;
    with ``colors`` the whole line is coloured by level.
    """

    def __init__(self, *, timestamp: bool = False, colors: bool = False) -> None:
        super().__init__()
        self.timestamp = timestamp
        self.colors = colors

    def format(self, record: logging.LogRecord) -> str:
        target = getattr(record, "cdist_target", None) or _short_name(record.name)
        message = record.getMessage()
        if self.timestamp:
            stamp = datetime.fromtimestamp(record.created).strftime("%Y%m%d%H%M%S.%f")
            message = f"[{stamp}] {message}"
        line = f"{record.levelname}: {target}: {message}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        if self.colors:
            color = _COLORS.get(_nearest_level(record.levelno))
            if color:
                line = f"{color}{line}{_RESET}"
        return line


def _nearest_level(levelno: int) -> int:
    known = [lvl for lvl in _COLORS if lvl <= levelno]
    return max(known) if known else TRACE


def colors_enabled(
    colored_output: Literal["always", "never", "auto"],
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether log lines are coloured: ``auto`` means ``stream`` (stdout) is a TTY and
    ``NO_COLOR`` is unset.  The engine exports the answer as ``__cdist_colored_log``."""
    if colored_output != "auto":
        return colored_output == "always"
    stream = sys.stdout if stream is None else stream
    environ = os.environ if environ is None else environ
    isatty = getattr(stream, "isatty", None)
    return "NO_COLOR" not in environ and bool(isatty and isatty())


_gone: set[int] = set()
"""Descriptors `output_gone` has pointed at /dev/null."""


def output_gone(stream: object, *, notice: bool = True) -> None:
    """Writing to ``stream`` failed (its reader went away: ``| head`` done, a closed
    terminal): point its descriptor at /dev/null, so that every later write to it, a log
    line, the live display, the summary, succeeds and goes nowhere.  The run itself goes
    on: a configuration is never left half-applied because nobody reads its log.

    With ``notice``, one line on stderr says so (once; not when stderr is the one gone).
    A stream without a descriptor is left alone.
    """
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return
    if fd in _gone:
        return
    _gone.add(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    if notice and fd != 2:
        name = "standard output" if fd == 1 else f"descriptor {fd}"
        line = f"cdist-trio: {name} was closed: its log lines are dropped; the run goes on\n"
        with contextlib.suppress(OSError):
            os.write(2, line.encode())


class _CliHandler(logging.StreamHandler[TextIO]):
    """A handler installed by setup_logging, so reset_logging removes exactly these."""

    def handleError(self, record: logging.LogRecord) -> None:
        """A stream that cannot be written any more is `output_gone`, silently for this
        record (logging's default prints a traceback for every later line)."""
        if isinstance(sys.exc_info()[1], OSError):
            output_gone(self.stream)
            return
        super().handleError(record)


def setup_logging(
    settings: Settings,
    *,
    stream_out: TextIO | None = None,
    stream_err: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send ``cdist_trio`` records to the streams the CLI way: ERROR and above to
    ``stream_err`` (default stderr), the rest to ``stream_out`` (default stdout).

    Replaces handlers a previous call installed; never touches the root logger.
    """
    stream_out = sys.stdout if stream_out is None else stream_out
    stream_err = sys.stderr if stream_err is None else stream_err
    reset_logging()
    formatter = CdistFormatter(
        timestamp=settings.timestamp,
        colors=colors_enabled(settings.colored_output, stream_out, environ),
    )
    out = _CliHandler(stream_out)
    out.addFilter(lambda record: record.levelno < logging.ERROR)
    err = _CliHandler(stream_err)
    err.setLevel(logging.ERROR)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in (out, err):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.setLevel(level_for(settings.verbosity, settings.quiet))
    # Our lines are complete; an application's root handler would print them twice.
    logger.propagate = False


def route_python_warnings() -> None:
    """Show Python warnings as DEBUG log lines of the ``cdist`` logger (the CLI's way).

    They are libraries' notices to programmers, not to operators: with
    ``KexAlgorithms diffie-hellman-group14-sha256`` in the ssh_config, the asyncssh
    transport made cryptography print a ``CryptographyDeprecationWarning`` with two lines
    of asyncssh's source on stderr, above the run's own lines."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        get_logger().debug(
            "Python warning (%s:%d): %s: %s", filename, lineno, category.__name__, message
        )

    global _showwarning_before
    if _showwarning_before is None:
        _showwarning_before = warnings.showwarning
    warnings.showwarning = show


_showwarning_before: Callable[..., None] | None = None
"""What `route_python_warnings` replaced, put back by `reset_logging`."""


def reset_logging() -> None:
    """Undo :func:`setup_logging` (remove its handlers and restore propagation) and
    :func:`route_python_warnings`."""
    global _showwarning_before
    if _showwarning_before is not None:
        warnings.showwarning = _showwarning_before
        _showwarning_before = None
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if isinstance(handler, _CliHandler):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
