"""The fast path of a type call: hand it to the running engine over a unix socket.

Run by path with ``python -I -S`` (stdlib only, no site, no package import), so a call
costs a bare interpreter start instead of loading the emulator.  When no engine answers
it becomes the normal emulator process.  Wire format: NUL-separated fields (argv and
environment strings cannot contain NUL), then stdin; the answer is
``<status>\\0<stdout length>\\0<stdout><stderr>``.
Usage: client.py SOCKET PYTHON TYPE [ARGUMENT...]
"""

from __future__ import annotations

import os
import socket
import sys


def _fallback(python: str, type_name: str, args: list[str]) -> None:
    os.execv(python, [python, "-I", "-m", "cdist_trio.emulator", type_name, *args])


def main(argv: list[str]) -> int:
    path, python, type_name, args = argv[0], argv[1], argv[2], argv[3:]
    stdin = sys.stdin.buffer if sys.stdin is not None else None
    has_stdin = stdin is not None and not stdin.isatty()
    env = [f"{k}={v}".encode() for k, v in os.environ.items()]
    fields = [b"v1", type_name.encode(), str(len(args)).encode()]
    fields += [os.fsencode(a) for a in args]
    fields += [str(len(env)).encode(), *env, b"1" if has_stdin else b"0"]
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
    except OSError:
        _fallback(python, type_name, args)
    with sock:
        sock.sendall(b"\0".join(fields) + b"\0")
        if has_stdin and stdin is not None:
            while chunk := stdin.read(1 << 16):
                sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        answer = bytearray()
        while chunk := sock.recv(1 << 16):
            answer += chunk
    status, length, rest = bytes(answer).split(b"\0", 2)
    out_length = int(length)
    sys.stdout.buffer.write(rest[:out_length])
    sys.stdout.flush()
    sys.stderr.buffer.write(rest[out_length:])
    sys.stderr.flush()
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
