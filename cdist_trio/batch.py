"""Many remote steps in one remote invocation: the round-trip saver of the engine.

One session carries a tar of files to place under ``$R`` (on stdin) and a shell script
that runs each step in a subshell with its own environment.  Steps write straight to
the session's stdout and stderr; after each step the script prints a line with a
random marker and the step's exit status to both streams, and the engine cuts them
there.  Output is byte-exact per step, so cdist's files (explorer outputs, code-remote
streams) stay what they would be with one call per step, and the target creates no
files and starts no extra process for the bookkeeping.

A step whose script is plain POSIX shell is sourced in its subshell (``set -e; .
script``) rather than started as ``/bin/sh -e script``: the same shell, options and
environment, one exec fewer.  Scripts that could tell the difference (``$0``, ``$$``,
``$PPID``, ``$-``, ``LINENO``, bash variables) are started as before.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .errors import CommandError
from .log import TRACE
from .model.smallfiles import read_bytes
from .tarstream import write_tar
from .transport.base import Remote, export_prefix

#: What a script could see differently when sourced in a subshell of the batch shell
#: instead of run by its own ``/bin/sh -e``: its name, its pid and parent pid, the
#: shell's option letters and line numbers, and anything bash- or zsh-specific.
_SHELL_SPECIFIC = re.compile(r"\$\{?[0$-]|PPID|LINENO|BASH|ZSH")

#: The shell the transports run batch scripts with (`transport.command.remote_word`).
BATCH_SHELL = "/bin/sh"


def may_source(remote_shell: str, text: str) -> bool:
    """Whether a script that cdist runs as ``<remote_shell> -e script`` behaves the same
    when the batch shell sources it in a subshell with ``set -e``."""
    if remote_shell != BATCH_SHELL:
        return False
    return not _SHELL_SPECIFIC.search(text) or _quiet_where_expanded(text)


@functools.lru_cache(maxsize=256)
def _quiet_where_expanded(text: str) -> bool:
    """No `_SHELL_SPECIFIC` match where the shell expands.  Cached by text: every host
    asks about the same explorers and scripts, and the scan is a Python loop over each
    character (about 3 ms for a 3 KB explorer here)."""
    return not _SHELL_SPECIFIC.search(_expandable(text))


#: What may come right before a ``#`` that starts a comment (a word's first character).
_COMMENT_AFTER = frozenset(" \t\n;&|()")


def _expandable(text: str) -> str:
    """``text`` without what the shell never expands: comments, single-quoted strings
    (awk's ``$0`` lives there) and backslash-escaped characters.  A here-document could
    hold quotes that are not quotes, so a script with ``<<`` is searched whole.

    Comments go first: an apostrophe in one ("__file's") would otherwise open a quote
    that hides the rest of the script, or the part up to the next apostrophe."""
    if "<<" in text:
        return text
    kept: list[str] = []
    index, in_double = 0, False
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "#" and not in_double and (index == 0 or text[index - 1] in _COMMENT_AFTER):
            end = text.find("\n", index)
            if end < 0:
                break
            index = end
            continue
        if char == '"':
            in_double = not in_double
        elif char == "'" and not in_double:
            end = text.find("'", index + 1)
            if end < 0:
                return text
            index = end + 1
            continue
        kept.append(char)
        index += 1
    return "".join(kept)


@dataclass(frozen=True)
class Step:
    """One command of a batch, run as ``( export ...; command ) </dev/null``; with
    ``source``, that remote script is sourced instead (see `may_source`), and
    ``command`` only names the step in errors."""

    key: str
    command: str
    env: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    stop: bool = False
    """When this step fails, the batch stops (as if ``stop_on_failure`` for it alone)."""

    @cached_property
    def text(self) -> str:
        """The step's line body: exports, then the command."""
        if self.source is not None:
            # The batch shell's one variable is not the script's business.
            prefix = f"unset __cdist_trio_rc; {export_prefix(self.env)}set -e; . "
            return prefix + shlex.quote(self.source)
        return f"{export_prefix(self.env)}{self.command}"


@dataclass(frozen=True)
class StepResult:
    returncode: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class BatchResult:
    """Results of the steps that ran, in order; a stopped batch has fewer."""

    results: dict[str, StepResult]

    def failed(self) -> str | None:
        for key, result in self.results.items():
            if result.returncode != 0:
                return key
        return None


def build_payload(files: Sequence[tuple[Path | str, str, int]]) -> bytes:
    """A tar of local files at paths relative to ``$R``, with the given modes; every
    directory they need comes first, mode 0700."""
    made: dict[str, None] = {}
    for _, relative, _ in files:
        parts = relative.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            made.setdefault("/".join(parts[:depth]))
    return write_tar(
        ((relative, read_bytes(source), mode) for source, relative, mode in files), made
    )


def new_marker() -> str:
    """A marker no step can print by chance (128 random bits)."""
    return f"cdist-trio-{secrets.token_hex(16)}"


def build_script(
    remote_base: str,
    steps: Sequence[Step],
    *,
    stop_on_failure: bool,
    marker: str,
    prelude: str = "",
    unpack: bool = True,
) -> str:
    """The remote script: prelude, unpack the payload, run the steps, each followed by
    ``\\n<marker> <status>\\n`` on stdout and ``\\n<marker>\\n`` on stderr."""
    base = shlex.quote(remote_base)
    lines = [f"{{ {prelude}; }} >&2 || exit 110" if prelude else ""]
    if unpack:
        lines.append(
            f"{{ [ -d {base} ] || mkdir -p {base}; }} && tar -x -o -f - -C {base} || exit 111"
        )
    # Anything the prelude or tar printed to stderr ends here, before the first step.
    lines.append(f"printf '%s\\n' {marker} >&2")
    end = f"printf '\\n%s %s\\n' {marker} $__cdist_trio_rc; printf '\\n%s\\n' {marker} >&2"
    stop = ' [ "$__cdist_trio_rc" = 0 ] || exit 0;'
    for step in steps:
        tail = stop if stop_on_failure or step.stop else ""
        lines.append(f"( {step.text} ) </dev/null; __cdist_trio_rc=$?; {end};{tail}")
    lines.append("exit 0")
    return "\n".join(line for line in lines if line)


def parse_results(steps: Sequence[Step], marker: str, stdout: bytes, stderr: bytes) -> BatchResult:
    """Cut the session's streams at the markers; steps with no marker did not run."""
    out_mark = b"\n" + marker.encode() + b" "
    err_mark = b"\n" + marker.encode() + b"\n"
    start = stderr.find(marker.encode() + b"\n")
    err_pos = len(stderr) if start < 0 else start + len(marker) + 1
    out_pos = 0
    results: dict[str, StepResult] = {}
    for step in steps:
        out_end = stdout.find(out_mark, out_pos)
        if out_end < 0:
            break
        line_end = stdout.find(b"\n", out_end + len(out_mark))
        if line_end < 0:
            break
        status = stdout[out_end + len(out_mark) : line_end]
        err_end = stderr.find(err_mark, err_pos)
        err = stderr[err_pos:] if err_end < 0 else stderr[err_pos:err_end]
        results[step.key] = StepResult(int(status or b"255"), stdout[out_pos:out_end], err)
        out_pos = line_end + 1
        err_pos = len(stderr) if err_end < 0 else err_end + len(err_mark)
    return BatchResult(results)


# One argv word (the script) may not exceed the kernel's MAX_ARG_STRLEN (128 KiB), and
# sshd bounds an exec request too: larger batches run as several sessions in order.
MAX_SCRIPT_BYTES = 96 * 1024


def _chunks(steps: Sequence[Step]) -> list[list[Step]]:
    chunks: list[list[Step]] = [[]]
    size = 0
    for step in steps:
        cost = len(step.text) + 200
        if chunks[-1] and size + cost > MAX_SCRIPT_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(step)
        size += cost
    return chunks


async def run_batch(
    remote: Remote,
    remote_base: str,
    files: Sequence[tuple[Path | str, str, int]],
    steps: Sequence[Step],
    *,
    stop_on_failure: bool,
    prelude: str = "",
    log: logging.LoggerAdapter[logging.Logger] | None = None,
) -> BatchResult:
    """Place ``files`` under ``$R`` and run ``steps``, in one remote session (several,
    in order, when the script would be too large for one command line).  With ``log``
    enabled for TRACE, how each step ended is logged."""
    results: dict[str, StepResult] = {}
    for index, chunk in enumerate(_chunks(steps)):
        first = index == 0
        part = await _run_chunk(
            remote,
            remote_base,
            files if first else (),
            chunk,
            stop_on_failure=stop_on_failure,
            prelude=prelude if first else "",
        )
        results.update(part.results)
        if log is not None and log.isEnabledFor(TRACE):
            _trace_steps(log, chunk, part)
        if _stopped(part, chunk, stop_on_failure):
            break
    return BatchResult(results)


def _trace_steps(
    log: logging.LoggerAdapter[logging.Logger], steps: Sequence[Step], part: BatchResult
) -> None:
    lines = []
    for step in steps:
        result = part.results.get(step.key)
        if result is None:
            lines.append(f"{step.command}\n-> not run (the batch stopped before it)")
        else:
            lines.append(
                f"{step.command}\n-> exit status {result.returncode}, "
                f"{len(result.stdout)} bytes on stdout, {len(result.stderr)} on stderr"
            )
    log.log(TRACE, "remote batch of %d step(s):\n%s", len(steps), "\n".join(lines))


async def _run_chunk(
    remote: Remote,
    remote_base: str,
    files: Sequence[tuple[Path | str, str, int]],
    steps: Sequence[Step],
    *,
    stop_on_failure: bool,
    prelude: str,
) -> BatchResult:
    marker = new_marker()
    script = build_script(
        remote_base,
        steps,
        stop_on_failure=stop_on_failure,
        marker=marker,
        prelude=prelude,
        unpack=bool(files),
    )
    result = await remote.run(script, stdin=build_payload(files) if files else None, check=False)
    parsed = (
        parse_results(steps, marker, result.stdout, result.stderr)
        if result.returncode == 0
        else None
    )
    complete = parsed is not None and (
        len(parsed.results) == len(steps) or _stopped(parsed, steps, stop_on_failure)
    )
    if parsed is None or not complete:
        detail = _target_said(result.stdout, result.stderr, marker)
        if parsed is not None:
            done = len(parsed.results)
            detail = f"the target stopped after {done} of {len(steps)} step(s). {detail}".strip()
        raise CommandError(
            f"batch of {len(steps)} step(s) failed on the target with exit status "
            f"{result.returncode}: {detail}",
            command=script,
            exit_status=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    return parsed


_SAID_MAX = 2000
"""Characters of a failed batch's output kept in its error message (the end of it)."""


def _target_said(stdout: bytes, stderr: bytes, marker: str) -> str:
    """What a batch that did not run through printed: its stderr, else its stdout when
    that is not our own step output (a login shell refusing, ``nologin``'s "This account
    is currently not available." goes to stdout), the end of it if long."""
    text = stderr.decode(errors="replace").strip()
    if not text:
        out = stdout.decode(errors="replace")
        if marker not in out:
            text = out.strip()
    if len(text) > _SAID_MAX:
        text = "..." + text[-_SAID_MAX:]
    return text or "(no output)"


def _stopped(parsed: BatchResult, steps: Sequence[Step], stop_on_failure: bool) -> bool:
    """The last step that ran failed and was meant to stop the batch."""
    done = len(parsed.results)
    if done == 0:
        return False
    last = steps[done - 1]
    return (stop_on_failure or last.stop) and parsed.results[last.key].returncode != 0
