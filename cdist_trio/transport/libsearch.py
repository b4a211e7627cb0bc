"""Importing asyncssh without running a compiler.

asyncssh looks for two optional C libraries when it is imported (liboqs for
post-quantum key exchange, libnettle for UMAC) with `ctypes.util.find_library`.  On
Linux, for a library the dynamic linker's cache does not list, that function goes on to
run ``gcc`` and then ``ld`` to search their paths: two process trees and about 40 ms of
a one-host run's 0.6 s, on every run where the libraries are absent (the usual case).

`quick_library_lookup` answers those lookups from the dynamic linker's cache (``ldconfig
-p``, `find_library`'s own first step), ``LD_LIBRARY_PATH`` and the linker's default
directories: the places the dynamic linker loads a library from when asyncssh then
opens it by name.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Where the dynamic linker looks by default, whether or not a cache lists them.
STANDARD_DIRS = ("/lib", "/usr/lib", "/usr/local/lib")


def find_library(name: str) -> str | None:
    """`ctypes.util.find_library` without the compiler and linker searches."""
    from_cache: Callable[[str], str | None] | None = getattr(
        ctypes.util, "_findSoname_ldconfig", None
    )
    if from_cache is None or not sys.platform.startswith("linux"):
        return ctypes.util.find_library(name)
    found = from_cache(name)
    if found:
        return found
    # LD_LIBRARY_PATH, then the linker's own defaults (a system without ldconfig, musl)
    directories = os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
    for directory in [*directories, *STANDARD_DIRS]:
        if directory:
            pattern = os.path.join(glob.escape(directory), f"lib{glob.escape(name)}.so*")
            matches = sorted(glob.glob(pattern))
            if matches:
                return os.path.basename(matches[0])
    return None


@contextmanager
def quick_library_lookup() -> Iterator[None]:
    """`ctypes.util.find_library` is `find_library` inside the block (for an import)."""
    original = ctypes.util.find_library
    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = original
