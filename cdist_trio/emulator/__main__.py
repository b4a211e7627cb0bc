"""``python -m cdist_trio.emulator <type> [args...]``: the body of ``$G/bin/<type>``.

Like cli.py for the engine, this is the emulator's only place that reads argv and exits.
"""

from __future__ import annotations

import io
import os
import sys

from .entry import main


def _run() -> int:
    if len(sys.argv) < 2:
        sys.stderr.write("usage: python -m cdist_trio.emulator <type> [argument ...]\n")
        return 2
    stdin = sys.stdin.buffer if sys.stdin is not None else io.BytesIO()
    return main(sys.argv[1], sys.argv[2:], os.environ, stdin)


if __name__ == "__main__":
    sys.exit(_run())
