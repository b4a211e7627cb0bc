"""cdist-style log lines for the emulator: ``LEVEL: <target host>: <message>``.

ERROR goes to stderr, the rest to stdout (the calling manifest's captured streams).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

TYPE_CHECKING = False  # keep typing out of the emulator process (start-up time)
if TYPE_CHECKING:
    from typing import TextIO

ERROR = 40
WARNING = 30
INFO = 20
VERBOSE = 15
DEBUG = 10
TRACE = 5

_NAMES = {ERROR: "ERROR", WARNING: "WARNING", INFO: "INFO", VERBOSE: "VERBOSE", DEBUG: "DEBUG"}
_COLOURS = {ERROR: "\033[0;31m", WARNING: "\033[0;33m", INFO: "\033[0;94m", VERBOSE: "\033[0;34m"}
_RESET = "\033[0m"


class EmulatorLog:
    """A tiny logger: the stdlib ``logging`` import alone would cost more than a call."""

    def __init__(
        self,
        host: str,
        level: int = WARNING,
        *,
        colored: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.host = host
        self.level = level
        self.colored = colored
        self._stdout = stdout
        self._stderr = stderr

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> EmulatorLog:
        """Host from ``__target_host`` (``cdist`` before it is known); an invalid
        ``__cdist_log_level`` means WARNING."""
        try:
            level = int(environ.get("__cdist_log_level", WARNING))
        except ValueError:
            level = WARNING
        return cls(
            environ.get("__target_host") or "cdist",
            level,
            colored=environ.get("__cdist_colored_log") == "true",
            stdout=stdout,
            stderr=stderr,
        )

    def log(self, level: int, message: str) -> None:
        if level < self.level:
            return
        name = _NAMES.get(level, "TRACE")
        line = f"{name}: {self.host}: {message}"
        if self.colored and level in _COLOURS:
            line = f"{_COLOURS[level]}{line}{_RESET}"
        stream = (self._stderr or sys.stderr) if level >= ERROR else (self._stdout or sys.stdout)
        stream.write(f"{line}\n")
        stream.flush()

    def error(self, message: str) -> None:
        self.log(ERROR, message)

    def debug(self, message: str) -> None:
        self.log(DEBUG, message)
