"""In-engine twins of the bundled ``__file`` and ``__directory`` gencode scripts.

Every object of these types costs a forked shell per gencode script, and those scripts
are most of the local CPU of a run (benchmarks/README.md).  A twin does in the engine
what one script does, for the cases it is sure of, and gives the same result: the same
stdout, the same messages (the engine adds them to the host's messages itself: a twin
needs no message files), the same files written, exit status 0 and nothing on stderr.
Anything else (an error, binary or large content, a missing file, a checksum tool it
would have to guess) and it declines, having touched nothing: the engine then runs the
script as always.

A twin belongs to one exact version of its script, known by its SHA-256: a conf dir's
``__file`` that differs by one byte (cdist's own, or an edited copy) runs as a script.
The scripts stay the reference (and what cdist runs); tests/unit/test_gencode_twins.py
runs both on a matrix of cases and compares.  ``CDIST_TRIO_GENCODE_TWINS=0`` in the
environment turns the twins off (for comparison and troubleshooting).
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .model.smallfiles import read_bytes, write_bytes

Twin = Callable[[Mapping[str, str]], "tuple[bytes, bytes] | None"]
"""``twin(env)``: the script's stdout and what it would have written to
``$__messages_out``, its other file side effects done; or None (declined: nothing
touched)."""

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # bytes that are not UTF-8 pass through unchanged, as in sh
_CREATE_MODE = 0o600  # a file the script creates under the local umask 077


class _Decline(Exception):
    """The twin is not sure of this case: the script runs instead."""


def _text(data: bytes) -> str:
    return data.decode(_ENCODING, _ERRORS)


def _read_bytes(path: str, *, nul: bool = False) -> bytes:
    """A file's bytes; with a NUL byte only if ``nul`` (the shell's read drops them,
    cksum reads them)."""
    try:
        data = read_bytes(path)
    except OSError:
        raise _Decline from None
    if not nul and b"\0" in data:
        raise _Decline
    return data


def _read_into(path: str) -> str:
    """The scripts' ``read_into``: the file's content without its trailing newlines.
    A missing file declines: the script lets cat fail (and exits)."""
    return _text(_read_bytes(path)).rstrip("\n")


def _optional_into(path: str) -> str | None:
    """``if [ -f path ]; then read_into ...; fi``: None when there is no such file (one
    ``open`` instead of a ``stat`` and an ``open``; a directory declines)."""
    try:
        data = read_bytes(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        raise _Decline from None
    if b"\0" in data:
        raise _Decline
    return _text(data).rstrip("\n")


def _quote(value: str) -> str:
    """The scripts' ``quote_into``: single quotes, trailing newlines dropped."""
    return _quote_exact(value.rstrip("\n"))


def _quote_exact(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


_BLANKS = re.compile(r"[ \t]+")


def _records(path: str, names: int) -> list[list[str]]:
    """``while read -r k v1 ... || [ -n "$k" ]`` over the explorer output: each line split
    on blanks into ``names`` fields, the last one taking the rest."""
    lines = _text(_read_bytes(path)).split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ended the last line
    elif not lines[-1].strip(" \t"):
        lines.pop()  # an unterminated blank last line: read sets no key
    records = []
    for line in lines:
        stripped = line.strip(" \t")
        fields = _BLANKS.split(stripped, maxsplit=names - 1) if stripped else []
        records.append(fields + [""] * (names - len(fields)))
    return records


def _wanted_mode(mode: str) -> str:
    """The mode without leading zeros, checked, padded to four digits (as the scripts)."""
    wanted = mode.lstrip("0")
    if len(wanted) > 4 or any(c not in "01234567" for c in wanted):
        raise _Decline  # the script's "invalid mode" error
    return wanted.rjust(4, "0")


def _finish(
    messages: list[str], out: list[str], upload: tuple[str, str] | None = None
) -> tuple[bytes, bytes]:
    """``upload`` (path, text) written; the stdout and the messages."""
    if upload is not None:
        try:
            _write(*upload)
        except OSError:
            raise _Decline from None
    written = "".join(f"{line}\n" for line in messages)
    return "".join(out).encode(_ENCODING, _ERRORS), written.encode(_ENCODING, _ERRORS)


def _required(env: Mapping[str, str], *names: str) -> list[str]:
    try:
        return [env[name] for name in names]
    except KeyError:
        raise _Decline from None


@dataclass
class _Explored:
    """The ``<key>: <value>`` lines of a ``state`` explorer that gencode-remote reads."""

    kind: str = ""
    owner: tuple[str, str] = ("", "")
    group: tuple[str, str] = ("", "")
    mode: str = ""
    mismatch: frozenset[str] = frozenset()
    """``owner``/``group``: some file below differs (``__directory --recursive``)."""


def _explored(obj: str, *, mismatch_lines: bool) -> _Explored:
    """The explorer's lines as the script's ``case`` reads them (only ``__directory``'s
    knows ``mismatch:``)."""
    found = _Explored()
    mismatch = set()
    for key, a, b, _ in _records(f"{obj}/explorer/state", 4):
        if key == "type:":
            found.kind = a
        elif key == "owner:":
            found.owner = (a, b)
        elif key == "group:":
            found.group = (a, b)
        elif key == "mode:":
            found.mode = a
        elif key == "mismatch:" and mismatch_lines:
            mismatch.add(a)
    found.mismatch = frozenset(mismatch)
    return found


def _ownership(
    param: str, found: _Explored, fresh: bool, target: str, messages: list[str], recursive: str = ""
) -> list[str]:
    """chgrp, then chown of ``target`` (quoted) where the parameter asks for another
    group or owner than the explorer saw (by id or name), or for a fresh file."""
    lines = []
    for name, command, current in (
        ("group", "chgrp", found.group),
        ("owner", "chown", found.owner),
    ):
        value = _optional_into(f"{param}/{name}")
        if value is not None and (fresh or value not in current or name in found.mismatch):
            lines.append(f"{command}{recursive} {_quote(value)} {target}\n")
            messages.append(f"{command} {value}")
    return lines


# --- __directory/gencode-remote ---------------------------------------------------------


def _directory_remote(env: Mapping[str, str]) -> tuple[bytes, bytes]:
    object_id, obj = _required(env, "__object_id", "__object")
    destination = f"/{object_id}"
    qdest = _quote(destination)
    param = f"{obj}/parameter"
    state = _read_into(f"{param}/state")
    found = _explored(obj, mismatch_lines=True)
    kind = found.kind
    recursive = " -R" if os.path.isfile(f"{param}/recursive") else ""
    out: list[str] = []
    messages: list[str] = []
    if state == "absent":
        if kind == "directory":
            out.append(f"rm -rf {qdest}\n")
            messages.append("remove")
        return _finish(messages, out)
    if state not in ("present", "exists", "pre-exists"):
        raise _Decline
    fresh = False
    if kind != "directory":
        if state == "pre-exists":
            raise _Decline
        if kind != "none":
            out.append(f"rm -f {qdest}\n")
            messages.append("remove non directory")
        messages.append("create")
        fresh = True
    code = "".join(_ownership(param, found, fresh, qdest, messages, recursive))
    create_mode = ""
    mode = _optional_into(f"{param}/mode")
    if mode is not None:
        wanted = _wanted_mode(mode)
        if fresh or wanted != found.mode:
            # mkdir -m when nothing follows that could clear setuid/setgid bits
            if fresh and (wanted[0] in "01" or not code):
                create_mode = wanted
            else:
                code += f"chmod {wanted} {qdest}\n"
            messages.append(f"chmod {mode}")
    if fresh:
        parents = os.path.isfile(f"{param}/parents")
        if not create_mode:
            out.append(f"mkdir -p {qdest}\n" if parents else f"mkdir {qdest}\n")
        elif parents:
            out.append(
                f"if [ -d {qdest} ]; then chmod {create_mode} {qdest}; "
                f"else mkdir -p -m {create_mode} {qdest}; fi\n"
            )
        else:
            out.append(f"mkdir -m {create_mode} {qdest}\n")
    out.append(code)
    return _finish(messages, out)


# --- __file/gencode-local ---------------------------------------------------------------

_BIT_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))
_CKSUM_MAX = 1 << 20


def posix_cksum(data: bytes) -> int:
    """The CRC that POSIX ``cksum`` prints for ``data``.  It is zlib's CRC-32 polynomial
    without the bit reflection: zlib (in C) on bit-reversed bytes, the register reversed
    back, instead of a Python loop per byte."""
    length = len(data)
    suffix = bytearray()
    while length:
        suffix.append(length & 0xFF)
        length >>= 8
    register = zlib.crc32((data + bytes(suffix)).translate(_BIT_REVERSED), 0xFFFFFFFF)
    register ^= 0xFFFFFFFF  # zlib's final complement off: the bare register, reflected
    return int(f"{register:032b}"[::-1], 2) ^ 0xFFFFFFFF


def _file_local(env: Mapping[str, str]) -> tuple[bytes, bytes]:
    object_id, obj = _required(env, "__object_id", "__object")
    destination = f"/{object_id}"
    state = _read_into(f"{obj}/parameter/state")
    kind = remote_sum = ""
    for key, value in _records(f"{obj}/explorer/state", 2):
        if key == "type:":
            kind = value
        elif key == "cksum:":
            remote_sum = value
    if state not in ("present", "exists"):
        return b"", b""
    source = _optional_into(f"{obj}/parameter/source")
    if source is None:
        return b"", b""
    if source == "-":
        source = f"{obj}/stdin"
    if not source.startswith("/") or not os.path.isfile(source):
        raise _Decline  # the script's "does not exist" error, or a path relative to its cwd
    size = ""
    if kind == "file":
        if state != "present":
            return b"", b""
        if remote_sum.startswith("md5 "):
            raise _Decline
        try:
            length = os.stat(source).st_size
        except OSError:
            raise _Decline from None
        if length > _CKSUM_MAX:
            raise _Decline
        data = _read_bytes(source, nul=True)
        if f"{posix_cksum(data)} {len(data)}" == remote_sum:
            return b"", b""
        size = str(len(data))
    if not size and source == f"{obj}/stdin":
        size = env.get("__cdist_trio_stdin_size", "")
    if not size:
        try:
            size = str(os.stat(source).st_size)  # what wc -c counts
        except OSError:
            raise _Decline from None
    limit = env.get("__file_inline_limit") or "16384"
    if not (_small_number(size) and _small_number(limit)):
        raise _Decline  # test(1) would fail on them, or decide on numbers it cannot read
    out: list[str] = []
    if int(size) <= int(limit):
        upload = f"inline {size}\n"
    else:
        marker = env.get("__cdist_object_marker") or ".upload"
        host = env.get("__target_host", "")
        if "]" not in host:
            user, at, address = host.partition("@")
            if at and ":" in address:
                host = f"{user}@[{address}]"
            elif ":" in host:
                host = f"[{host}]"
        remote = f"{host}:{destination}.cdist-trio{marker}"
        out.append(f"{env.get('__remote_copy', '')} {_quote(source)} {_quote(remote)}\n")
        upload = "copy\n"
    return _finish(["upload"], out, (f"{obj}/upload", upload))


def _small_number(text: str) -> bool:
    """Decimal digits that every shell's test(1) reads as a number (below 2**63)."""
    return text.isascii() and text.isdecimal() and len(text) <= 18


def _write(path: str, text: str) -> None:
    write_bytes(path, text.encode(_ENCODING, _ERRORS), _CREATE_MODE)


# --- __file/gencode-remote --------------------------------------------------------------

_TEXT = frozenset(b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                  b"abcdefghijklmnopqrstuvwxyz{|}~\t\n")  # fmt: skip
_INLINE_TEXT_MAX = 1024


def _file_remote(env: Mapping[str, str]) -> tuple[bytes, bytes]:
    object_id, obj = _required(env, "__object_id", "__object")
    destination = f"/{object_id}"
    qdest = _quote(destination)
    param = f"{obj}/parameter"
    state = _read_into(f"{param}/state")
    found = _explored(obj, mismatch_lines=False)
    kind = found.kind
    out: list[str] = []
    messages: list[str] = []
    changed = False
    if state == "absent":
        if kind == "file":
            out.append(f"rm -f {qdest}\n")
            messages.append("remove")
            changed = True
    elif state in ("present", "exists", "pre-exists"):
        if state == "pre-exists" and kind != "file":
            raise _Decline
        target = destination
        fresh = False
        upload_destination = ""
        upload = _optional_into(f"{obj}/upload")
        if upload is not None:
            marker = env.get("__cdist_object_marker") or ".upload"
            upload_destination = f"{destination}.cdist-trio{marker}"
            target = upload_destination
            fresh = True
            if upload != "copy":
                out.extend(_inline_content(env, obj, upload, upload_destination))
        elif kind != "file":
            if kind != "none":
                out.append(f"rm -rf {qdest}\n")
            out.append(f": > {qdest}\n")
            messages.append("create")
            fresh = changed = True
        qtarget = _quote(target)
        ownership = _ownership(param, found, fresh, qtarget, messages)
        out.extend(ownership)
        changed = changed or bool(ownership)
        mode = _optional_into(f"{param}/mode")
        if mode is not None:
            wanted = _wanted_mode(mode)
            if fresh or wanted != found.mode:
                out.append(f"chmod {wanted} {qtarget}\n")
                messages.append(f"chmod {mode}")
                changed = True
        if upload_destination:
            if kind not in ("file", "none"):
                out.append(f"rm -rf {qdest}\n")
            out.append(f"mv -f {qtarget} {qdest}\n")
            changed = True
    else:
        raise _Decline
    if changed and os.path.isfile(f"{param}/onchange"):
        out.append(_text(_read_bytes(f"{param}/onchange")))  # cat: verbatim
    return _finish(messages, out)


def _inline_content(
    env: Mapping[str, str], obj: str, upload: str, upload_destination: str
) -> list[str]:
    """The ``{ : ... } > upload`` lines for short text; other content (od) declines."""
    size = upload.removeprefix("inline ")
    if not _small_number(size) or int(size) > _INLINE_TEXT_MAX:
        raise _Decline
    source = _read_into(f"{obj}/parameter/source")
    if source == "-":
        source = f"{obj}/stdin"
    if not source.startswith("/") or not os.path.isfile(source):
        raise _Decline
    data = _read_bytes(source)
    if len(data) != int(size) or not _TEXT.issuperset(data):
        raise _Decline
    lines = ["{ :\n"]
    if data:
        lines.append(f"printf %s {_quote_exact(_text(data))}\n")
    lines.append(f"}} > {_quote(upload_destination)}\n")
    return lines


# --- lookup -------------------------------------------------------------------------------


def _guarded(function: Callable[[Mapping[str, str]], tuple[bytes, bytes]]) -> Twin:
    def twin(env: Mapping[str, str]) -> tuple[bytes, bytes] | None:
        try:
            return function(env)
        except _Decline:
            return None
        except Exception:  # a twin's own bug never fails a host: the script decides
            return None

    twin.__name__ = function.__name__
    return twin


#: The twins by the SHA-256 of the script they stand in for (test_gencode_twins checks
#: these are the bundled scripts' digests: change a script, and its twin with it).
TWINS: dict[str, tuple[str, Twin]] = {
    "f3db18e84753b4a6e2115d605f4bb6d1b7482f3ab6eb44bace12cb7da4864471": (
        "__directory/gencode-remote",
        _guarded(_directory_remote),
    ),
    "65c020da7faf311dd8c696a558fc8a1e855cba083dbad0cf99ddaee356983435": (
        "__file/gencode-local",
        _guarded(_file_local),
    ),
    "8c7c4b3e5eccfd322a38fcfdb0c62b6bc6406d41478ab62f08a8348e59081b67": (
        "__file/gencode-remote",
        _guarded(_file_remote),
    ),
}

_known: dict[str, tuple[tuple[int, int, int], Twin | None]] = {}


def twin_for(script: os.PathLike[str] | str) -> Twin | None:
    """The twin of ``script`` if its bytes are those of a script with a twin, else None.
    The digest is remembered per path while the file's inode, size and mtime stay."""
    if os.environ.get("CDIST_TRIO_GENCODE_TWINS") == "0":
        return None
    path = os.fspath(script)
    try:
        status = os.stat(path)
    except OSError:
        return None
    identity = (status.st_ino, status.st_size, status.st_mtime_ns)
    known = _known.get(path)
    if known is not None and known[0] == identity:
        return known[1]
    try:
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None
    entry = TWINS.get(digest)
    twin = entry[1] if entry is not None else None
    _known[path] = (identity, twin)
    return twin
