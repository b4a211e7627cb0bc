"""File transfer as one tar stream over one session: `put` for the SSH transports.

Works against any target with a POSIX ``tar`` (GNU or BusyBox); no scp or sftp server
needed.  Symlinks among the sources are followed, as scp does.
"""

from __future__ import annotations

import io
import posixpath
import shlex
import tarfile
from collections.abc import Sequence
from pathlib import Path


def tar_upload(sources: Sequence[Path], destination: str) -> tuple[bytes, str]:
    """The tar bytes and the remote command that unpacks them at ``destination``.

    A single source and a ``destination`` not ending in ``/`` names the target file;
    otherwise ``destination`` is a directory that receives every source by its name.
    """
    if len(sources) == 1 and not destination.endswith("/"):
        directory = posixpath.dirname(destination) or "."
        names = [posixpath.basename(destination)]
    else:
        directory = destination.rstrip("/") or "/"
        names = [source.name for source in sources]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, dereference=True) as tar:
        for source, name in zip(sources, names, strict=True):
            tar.add(str(source), arcname=name, recursive=True, filter=_root_owned)
    quoted = shlex.quote(directory)
    command = f"mkdir -p {quoted} && tar -x -o -f - -C {quoted}"
    return buffer.getvalue(), command


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
