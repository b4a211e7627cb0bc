"""``$__remote_exec`` / ``$__remote_copy`` for types, relayed into the running engine.

Run by path with ``python -I`` (stdlib only, no package import): it sends one request
to the host scope's unix socket and replays the answer, so a type's own ssh/scp calls
share the host's pooled, limit-aware connections instead of opening new ones.
Usage: relay_client.py SOCKET exec HOST COMMAND...  |  SOCKET copy SOURCE... HOST:DEST
"""

import base64
import json
import os
import socket
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in ("exec", "copy"):
        sys.stderr.write(__doc__ or "")
        return 2
    path, op, args = argv[0], argv[1], argv[2:]
    stdin = None
    if op == "exec" and not sys.stdin.isatty():
        stdin = base64.b64encode(sys.stdin.buffer.read()).decode()
    request = {"op": op, "args": args, "cwd": os.getcwd(), "stdin": stdin}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(json.dumps(request).encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks) or b'{"rc": 255, "error": "no answer"}')
    sys.stdout.buffer.write(base64.b64decode(answer.get("stdout", "")))
    sys.stdout.flush()
    sys.stderr.buffer.write(base64.b64decode(answer.get("stderr", "")))
    if answer.get("error"):
        sys.stderr.write(f"{answer['error']}\n")
    return int(answer["rc"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
