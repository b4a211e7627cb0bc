"""The one error tree of cdist-trio.

Everything cdist-trio raises on purpose is a :class:`CdistError`.  Foreign errors
(OSError, ssh exit statuses, asyncssh exceptions) are mapped to it where the foreign
code is called.  A host's failure becomes a field of its report at the host-scope edge.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field


class CdistError(Exception):
    """Root of every error cdist-trio reports; its message is shown to the user as is."""


class UserError(CdistError):
    """A mistake in what the user gave us (flags, files, manifests): no traceback, exit 1."""


class ConfigError(UserError):
    """A bad setting in a cdist.cfg file, a CDIST_* variable or on the command line."""


class HostsFileError(UserError):
    """An unreadable or malformed hosts file (the message names the file and line)."""


class InvalidTypeError(UserError):
    """A type name that names no type directory in the merged conf dirs."""

    def __init__(self, type_name: str, type_path: str, real_path: str) -> None:
        self.type_name = type_name
        super().__init__(f"Invalid type '{type_name}' at '{type_path}' defined at '{real_path}'")


class IllegalObjectIdError(UserError):
    """An object id that breaks the rules of cdist-spec §7."""


class MissingObjectIdError(UserError):
    """A non-singleton type used without an object id."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"Type {type_name} requires object id (is not a singleton type)")


class ObjectConflictError(UserError):
    """An object defined twice with different parameters (and no CDIST_OVERRIDE)."""


class InvalidRequirementError(UserError):
    """A ``require`` entry that names no valid object (unknown type, illegal or missing id)."""


class LocalError(CdistError):
    """Something failed on this machine, not on a target: a full disk, too many open
    files, a directory that cannot be written (see `local_failure`)."""


class DependencyError(CdistError):
    """Objects whose requirements can never be met: a cycle, or missing objects."""


# --- transport -----------------------------------------------------------------------


class TransportError(CdistError):
    """Something went wrong talking to a target host."""


class ConnectError(TransportError):
    """The target could not be reached: refused, unreachable, timed out, dropped."""


class AuthError(TransportError):
    """The target refused our credentials; never retried."""


class HostKeyError(TransportError):
    """The target's host key could not be verified; never retried."""


class SessionRefusedError(TransportError):
    """The server refused a new session (MaxSessions); internal, never shown to users."""


class CommandError(TransportError):
    """A command ran and failed (non-zero exit status)."""

    def __init__(
        self,
        message: str,
        *,
        command: str,
        exit_status: int | None,
        stdout: bytes = b"",
        stderr: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.command = command
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr


# --- reported errors: cdist's error report blocks (spec §12.3) -----------------------


@dataclass(frozen=True)
class Stream:
    """A captured stream shown in an error report, e.g. ``manifest:stderr``."""

    label: str
    content: str


@dataclass
class ErrorReport:
    """What cdist prints after the first error line: entity, parameters, streams."""

    entity: str
    params: Mapping[str, str] = field(default_factory=dict)
    streams: Sequence[Stream] = ()

    def render(self) -> str:
        header = f"Error processing {self.entity}"
        lines = [header, "=" * len(header)]
        lines.extend(f"{key}: {value}" for key, value in self.params.items())
        for stream in self.streams:
            if not stream.content:
                continue
            lines.append("")
            lines.append(stream.label)
            lines.append("-" * len(stream.label))
            lines.append(stream.content.rstrip("\n"))
        return "\n".join(lines)


class StageError(CdistError):
    """A stage of a host run failed; carries cdist's error report block."""

    def __init__(self, message: str, report: ErrorReport) -> None:
        super().__init__(message)
        self.report = report

    def render(self) -> str:
        return f"{self}\n\n{self.report.render()}"


class InitialManifestError(StageError):
    """The initial manifest failed or is missing."""


class GlobalExplorerError(StageError):
    """A global explorer failed on the target."""


class ObjectExplorerError(StageError):
    """A type explorer failed for an object."""


class ObjectError(StageError):
    """A type manifest, gencode script or code failed for an object."""


def exception_leaves(error: BaseException) -> Iterator[BaseException]:
    """``error`` itself, or every exception inside it if it is a group (nested ones too)."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from exception_leaves(inner)
    else:
        yield error


def local_fix(error: OSError, stage: str = "") -> str | None:
    """What the user can do about ``error`` on this machine, if we know.  The files of
    the ``cache`` stage are under ``$HOME``, all others under the run's work directory."""
    place = "HOME (the cache is ~/.cdist/cache)" if stage == "cache" else "TMPDIR (or -o DIR)"
    code = error.errno or 0
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"free space, or point {place} at a file system with room"
    if code in (errno.EACCES, errno.EPERM):
        return f"make it writable for this user, or choose another {place}"
    if code == errno.EROFS:
        return f"point {place} at a writable file system"
    if code == errno.EMFILE:
        return "raise the open files limit (ulimit -n) or lower -p/-j"
    if code == errno.ENFILE:
        return "the whole machine is out of open files: lower -p/-j"
    return None


def local_failure(error: BaseException, stage: str = "") -> LocalError | None:
    """A host failure for what went wrong on this machine during ``stage``: a disk
    full, no permission, too many open files (an `OSError`, alone or in exception
    groups with other such errors or CdistErrors).  None for anything else: a
    cancellation or an interrupt must go on propagating."""
    leaves = list(exception_leaves(error))
    if not all(isinstance(leaf, (OSError, CdistError)) for leaf in leaves):
        return None
    found = next((leaf for leaf in leaves if isinstance(leaf, OSError)), None)
    if found is None:
        return None
    reason = found.strerror or str(found)
    where = f": {found.filename}" if found.filename else ""
    fix = local_fix(found, stage)
    prefix = f"{stage}: " if stage else ""
    return LocalError(f"{prefix}local error: {reason}{where}" + (f"; {fix}" if fix else ""))
