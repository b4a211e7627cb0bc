"""Differential tests of `cdist_trio.gencode_twins` against the scripts they stand for.

A twin is the in-engine Python version of one bundled gencode script
(``__directory/gencode-remote``, ``__file/gencode-local``, ``__file/gencode-remote``).
Each case below is an object (parameters, explorer output, stdin, upload verdict) plus
the gencode environment.  The case is laid out in one directory and the real script
runs on it with ``/bin/sh -e``; then the directory is put back as it was laid out (so
paths in the outputs are the same) and the twin runs on it.  A twin either declines
(returns None and has changed no file) or does exactly what the script did: the same
stdout, byte for byte, the same files afterwards (``$__object/upload``; the messages
file once the messages the twin hands back are appended to it, as the engine does with
the host's messages), and the script must have succeeded without a word on stderr.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdist_trio.gencode_twins import twin_for

CONF = Path(__file__).resolve().parents[2] / "cdist_trio" / "conf"
TYPES = CONF / "type"
MARKER = ".cdist-t3st1ng0"

#: script key -> (type name, script name)
SCRIPTS = {
    "dir-remote": ("__directory", "gencode-remote"),
    "file-local": ("__file", "gencode-local"),
    "file-remote": ("__file", "gencode-remote"),
}

# Placeholders, replaced when a case is laid out: the source files' directory, and
# the content's size, POSIX cksum CRC and md5.
SRC = "@SRC@"
SIZE = "@SIZE@"
CRC = "@CRC@"
MD5 = "@MD5@"


@dataclass(frozen=True)
class Case:
    script: str
    state: bytes | None = b"present\n"
    explorer: str | None = "type: none\n"
    owner: str | None = None
    group: str | None = None
    mode: str | None = None
    parents: bool = False
    recursive: bool = False
    source: str | None = None
    """``-`` (content in ``$__object/stdin``), ``-nostdin`` (``-`` without a stdin
    file), a path (with `SRC`), or None (no such parameter)."""
    content: bytes = b"content\n"
    upload: str | None = None
    onchange: bytes | None = None
    object_id: str = "srv/dir/file"
    messages: bytes | None = b""
    """What ``$__messages_out`` holds before (None: no such file yet)."""
    marker: str | None = MARKER
    stdin_size: str | None = "right"
    """``$__cdist_trio_stdin_size`` when there is a stdin file: "right" (its size, as
    the engine gives it), None (unset, as under cdist) or this value."""
    inline_limit: str | None = None
    target_host: str = "host.example"
    remote_copy: str = "scp -q -o X=y"


def base_case(script: str) -> Case:
    if script == "dir-remote":
        return Case(script)
    if script == "file-local":
        return Case(script, source="-")
    return Case(script, source="-", upload=f"inline {SIZE}\n")


def describe(case: Case) -> str:
    base = base_case(case.script)
    fields = [case.script]
    for f in dataclasses.fields(case):
        value = getattr(case, f.name)
        if f.name != "script" and value != getattr(base, f.name):
            text = repr(value)
            if len(text) > 80:
                text = text[:60] + f"...({len(value)} long)"
            fields.append(f"{f.name}={text}")
    return " ".join(fields)


# --------------------------------------------------------------------------- inputs

STATES: list[bytes | None] = [
    b"present\n",
    b"present",  # a default value, copied without a newline
    b"absent\n",
    b"exists\n",
    b"pre-exists\n",
    b"bogus\n",
    b"present\n\n",
    b"",
    None,
]
MODES: list[str | None] = [
    None,
    "0644",
    "644",
    "0755",
    "4755",
    "2775",
    "0000",
    "0",
    "00644",
    "0640",
    "99",
    "abc",
    "12345",
    "0644\n\n",
    "",
]
OWNERS: list[str | None] = [None, "root", "0", "1000", "o'q", "a b", ""]
CONTENTS: list[bytes] = [
    b"",
    b"x",
    b"content\n",
    b"it's\ta test\n",
    b"crlf\r\nline\r\n",
    b"caf\xc3\xa9\n",
    b"nul\x00byte\n",
    b"a" * 1024,
    b"b" * 1025,
    b"no trailing newline",
    b"\n\nlead and trail\n\n",
    b"$HOME `x` \\n \"q\" 'r' %s %%\n",
    b"0123456789abcdef" * 1250,
    b"\xff\xfe not utf-8\n",
    b"del \x7f\n",
    bytes(range(32, 127)) + b"\n",
]
SOURCES: list[str | None] = [
    None,
    "-",
    "-nostdin",
    f"{SRC}/content",
    f"{SRC}/it's content",
    f"{SRC}/missing",
    SRC,  # a directory
    "case/src/content",  # relative: to the script's cwd
]
UPLOADS: list[str | None] = [
    None,
    f"inline {SIZE}\n",
    "inline 0\n",
    "copy\n",
    "inline abc\n",
    "inline 2000\n",
]
ONCHANGES: list[bytes | None] = [
    None,
    b"systemctl reload x\n",
    b"a 'x'\n\nb \"q\" $y\n\n",
    b"\xff\xfe not utf-8\n",
    b"no trailing newline",
]
OBJECT_IDS = ["srv/dir/file", "srv/it's a/fi le", "srv/caf\u00e9/\u00fc"]
MESSAGES: list[bytes | None] = [b"", b"earlier\n", None]
MARKERS: list[str | None] = [MARKER, None, ""]
INLINE_LIMITS: list[str | None] = [None, "16384", "4", "x", "", "0", " 4", "99999999999999999999"]
STDIN_SIZES: list[str | None] = ["right", None, "", "3", "x", "99999999999999999999"]
HOSTS = [
    "host.example",
    "2001:db8::1",
    "root@2001:db8::1",
    "[2001:db8::1]",
    "a:b@c",
    "u@h@2001::1",
]

_FILE_STAT = "kind: file\nowner: 0 root\ngroup: 0 root\nmode: 0644 -rw-r--r--\n"
F_NONE = "type: none\n"
F_FULL = f"type: file\n{_FILE_STAT}size: {SIZE}\nlinks: 1\ncksum: {CRC} {SIZE}\n"
F_WRONG = f"type: file\n{_FILE_STAT}size: {SIZE}\nlinks: 1\ncksum: 1234567 {SIZE}\n"
F_OTHER = (
    "type: file\nkind: file\nowner: 1000 alice\ngroup: 1000 staff\n"
    "mode: 0755 -rwxr-xr-x\nsize: 3\nlinks: 1\ncksum: 99 3\n"
)
F_SUID = (
    "type: file\nkind: file\nowner: 0 root\ngroup: 1000 staff\n"
    f"mode: 4755 -rwsr-xr-x\nsize: {SIZE}\nlinks: 2\ncksum: {CRC} {SIZE}\n"
)
FILE_EXPLORERS: list[str | None] = [
    F_NONE,
    F_FULL,
    F_WRONG,
    F_OTHER,
    F_SUID,
    f"type: file\ncksum: {CRC} {SIZE}\n",
    "type: file\nkind: file\nowner: 0 root\ngroup: 0 root\nmode: 0640 -rw-r-----\n",
    f"type: file\ncksum: md5 {MD5}\n",
    "type: file\ncksum: md5 0123456789abcdef0123456789abcdef\n",
    "type: directory\nkind: directory\nowner: 0 root\ngroup: 0 root\n"
    "mode: 0755 drwxr-xr-x\nsize: 4096\nlinks: 2\n",
    "type: symlink\n",
    "type: unknown\n",
    f"  type:   file \nowner:\t0\troot\t\n\nmode:  0644   -rw-r--r--\ncksum:  {CRC}   {SIZE}  \n",
    f"type: file\ncksum: {CRC}\t{SIZE}\n",
    f"type: file\nmode: 0644 -rw-r--r--\ncksum: {CRC} {SIZE}",
    f"type: file\ncksum: {CRC} {SIZE} extra\n",
    f"type: none\ntype: file\ncksum: {CRC} {SIZE}\n",
    f"type: file\r\nmode: 0644 -rw-r--r--\r\ncksum: {CRC} {SIZE}\r\n",
    "",
    None,
]
_DIR_STAT = "kind: directory\nowner: 0 root\ngroup: 0 root\nmode: 0755 drwxr-xr-x\n"
D_NONE = "type: none\n"
D_DIR = f"type: directory\n{_DIR_STAT}size: 4096\nlinks: 2\n"
D_OTHER = (
    "type: directory\nkind: directory\nowner: 1000 alice\ngroup: 1000 staff\n"
    "mode: 0700 drwx------\nsize: 4096\nlinks: 3\n"
)
D_SGID = (
    "type: directory\nkind: directory\nowner: 0 root\ngroup: 1000 staff\n"
    "mode: 2775 drwxrwsr-x\nsize: 4096\nlinks: 2\n"
)
D_MISMATCH = f"{D_DIR}mismatch: owner\nmismatch: group\n"
DIR_EXPLORERS: list[str | None] = [
    D_NONE,
    D_DIR,
    D_OTHER,
    D_SGID,
    D_MISMATCH,
    f"{D_DIR}mismatch: owner\n",
    f"{D_DIR}mismatch: group\n",
    "type: directory\n",
    "type: directory\nmode: 755 drwxr-xr-x\n",
    "type: file\nkind: file\nowner: 0 root\ngroup: 0 root\nmode: 0644 -rw-r--r--\n"
    "size: 8\nlinks: 1\n",
    "type: symlink\n",
    "type: unknown\n",
    "type: none\nmismatch: owner\n",
    "  type:\tdirectory  \nowner:   0\troot \n\nmode:\t0755  drwxr-xr-x\nmismatch:  group\n",
    "type: directory\nowner: 0 root\nmode: 0755 drwxr-xr-x",
    "type: directory\r\nmode: 0755 drwxr-xr-x\r\n",
    "",
    None,
]

_FILE_DIMS: dict[str, list[Any]] = {
    "state": list(STATES),
    "explorer": list(FILE_EXPLORERS),
    "source": list(SOURCES),
    "content": list(CONTENTS),
    "owner": list(OWNERS),
    "mode": list(MODES),
    "upload": list(UPLOADS),
    "object_id": list(OBJECT_IDS),
    "messages": list(MESSAGES),
    "marker": list(MARKERS),
    "stdin_size": list(STDIN_SIZES),
    "inline_limit": list(INLINE_LIMITS),
    "target_host": list(HOSTS),
}

#: every dimension a random case may take, per script
DIMS: dict[str, dict[str, list[Any]]] = {
    "dir-remote": {
        "state": list(STATES),
        "explorer": list(DIR_EXPLORERS),
        "owner": list(OWNERS),
        "group": list(OWNERS),
        "mode": list(MODES),
        "parents": [False, True],
        "recursive": [False, True],
        "object_id": list(OBJECT_IDS),
        "messages": list(MESSAGES),
        "marker": list(MARKERS),
    },
    "file-local": dict(_FILE_DIMS),
    "file-remote": {**_FILE_DIMS, "group": list(OWNERS), "onchange": list(ONCHANGES)},
}

RANDOM_CASES = 250


def product(script: str, **dims: Sequence[Any]) -> Iterator[Case]:
    base = base_case(script)
    names = list(dims)
    for values in itertools.product(*(dims[n] for n in names)):
        yield dataclasses.replace(base, **dict(zip(names, values, strict=True)))


def random_cases(script: str, seed: int) -> Iterator[Case]:
    """Random combinations of all dimensions; each keeps its common value now and
    then, so that not nearly every case has something the script rejects."""
    rng = random.Random(seed)
    base = base_case(script)
    for _ in range(RANDOM_CASES):
        changes = {
            name: rng.choice(values) for name, values in DIMS[script].items() if rng.random() < 0.6
        }
        yield dataclasses.replace(base, **changes)


def matrix(script: str) -> list[Case]:
    cases: list[Case] = []
    big = b"0123456789abcdef" * 1250
    if script == "dir-remote":
        cases += product(script, state=STATES, explorer=DIR_EXPLORERS, mode=["0755"])
        cases += product(
            script,
            mode=MODES,
            explorer=[D_NONE, D_DIR, D_OTHER, D_SGID],
            owner=[None, "root"],
            parents=[False, True],
        )
        cases += product(
            script,
            owner=OWNERS,
            group=OWNERS,
            explorer=[D_NONE, D_DIR, D_MISMATCH],
            recursive=[False, True],
        )
        cases += product(
            script,
            object_id=OBJECT_IDS,
            messages=MESSAGES,
            marker=MARKERS,
            state=[b"present\n", b"absent\n"],
            explorer=[D_DIR],
            mode=["0700"],
        )
    elif script == "file-local":
        cases += product(script, source=SOURCES, content=CONTENTS, explorer=[F_NONE, F_FULL])
        cases += product(script, state=STATES, explorer=FILE_EXPLORERS, source=[f"{SRC}/content"])
        cases += product(
            script,
            explorer=FILE_EXPLORERS,
            content=[b"x", b"it's\ta test\n", b"nul\x00byte\n", b"b" * 1025],
        )
        cases += product(
            script, content=[b"x", big], inline_limit=INLINE_LIMITS, stdin_size=STDIN_SIZES
        )
        cases += product(
            script, content=[b"x", big], inline_limit=INLINE_LIMITS, source=[f"{SRC}/it's content"]
        )
        cases += product(
            script, content=[big], target_host=HOSTS, marker=MARKERS, object_id=OBJECT_IDS
        )
        cases += product(script, content=[big], target_host=HOSTS, source=[f"{SRC}/it's content"])
        cases += product(script, content=[b"x", big], messages=MESSAGES)
    else:
        cases += product(
            script, upload=UPLOADS, content=CONTENTS, source=["-", f"{SRC}/it's content"]
        )
        cases += product(
            script, state=STATES, explorer=FILE_EXPLORERS, upload=[None], mode=["0644"]
        )
        cases += product(
            script, mode=MODES, explorer=[F_NONE, F_FULL, F_OTHER, F_SUID], upload=[None, "copy\n"]
        )
        cases += product(
            script, owner=OWNERS, group=OWNERS, explorer=[F_NONE, F_FULL, F_OTHER], upload=[None]
        )
        cases += product(
            script,
            onchange=ONCHANGES,
            state=[b"present\n", b"absent\n", b"exists\n", b"bogus\n"],
            explorer=[F_NONE, F_FULL],
            upload=[None, f"inline {SIZE}\n"],
        )
        cases += product(
            script,
            object_id=OBJECT_IDS,
            marker=MARKERS,
            messages=MESSAGES,
            upload=["copy\n", f"inline {SIZE}\n"],
        )
    cases += random_cases(script, seed=sum(script.encode()))
    return cases


# --------------------------------------------------------------------------- running

_cksums: dict[bytes, str] = {}


def cksum_of(content: bytes) -> str:
    """``<crc> <size>`` as the real ``cksum`` prints them."""
    if content not in _cksums:
        out = subprocess.run(
            ["cksum"],
            input=content,
            capture_output=True,
            check=True,
            env={"LC_ALL": "C", **os.environ},
        ).stdout.split()
        _cksums[content] = f"{out[0].decode()} {out[1].decode()}"
    return _cksums[content]


def fill(template: str, root: Path, content: bytes) -> str:
    crc, size = cksum_of(content).split()
    return (
        template.replace(SRC, str(root / "src"))
        .replace(SIZE, size)
        .replace(CRC, crc)
        .replace(MD5, hashlib.md5(content).hexdigest())
    )


def line(value: str) -> bytes:
    """A parameter value as the engine writes it: with a trailing newline."""
    return (value if value.endswith("\n") else value + "\n").encode()


BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("__")}


def lay_out(case: Case, root: Path) -> dict[str, str]:
    """Write the case's files under ``root`` (which must not exist); return the env."""
    type_name, _ = SCRIPTS[case.script]
    obj = root / "object" / type_name / case.object_id / MARKER
    param = obj / "parameter"
    param.mkdir(parents=True)
    (obj / "explorer").mkdir()
    if case.source not in (None, "-", "-nostdin"):
        src = root / "src"
        src.mkdir()
        (src / "content").write_bytes(case.content)
        (src / "it's content").write_bytes(case.content)
    if case.state is not None:
        (param / "state").write_bytes(case.state)
    for name in ("owner", "group", "mode"):
        value = getattr(case, name)
        if value is not None:
            (param / name).write_bytes(line(value))
    for name in ("parents", "recursive"):
        if getattr(case, name):
            (param / name).write_bytes(b"")
    if case.onchange is not None:
        (param / "onchange").write_bytes(case.onchange)
    stdin = case.source == "-"
    if case.source is not None:
        value = "-" if case.source == "-nostdin" else fill(case.source, root, case.content)
        (param / "source").write_bytes(line(value))
    if stdin:
        (obj / "stdin").write_bytes(case.content)
    if case.explorer is not None:
        (obj / "explorer" / "state").write_bytes(fill(case.explorer, root, case.content).encode())
    if case.upload is not None:
        (obj / "upload").write_bytes(fill(case.upload, root, case.content).encode())
    messages_out = root / "messages_out"
    if case.messages is not None:
        messages_out.write_bytes(case.messages)
    env = dict(BASE_ENV)
    env.update(
        {
            "__target_host": case.target_host,
            "__target_hostname": case.target_host,
            "__target_fqdn": case.target_host,
            "__object": str(obj),
            "__object_id": case.object_id,
            "__object_name": f"{type_name}/{case.object_id}",
            "__type": str(TYPES / type_name),
            "__global": str(root / "global"),
            "__files": str(root / "files"),
            "__messages_in": str(root / "messages_in"),
            "__messages_out": str(messages_out),
            "__remote_copy": case.remote_copy,
            "__remote_exec": "ssh -o X=y",
        }
    )
    if case.marker is not None:
        env["__cdist_object_marker"] = case.marker
    if stdin and case.stdin_size is not None:
        size = str(len(case.content)) if case.stdin_size == "right" else case.stdin_size
        env["__cdist_trio_stdin_size"] = size
    if case.inline_limit is not None:
        env["__file_inline_limit"] = case.inline_limit
    return env


Tree = dict[str, bytes | None]


def snapshot(root: Path) -> Tree:
    """Every file (its bytes) and directory (None) under ``root``; no mtimes, no modes."""
    tree: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        tree[rel + "/"] = None
        for name in filenames:
            path = os.path.join(dirpath, name)
            key = os.path.join(rel, name)
            if os.path.islink(path):
                tree[key] = b"symlink -> " + os.fsencode(os.readlink(path))
            else:
                with open(path, "rb") as f:
                    tree[key] = f.read()
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                tree[os.path.join(rel, name)] = b"symlink"
    return tree


def restore(root: Path, pristine: Tree, current: Tree) -> None:
    """Put back the files and directories of ``pristine`` (as they were laid out)."""
    for key in sorted(current.keys() - pristine.keys(), reverse=True):
        path = root / key
        if current[key] is None:
            path.rmdir()
        else:
            path.unlink()
    for key in sorted(pristine):
        data = pristine[key]
        if data is None:
            (root / key).mkdir(exist_ok=True)
        elif current.get(key) != data:
            (root / key).write_bytes(data)


def tree_diff(expected: Tree, actual: Tree, names: tuple[str, str] = ("script", "twin")) -> str:
    lines = []
    for key in sorted(expected.keys() | actual.keys()):
        if key not in actual:
            lines.append(f"  {key}: {expected[key]!r} only {names[0]}")
        elif key not in expected:
            lines.append(f"  {key}: {actual[key]!r} only {names[1]}")
        elif expected[key] != actual[key]:
            lines.append(f"  {key}: {names[0]} {expected[key]!r} {names[1]} {actual[key]!r}")
    return "\n".join(lines)


def script_path(key: str) -> Path:
    type_name, name = SCRIPTS[key]
    return TYPES / type_name / name


def compare(case: Case, root: Path, shell: Sequence[str] = ("/bin/sh",)) -> str | None:
    """Run the script and the twin on ``case``; return "declined" or a failure text,
    or None when both did the same."""
    script = script_path(case.script)
    twin = twin_for(script)
    assert twin is not None, script
    if root.exists():
        shutil.rmtree(root)
    env = lay_out(case, root)
    pristine = snapshot(root)
    proc = subprocess.run(
        [*shell, "-e", str(script)],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        cwd=root.parent,
        check=False,
    )
    after_script = snapshot(root)
    restore(root, pristine, after_script)
    assert snapshot(root) == pristine
    try:
        done = twin(env)
        out = None if done is None else done[0]
        if done is not None and done[1]:
            # what the engine does with them (appended to the host's messages)
            with open(env["__messages_out"], "ab") as sink:
                sink.write(done[1])
    except Exception as exc:
        return f"{describe(case)}\n  twin raised {exc!r}"
    after_twin = snapshot(root)
    if out is None:
        if after_twin != pristine:
            diff = tree_diff(pristine, after_twin, ("before", "after"))
            return f"{describe(case)}\n  declined but changed files:\n{diff}"
        return "declined"
    problems = []
    if proc.returncode != 0 or proc.stderr:
        problems.append(
            f"  script exited {proc.returncode}, stderr {proc.stderr!r}; twin did not decline"
        )
    if out != proc.stdout:
        problems.append(f"  stdout: script {proc.stdout!r}\n          twin   {out!r}")
    if after_script != after_twin:
        problems.append("  files differ:\n" + tree_diff(after_script, after_twin))
    if problems:
        return describe(case) + "\n" + "\n".join(problems)
    return None


def run_all(
    cases: list[Case], root: Path, shell: Sequence[str] = ("/bin/sh",)
) -> tuple[int, list[str]]:
    declined = 0
    failures: list[str] = []
    for case in cases:
        result = compare(case, root, shell)
        if result == "declined":
            declined += 1
        elif result is not None:
            failures.append(result)
    return declined, failures


def report(failures: list[str]) -> str:
    shown = "\n".join(failures[:15])
    more = f"\n... and {len(failures) - 15} more" if len(failures) > 15 else ""
    return f"{len(failures)} cases differ:\n{shown}{more}"


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_twin_matches_script(
    script: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    cases = matrix(script)
    assert len(set(cases)) > 0.9 * len(cases)
    declined, failures = run_all(cases, tmp_path / "case")
    record_property("cases", len(cases))
    record_property("declined", declined)
    assert not failures, report(failures)
    # a twin that declines (nearly) everything would pass the comparisons above
    assert declined <= 0.7 * len(cases), f"{declined} of {len(cases)} cases declined"


def _other_shells() -> list[list[str]]:
    """POSIX shells besides dash that a machine may have as /bin/sh."""
    shells = []
    if shutil.which("bash"):
        shells.append(["bash", "--posix"])
    if shutil.which("busybox"):
        shells.append(["busybox", "sh"])
    return shells


@pytest.mark.parametrize("shell", _other_shells(), ids=lambda shell: shell[0])
@pytest.mark.parametrize("script", list(SCRIPTS))
def test_twin_matches_script_under_other_shells(
    script: str, shell: list[str], tmp_path: Path
) -> None:
    # The twin answers for the script whatever /bin/sh is (bash on some systems, busybox
    # ash on small ones): every third case of the matrix, under each.
    _, failures = run_all(matrix(script)[::3], tmp_path / "case", shell)
    assert not failures, report(failures)


COMMON = b"benchmark content 1\n"

COMMON_CASES = [
    # __directory
    pytest.param(Case("dir-remote", parents=True, mode="0755"), id="dir-new"),
    pytest.param(
        Case("dir-remote", explorer=D_DIR, mode="0755", owner="root", group="root"),
        id="dir-same",
    ),
    pytest.param(
        Case("dir-remote", explorer=D_DIR, mode="0755", owner="0", group="0", parents=True),
        id="dir-same-by-id",
    ),
    pytest.param(Case("dir-remote", explorer=D_DIR, mode="0700"), id="dir-other-mode"),
    pytest.param(Case("dir-remote", explorer=D_DIR, state=b"absent\n"), id="dir-absent"),
    # __file gencode-local
    pytest.param(Case("file-local", source="-", content=COMMON), id="local-new"),
    pytest.param(
        Case("file-local", explorer=F_FULL, source="-", content=COMMON, mode="0644"),
        id="local-same-content",
    ),
    pytest.param(
        Case("file-local", explorer=F_WRONG, source="-", content=COMMON, mode="0644"),
        id="local-other-content",
    ),
    pytest.param(
        Case("file-local", explorer=F_FULL, source="-", content=COMMON, state=b"absent\n"),
        id="local-absent",
    ),
    # __file gencode-remote
    pytest.param(
        Case("file-remote", source="-", content=COMMON, upload=f"inline {SIZE}\n", mode="0644"),
        id="remote-new",
    ),
    pytest.param(
        Case("file-remote", explorer=F_FULL, source="-", content=COMMON, mode="0600"),
        id="remote-other-mode",
    ),
    pytest.param(
        Case(
            "file-remote",
            explorer=F_FULL,
            source="-",
            content=COMMON,
            mode="0644",
            owner="root",
            group="0",
        ),
        id="remote-nothing-to-do",
    ),
    pytest.param(
        Case("file-remote", explorer=F_FULL, source="-", content=COMMON, state=b"absent\n"),
        id="remote-absent",
    ),
    pytest.param(
        Case(
            "file-remote",
            source="-",
            content=COMMON,
            upload=f"inline {SIZE}\n",
            mode="0644",
            onchange=b"systemctl reload x\n",
        ),
        id="remote-onchange",
    ),
]


@pytest.mark.parametrize("case", COMMON_CASES)
def test_twins_handle_the_common_cases(case: Case, tmp_path: Path) -> None:
    result = compare(case, tmp_path / "case")
    assert result != "declined", f"the twin declined {describe(case)}"
    assert result is None, result


def test_twin_for_matches_content_not_path(tmp_path: Path) -> None:
    for key in SCRIPTS:
        script = script_path(key)
        assert twin_for(script) is not None, script
        copy = tmp_path / f"{key}-copy"
        copy.write_bytes(script.read_bytes())
        assert twin_for(copy) is not None, copy
        changed = tmp_path / f"{key}-changed"
        data = bytearray(script.read_bytes())
        data[-2] = ord("#") if data[-2] != ord("#") else ord("!")
        changed.write_bytes(bytes(data))
        assert twin_for(changed) is None, changed
    # the same path, its content changed: the content decides, not what the path had
    again = tmp_path / "again"
    again.write_bytes(script_path("file-remote").read_bytes())
    assert twin_for(again) is not None
    again.write_bytes(script_path("dir-remote").read_bytes())
    os.utime(again, ns=(0, 10**9))
    assert twin_for(again) is twin_for(script_path("dir-remote"))
    data = bytearray(again.read_bytes())
    data[0] = ord("x")
    again.write_bytes(bytes(data))
    os.utime(again, ns=(0, 2 * 10**9))
    assert twin_for(again) is None
    assert twin_for(TYPES / "__file" / "explorer" / "state") is None
    assert twin_for(TYPES / "__directory" / "explorer" / "state") is None
    assert twin_for(tmp_path / "does-not-exist") is None


def _env_keys_used() -> Mapping[str, set[str]]:
    """The ``$__...`` variables each script reads (for the test below)."""
    return {
        key: set(re.findall(r"\$\{?(__[a-z_]+)", script_path(key).read_text())) for key in SCRIPTS
    }


def test_cases_set_every_variable_the_scripts_read(tmp_path: Path) -> None:
    env = lay_out(Case("file-local", source="-", inline_limit="4"), tmp_path / "case")
    for key, names in _env_keys_used().items():
        assert names <= env.keys(), (key, names - env.keys())


def test_twins_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    script = script_path("file-remote")
    monkeypatch.setenv("CDIST_TRIO_GENCODE_TWINS", "0")
    assert twin_for(script) is None
    monkeypatch.setenv("CDIST_TRIO_GENCODE_TWINS", "1")
    assert twin_for(script) is not None
