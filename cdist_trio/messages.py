"""cdist's messaging between scripts: ``__messages_in`` / ``__messages_out`` (spec §13)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def message_files(messages: Path, prefix: str) -> Iterator[dict[str, str]]:
    """Give a script a copy of the messages so far and collect what it writes.

    Yields the two environment variables.  Afterwards, also on failure, every line the
    script wrote is appended to ``messages`` as ``<prefix>:<line>`` in one write.
    """
    fd_in, path_in = tempfile.mkstemp(suffix=".cdist_message_in")
    fd_out, path_out = tempfile.mkstemp(suffix=".cdist_message_out")
    os.close(fd_out)
    try:
        with os.fdopen(fd_in, "wb") as target, messages.open("rb") as source:
            shutil.copyfileobj(source, target)
        yield {"__messages_in": path_in, "__messages_out": path_out}
    finally:
        try:
            lines = Path(path_out).read_text(errors="replace").splitlines()
            if lines:
                with messages.open("a") as sink:
                    sink.write("".join(f"{prefix}:{line}\n" for line in lines))
        finally:
            for path in (path_in, path_out):
                with suppress(FileNotFoundError):
                    os.unlink(path)
