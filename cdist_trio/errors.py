"""The one error tree of cdist-trio.

Everything cdist-trio raises on purpose is a :class:`CdistError`.  Foreign errors
(OSError, ssh exit statuses, asyncssh exceptions) are mapped to it where the foreign
code is called.  A host's failure becomes a field of its report at the host-scope edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
