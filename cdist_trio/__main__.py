"""``python -m cdist_trio``: the ``cdist-trio`` command (see :mod:`cdist_trio.cli`)."""

from cdist_trio.cli import console_main

if __name__ == "__main__":
    console_main(prog="cdist-trio")
