"""Many remote steps in one remote invocation: the round-trip saver of the engine.

One session carries a tar of files to place under ``$R`` (on stdin) and a shell script
that runs each step in a subshell with its own environment, capturing its stdout,
stderr and exit status into files that come back as one tar on stdout.  Output is
byte-exact per step, so cdist's files (explorer outputs, code-remote streams) stay
what they would be with one call per step.
"""

from __future__ import annotations

import shlex
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .errors import CommandError
from .tarstream import read_files, write_tar
from .transport.base import Remote, export_prefix


@dataclass(frozen=True)
class Step:
    """One command of a batch, run as ``( export ...; command ) </dev/null``."""

    key: str
    command: str
    env: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def text(self) -> str:
        """The step's line body: exports, then the command."""
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


def build_payload(files: Sequence[tuple[Path, str, int]]) -> bytes:
    """A tar of local files at paths relative to ``$R``, with the given modes; every
    directory they need comes first, mode 0700."""
    made: dict[str, None] = {}
    for _, relative, _ in files:
        parts = relative.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            made.setdefault("/".join(parts[:depth]))
    return write_tar(
        ((relative, source.read_bytes(), mode) for source, relative, mode in files), made
    )


def build_script(
    remote_base: str, steps: Sequence[Step], *, stop_on_failure: bool, prelude: str = ""
) -> str:
    """The remote script: prelude, unpack the payload, run steps, tar the results."""
    base = shlex.quote(remote_base)
    lines = [
        f"{{ {prelude}; }} || exit 110" if prelude else "",
        f"mkdir -p {base} && tar -x -o -f - -C {base} || exit 111",
        't=$(mktemp -d "${TMPDIR:-/tmp}/cdist-trio.XXXXXX") || exit 112',
    ]
    for index, step in enumerate(steps):
        out = f'"$t/{index}"'
        lines.append(f"( {step.text} ) </dev/null >{out}.out 2>{out}.err; echo $? >{out}.rc")
        if stop_on_failure:
            lines.append(
                f'[ "$(cat {out}.rc)" = 0 ] || {{ tar -c -f - -C "$t" .; rm -rf "$t"; exit 0; }}'
            )
    lines.append('tar -c -f - -C "$t" .; rm -rf "$t"')
    return "\n".join(line for line in lines if line)


def parse_results(steps: Sequence[Step], archive: bytes) -> BatchResult:
    files = read_files(archive)
    results: dict[str, StepResult] = {}
    for index, step in enumerate(steps):
        rc = files.get(f"{index}.rc")
        if rc is None:
            break
        results[step.key] = StepResult(
            int(rc.decode().strip() or "255"),
            files.get(f"{index}.out", b""),
            files.get(f"{index}.err", b""),
        )
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
    files: Sequence[tuple[Path, str, int]],
    steps: Sequence[Step],
    *,
    stop_on_failure: bool,
    prelude: str = "",
) -> BatchResult:
    """Place ``files`` under ``$R`` and run ``steps``, in one remote session (several,
    in order, when the script would be too large for one command line)."""
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
        if stop_on_failure and (part.failed() is not None or len(part.results) < len(chunk)):
            break
    return BatchResult(results)


async def _run_chunk(
    remote: Remote,
    remote_base: str,
    files: Sequence[tuple[Path, str, int]],
    steps: Sequence[Step],
    *,
    stop_on_failure: bool,
    prelude: str,
) -> BatchResult:
    script = build_script(remote_base, steps, stop_on_failure=stop_on_failure, prelude=prelude)
    result = await remote.run(script, stdin=build_payload(files), check=False)
    if result.returncode != 0:
        raise CommandError(
            f"batch of {len(steps)} step(s) failed on the target with exit status "
            f"{result.returncode}: {result.stderr.decode(errors='replace').strip()}",
            command=script,
            exit_status=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        )
    try:
        return parse_results(steps, result.stdout)
    except tarfile.TarError as exc:
        raise CommandError(
            f"batch output from the target is not a tar archive: {exc}",
            command=script,
            exit_status=result.returncode,
            stdout=result.stdout,
            stderr=result.stderr,
        ) from exc
