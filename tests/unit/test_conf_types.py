"""Unit tests for the types of the bundled conf dir (``cdist_trio/conf/type``).

The types are exercised without the engine: a small driver in this file plays
the engine's part for one object (parameter files, type explorers, gencode,
then code-local and code-remote), with the local machine as the "target" and
temporary directories as destinations.  Every scenario is run under each
POSIX shell available here (dash, bash, busybox ash).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cdist_trio.env import STDIN_SIZE

CONF = Path(__file__).resolve().parents[2] / "cdist_trio" / "conf"
MARKER = ".cdist-t3st1ng0"


def _shells() -> list[list[str]]:
    found: list[list[str]] = []
    if shutil.which("dash"):
        found.append(["dash"])
    if shutil.which("bash"):
        found.append(["bash", "--posix"])
    if shutil.which("busybox"):
        found.append(["busybox", "sh"])
        # busybox ash with nothing but busybox applets on PATH
        found.append(["busybox-userland"])
    if not found:
        found.append(["/bin/sh"])
    return found


SHELLS = _shells()


@pytest.fixture(params=SHELLS, ids=lambda s: s[0])
def shell(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


def busybox_userland(tmp: Path) -> tuple[list[str], str]:
    """A PATH made only of busybox applets, and the shell command to use with it."""
    busybox = shutil.which("busybox")
    assert busybox
    bindir = tmp / "busybox-bin"
    bindir.mkdir()
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        (bindir / applet).symlink_to(busybox)
    return [busybox, "sh"], str(bindir)


ParamValue = str | list[str] | bool


@dataclass
class Result:
    code_local: str
    code_remote: str
    messages: list[str]
    explorers: dict[str, str] = field(default_factory=dict)


class Driver:
    """Plays the engine for single objects against the local machine."""

    def __init__(self, tmp: Path, shell: list[str]) -> None:
        self.tmp = tmp
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("__")}
        if shell == ["busybox-userland"]:
            shell, self.env["PATH"] = busybox_userland(tmp)
        self.shell = shell
        self.global_dir = tmp / "global"
        (self.global_dir / "explorer").mkdir(parents=True)
        self.counter = 0
        self.target_host = "localhost"
        #: PATH for gencode scripts only (None: the same PATH as everything else)
        self.gencode_path: str | None = None
        self.stdin_size = True
        """Give gencode ``$__cdist_trio_stdin_size`` with stdin, as the engine does
        (`cdist_trio.env.gencode_env`); False: as cdist, which does not."""
        copy = tmp / "remote-copy"
        copy.write_text('#!/bin/sh -e\nsrc=$1\ndst=${2#*:}\ncp "$src" "$dst"\n')
        copy.chmod(0o755)
        execute = tmp / "remote-exec"
        execute.write_text('#!/bin/sh -e\nshift\nexec /bin/sh -c "$*"\n')
        execute.chmod(0o755)
        self.remote_copy = str(copy)
        self.remote_exec = str(execute)
        self.explorer_dir = CONF / "explorer"
        for script in sorted(self.explorer_dir.iterdir()):
            out = self.sh(script, {"__explorer": str(self.explorer_dir)})
            (self.global_dir / "explorer" / script.name).write_text(out)

    def fake_global(self, name: str, value: str) -> None:
        """Pretend the global explorer ``name`` printed ``value``."""
        (self.global_dir / "explorer" / name).write_text(value + "\n")
        fake = self.tmp / "fake-explorer"
        if not fake.exists():
            shutil.copytree(self.explorer_dir, fake)
            self.explorer_dir = fake
        script = fake / name
        script.write_text(f"#!/bin/sh -e\necho '{value}'\n")
        script.chmod(0o755)

    def fake_command(self, name: str, script: str) -> None:
        """Put an executable ``name`` first on PATH."""
        bindir = self.tmp / "fake-bin"
        if not bindir.exists():
            bindir.mkdir()
            self.env["PATH"] = f"{bindir}:{self.env['PATH']}"
        path = bindir / name
        path.write_text(script)
        path.chmod(0o755)

    def sh(self, script: Path, env: dict[str, str], stdin: bytes | None = None) -> str:
        proc = subprocess.run(
            [*self.shell, "-e", str(script)],
            env={**self.env, **env},
            input=stdin if stdin is not None else b"",
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ScriptError(script, proc.returncode, proc.stderr.decode())
        return proc.stdout.decode()

    def run(
        self,
        type_name: str,
        object_id: str,
        params: dict[str, ParamValue] | None = None,
        stdin: bytes | None = None,
        execute: bool = True,
        messages_in: str = "",
    ) -> Result:
        type_dir = CONF / "type" / type_name
        object_id = object_id.strip("/")
        self.counter += 1
        objdir = self.tmp / f"run{self.counter}" / "object" / type_name / object_id / MARKER
        (objdir / "parameter").mkdir(parents=True)
        (objdir / "explorer").mkdir()
        (objdir / "files").mkdir()
        given = dict(params or {})
        defaults = type_dir / "parameter" / "default"
        if defaults.is_dir():
            for d in defaults.iterdir():
                if d.name not in given and not d.name.startswith("."):
                    (objdir / "parameter" / d.name).write_text(d.read_text())
        for name, value in given.items():
            path = objdir / "parameter" / name
            if value is True:
                path.write_text("")
            elif value is False:
                continue
            elif isinstance(value, list):
                path.write_text("".join(f"{v}\n" for v in value))
            else:
                path.write_text(value if value.endswith("\n") or not value else value + "\n")
        if stdin is not None:
            (objdir / "stdin").write_bytes(stdin)
        object_name = f"{type_name}/{object_id}"
        base = {
            "__target_host": self.target_host,
            "__target_hostname": self.target_host,
            "__target_fqdn": self.target_host,
            "__object": str(objdir),
            "__object_id": object_id,
            "__object_name": object_name,
        }
        explorers: dict[str, str] = {}
        exp_dir = type_dir / "explorer"
        if exp_dir.is_dir():
            for script in sorted(exp_dir.iterdir()):
                out = self.sh(
                    script,
                    {
                        **base,
                        "__explorer": str(self.explorer_dir),
                        "__type_explorer": str(exp_dir),
                    },
                )
                if out and not out.endswith("\n"):
                    out += "\n"
                (objdir / "explorer" / script.name).write_text(out)
                explorers[script.name] = out
        messages_in_file = self.tmp / f"run{self.counter}.messages_in"
        messages_in_file.write_text(messages_in)
        messages_out = self.tmp / f"run{self.counter}.messages_out"
        messages_out.write_text("")
        gen_env = {
            **base,
            "__global": str(self.global_dir),
            "__type": str(type_dir),
            "__files": str(self.tmp / "files"),
            "__messages_in": str(messages_in_file),
            "__messages_out": str(messages_out),
            "__cdist_object_marker": MARKER,
            "__remote_copy": self.remote_copy,
            "__remote_exec": self.remote_exec,
        }
        manifest = type_dir / "manifest"
        if manifest.exists():
            # only manifests that define no objects can run without the engine
            self.sh(manifest, gen_env)
        codes: dict[str, str] = {}
        gencode_env = dict(gen_env)
        if self.gencode_path is not None:
            gencode_env["PATH"] = self.gencode_path
        if stdin is not None and self.stdin_size:
            gencode_env[STDIN_SIZE] = str(len(stdin))
        for kind in ("local", "remote"):
            gencode = type_dir / f"gencode-{kind}"
            codes[kind] = self.sh(gencode, gencode_env) if gencode.exists() else ""
        if execute:
            if codes["local"].strip("\n"):
                path = objdir / "code-local"
                path.write_text(codes["local"])
                self.sh(path, gen_env)
            if codes["remote"].strip("\n"):
                path = objdir / "code-remote"
                path.write_text(codes["remote"])
                self.sh(path, {"__object": str(objdir), "__object_id": object_id})
        return Result(
            code_local=codes["local"].strip("\n"),
            code_remote=codes["remote"].strip("\n"),
            messages=messages_out.read_text().splitlines(),
            explorers=explorers,
        )

    def converge(self, type_name: str, object_id: str, **kwargs: object) -> Result:
        """Apply once, then assert that a second run generates no code at all."""
        first = self.run(type_name, object_id, **kwargs)  # type: ignore[arg-type]
        assert first.code_local or first.code_remote, "nothing to do on the first run"
        second = self.run(type_name, object_id, **kwargs)  # type: ignore[arg-type]
        assert second.code_local == "", second
        assert second.code_remote == "", second
        assert second.messages == [], second
        return first


class ScriptError(Exception):
    def __init__(self, script: Path, rc: int, stderr: str) -> None:
        super().__init__(f"{script} exited {rc}: {stderr}")
        self.stderr = stderr


@pytest.fixture
def drv(tmp_path: Path, shell: list[str]) -> Driver:
    return Driver(tmp_path, shell)


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o7777


# --------------------------------------------------------------------------- __file


def test_file_create_empty(drv: Driver) -> None:
    dest = drv.tmp / "target" / "empty"
    dest.parent.mkdir()
    res = drv.converge("__file", str(dest), params={"mode": "0640"})
    assert dest.is_file()
    assert dest.read_bytes() == b""
    assert mode_of(dest) == 0o640
    assert res.messages == ["create", "chmod 0640"]


def test_file_upload_and_replace(drv: Driver) -> None:
    dest = drv.tmp / "target" / "with space's" / "motd"
    dest.parent.mkdir(parents=True)
    src = drv.tmp / "src file"
    src.write_text("hello\n")
    res = drv.converge("__file", str(dest), params={"source": str(src), "mode": "644"})
    assert dest.read_text() == "hello\n"
    assert mode_of(dest) == 0o644
    assert res.messages == ["upload", "chmod 644"]
    assert res.code_local == ""  # small content travels inside code-remote
    src.write_text("changed\n")
    res = drv.converge("__file", str(dest), params={"source": str(src), "mode": "644"})
    assert dest.read_text() == "changed\n"
    assert res.messages == ["upload", "chmod 644"]
    # no temp files left behind
    assert sorted(p.name for p in dest.parent.iterdir()) == ["motd"]


def test_file_binary_content_inline_is_byte_exact(drv: Driver) -> None:
    dest = drv.tmp / "blob"
    src = drv.tmp / "blob-src"
    src.write_bytes(bytes(range(256)) * 3 + b"\n\n")
    res = drv.converge("__file", str(dest), params={"source": str(src)})
    assert dest.read_bytes() == src.read_bytes()
    assert res.code_local == ""


def test_file_inline_content_of_any_size_is_byte_exact(drv: Driver) -> None:
    # up to 1 KiB the octal escapes are made by the shell, above by awk
    for size in (0, 255, 256, 1024, 1025, 4097):
        dest = drv.tmp / f"inline-{size}"
        src = drv.tmp / f"inline-{size}-src"
        src.write_bytes(bytes((i * 7) % 256 for i in range(size)))
        res = drv.run("__file", str(dest), params={"source": str(src)})
        assert dest.read_bytes() == src.read_bytes()
        assert res.code_local == ""
        assert res.code_remote.count("printf '") == (size + 255) // 256


@pytest.mark.parametrize(
    ("content", "as_text"),
    [
        (b"plain line\n", True),
        (b"no newline at the end", True),
        (b"\n\n\ntrailing and leading newlines\n\n", True),
        (b"it's \"quoted\" $HOME `cmd` \\n \\ 'x'\t\n  indented\n", True),
        (b"".join(bytes([c]) for c in range(32, 127)) + b"\n", True),
        (b"x" * 1024, True),
        (b"x" * 1025, False),  # above 1 KiB: octal escapes by awk
        (b"crlf\r\n", False),
        (b"nul\0byte\n", False),
        ("caf\u00e9\n".encode(), False),
    ],
)
def test_file_short_text_travels_as_it_is(drv: Driver, content: bytes, as_text: bool) -> None:
    """Short ASCII text is written with one printf of the text itself (no od); any
    other content with octal escapes.  Both are byte-exact."""
    dest = drv.tmp / "text"
    src = drv.tmp / "text-src"
    src.write_bytes(content)
    res = drv.run("__file", str(dest), params={"source": str(src)})
    assert dest.read_bytes() == content
    assert res.code_local == ""
    assert ("printf %s '" in res.code_remote) is as_text
    assert ("printf '\\" in res.code_remote) is not as_text


def test_file_large_content_uses_remote_copy(drv: Driver) -> None:
    dest = drv.tmp / "big"
    src = drv.tmp / "big-src"
    src.write_bytes(b"0123456789abcdef" * 2000)
    res = drv.converge("__file", str(dest), params={"source": str(src)})
    assert dest.read_bytes() == src.read_bytes()
    assert drv.remote_copy in res.code_local
    assert res.messages == ["upload"]


def test_file_mode_change_only(drv: Driver) -> None:
    dest = drv.tmp / "f"
    dest.write_text("x")
    dest.chmod(0o600)
    res = drv.converge("__file", str(dest), params={"mode": "0755"})
    assert mode_of(dest) == 0o755
    assert res.messages == ["chmod 0755"]
    assert res.code_local == ""
    assert dest.read_text() == "x"


def test_file_owner_group_by_id_and_name(drv: Driver) -> None:
    dest = drv.tmp / "f"
    dest.write_text("x")
    uid, gid = os.getuid(), os.getgid()
    res = drv.run("__file", str(dest), params={"owner": str(uid), "group": str(gid)})
    assert res.code_remote == ""
    import grp
    import pwd

    name = pwd.getpwuid(uid).pw_name
    group = grp.getgrgid(gid).gr_name
    res = drv.run("__file", str(dest), params={"owner": name, "group": group})
    assert res.code_remote == ""


def test_file_stdin_source(drv: Driver) -> None:
    dest = drv.tmp / "from-stdin"
    res = drv.converge("__file", str(dest), params={"source": "-"}, stdin=b"via stdin\n")
    assert dest.read_bytes() == b"via stdin\n"
    assert res.messages == ["upload"]


@pytest.mark.parametrize("engine_size", [True, False], ids=["stdin_size", "wc"])
def test_file_stdin_content_of_any_size_is_byte_exact(drv: Driver, engine_size: bool) -> None:
    """The size of new content from stdin decides inline or copy: the engine's
    ``$__cdist_trio_stdin_size`` or, without it, ``wc -c``; either way the bytes land."""
    drv.stdin_size = engine_size
    for size in (0, 1, 300, 16384, 16385):
        dest = drv.tmp / f"stdin-{size}-{engine_size}"
        content = bytes((i * 7) % 256 for i in range(size))  # NUL bytes included
        res = drv.run("__file", str(dest), params={"source": "-"}, stdin=content)
        assert dest.read_bytes() == content
        assert bool(res.code_local) == (size > 16384)  # over the inline limit: copied


def test_file_exists_keeps_content(drv: Driver) -> None:
    dest = drv.tmp / "keep"
    dest.write_text("original\n")
    src = drv.tmp / "src"
    src.write_text("new\n")
    res = drv.run("__file", str(dest), params={"source": str(src), "state": "exists"})
    assert dest.read_text() == "original\n"
    assert res.code_local == res.code_remote == ""
    dest.unlink()
    res = drv.converge("__file", str(dest), params={"source": str(src), "state": "exists"})
    assert dest.read_text() == "new\n"


def test_file_pre_exists(drv: Driver) -> None:
    dest = drv.tmp / "pre"
    with pytest.raises(ScriptError, match="pre-exists"):
        drv.run("__file", str(dest), params={"state": "pre-exists"})
    dest.write_text("x")
    dest.chmod(0o600)
    res = drv.converge("__file", str(dest), params={"state": "pre-exists", "mode": "0644"})
    assert mode_of(dest) == 0o644
    assert res.messages == ["chmod 0644"]


def test_file_absent(drv: Driver) -> None:
    dest = drv.tmp / "gone"
    dest.write_text("x")
    res = drv.converge("__file", str(dest), params={"state": "absent"})
    assert not dest.exists()
    assert res.messages == ["remove"]


def test_file_replaces_directory_and_symlink(drv: Driver) -> None:
    src = drv.tmp / "src"
    src.write_text("content\n")
    d = drv.tmp / "was-dir"
    (d / "sub").mkdir(parents=True)
    drv.converge("__file", str(d), params={"source": str(src)})
    assert d.read_text() == "content\n"
    link = drv.tmp / "was-link"
    link.symlink_to(src)
    drv.converge("__file", str(link), params={"source": str(src)})
    assert not link.is_symlink()
    assert link.read_text() == "content\n"


def test_file_missing_source_fails(drv: Driver) -> None:
    with pytest.raises(ScriptError, match="does not exist"):
        drv.run("__file", str(drv.tmp / "x"), params={"source": str(drv.tmp / "nope")})


def test_file_onchange(drv: Driver) -> None:
    dest = drv.tmp / "oc"
    hook = drv.tmp / "hook-ran"
    res = drv.converge("__file", str(dest), params={"onchange": f"touch '{hook}'"})
    assert hook.exists()
    assert f"touch '{hook}'" in res.code_remote


def test_file_quoting(drv: Driver) -> None:
    evil = drv.tmp / "evil"
    evil.mkdir()
    dest = evil / "a'b; touch pwned $(touch pwned2) `x`"
    src = drv.tmp / "s'rc $(touch pwned3)"
    src.write_text("q\n")
    drv.converge("__file", str(dest), params={"source": str(src), "mode": "600"})
    assert dest.read_text() == "q\n"
    assert not any(p.name.startswith("pwned") for p in Path.cwd().iterdir())
    assert sorted(p.name for p in evil.iterdir()) == [dest.name]


def test_file_ipv6_host_is_bracketed(drv: Driver) -> None:
    src = drv.tmp / "src"
    src.write_text("x" * 20000)  # too big to travel inline: copied with $__remote_copy
    drv.target_host = "fe80::1"
    res = drv.run("__file", str(drv.tmp / "v6"), params={"source": str(src)}, execute=False)
    assert "'[fe80::1]:" in res.code_local
    drv.target_host = "root@fe80::1"
    res = drv.run("__file", str(drv.tmp / "v6"), params={"source": str(src)}, execute=False)
    assert "'root@[fe80::1]:" in res.code_local


# --------------------------------------------------------------------------- __directory


def test_directory_create_parents_mode(drv: Driver) -> None:
    dest = drv.tmp / "a" / "b c" / "d"
    res = drv.converge("__directory", str(dest), params={"parents": True, "mode": "0750"})
    assert dest.is_dir()
    assert mode_of(dest) == 0o750
    assert res.messages == ["create", "chmod 0750"]


def test_directory_without_parents_fails_at_runtime(drv: Driver) -> None:
    dest = drv.tmp / "missing" / "d"
    with pytest.raises(ScriptError):
        drv.run("__directory", str(dest))


def test_directory_replaces_file_and_removes(drv: Driver) -> None:
    dest = drv.tmp / "d"
    dest.write_text("x")
    res = drv.converge("__directory", str(dest))
    assert dest.is_dir()
    assert res.messages == ["remove non directory", "create"]
    (dest / "inner").write_text("y")
    res = drv.converge("__directory", str(dest), params={"state": "absent"})
    assert not dest.exists()
    assert res.messages == ["remove"]


def test_directory_symlink_to_directory_is_kept(drv: Driver) -> None:
    real = drv.tmp / "real"
    real.mkdir()
    link = drv.tmp / "link"
    link.symlink_to(real)
    res = drv.run("__directory", str(link))
    assert res.code_remote == ""
    assert link.is_symlink()


def test_directory_recursive_owner(drv: Driver) -> None:
    import pwd

    dest = drv.tmp / "tree"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "f").write_text("x")
    me = pwd.getpwuid(os.getuid()).pw_name
    res = drv.run("__directory", str(dest), params={"owner": me, "recursive": True})
    assert res.code_remote == ""
    if os.getuid() == 0:
        os.chown(dest / "sub" / "f", 12345, -1)
        res = drv.converge("__directory", str(dest), params={"owner": me, "recursive": True})
        assert f"chown -R '{me}'" in res.code_remote
        assert (dest / "sub" / "f").stat().st_uid == 0


def test_directory_pre_exists(drv: Driver) -> None:
    dest = drv.tmp / "pre"
    with pytest.raises(ScriptError, match="pre-exists"):
        drv.run("__directory", str(dest), params={"state": "pre-exists"})


# --------------------------------------------------------------------------- few processes
# gencode runs locally once per object, so the common paths of __directory and __file
# use shell builtins only: with an empty PATH any cat, sed or awk there would fail.
# (busybox sh finds its applets without PATH: there these tests check results only.)


def sq(value: str) -> str:
    """``value`` quoted for sh the way the types quote it."""
    return "'" + value.replace("'", "'\\''") + "'"


@pytest.fixture
def no_path(drv: Driver) -> Driver:
    empty = drv.tmp / "empty-path"
    empty.mkdir()
    drv.gencode_path = str(empty)
    drv.shell = [shutil.which(drv.shell[0]) or drv.shell[0], *drv.shell[1:]]
    return drv


def test_directory_gencode_needs_no_commands(no_path: Driver) -> None:
    import grp
    import pwd

    drv = no_path
    me = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    dest = drv.tmp / "it's" / "d"
    params: dict[str, ParamValue] = {"parents": True, "mode": "0750", "owner": me, "group": group}
    res = drv.converge("__directory", str(dest), params=params)
    assert res.messages == ["create", f"chgrp {group}", f"chown {me}", "chmod 0750"]
    assert mode_of(dest) == 0o750
    dest.chmod(0o700)
    res = drv.converge("__directory", str(dest), params=params)
    assert res.code_remote == f"chmod 0750 {sq(str(dest))}"
    res = drv.converge("__directory", str(dest), params={"state": "absent"})
    assert res.messages == ["remove"]


def test_file_gencode_needs_no_commands(no_path: Driver) -> None:
    drv = no_path
    dest = drv.tmp / "it's"
    res = drv.converge("__file", str(dest), params={"mode": "600"})
    assert res.messages == ["create", "chmod 600"]
    dest.chmod(0o644)
    res = drv.converge("__file", str(dest), params={"mode": "0600"})
    assert res.code_remote == f"chmod 0600 {sq(str(dest))}"
    res = drv.converge("__file", str(dest), params={"state": "absent"})
    assert res.code_remote == f"rm -f {sq(str(dest))}"


def test_directory_generated_code_is_exact(drv: Driver) -> None:
    # the default state file has no trailing newline; the mode has two
    dest = str(drv.tmp / "a'b" / "c d")
    res = drv.run(
        "__directory",
        dest,
        params={"parents": True, "owner": "it's", "group": "a b", "mode": "755\n\n"},
        execute=False,
    )
    # a new directory gets its mode from mkdir -m (one process instead of two);
    # with --parents a directory made meanwhile by someone else gets it from chmod
    q = sq(dest)
    assert res.code_remote == "\n".join(
        [
            f"if [ -d {q} ]; then chmod 0755 {q}; else mkdir -p -m 0755 {q}; fi",
            f"chgrp 'a b' {q}",
            f"chown 'it'\\''s' {q}",
        ]
    )
    assert res.messages == ["create", "chgrp a b", "chown it's", "chmod 755"]
    res = drv.run("__directory", dest, params={"mode": "1777"}, execute=False)
    assert res.code_remote == f"mkdir -m 1777 {q}"
    assert res.messages == ["create", "chmod 1777"]
    res = drv.run("__directory", dest, params={"mode": "02775"}, execute=False)
    assert res.code_remote == f"mkdir -m 2775 {q}"
    # setuid/setgid bits and a chgrp/chown after them: chmod stays last, as
    # chown may clear those bits on some systems
    res = drv.run("__directory", dest, params={"mode": "2775", "group": "g"}, execute=False)
    assert res.code_remote == f"mkdir {q}\nchgrp 'g' {q}\nchmod 2775 {q}"
    assert res.messages == ["create", "chgrp g", "chmod 2775"]
    res = drv.run("__directory", dest, params={"owner": "o"}, execute=False)
    assert res.code_remote == f"mkdir {q}\nchown 'o' {q}"
    with pytest.raises(ScriptError, match="invalid mode '0o755'"):
        drv.run("__directory", dest, params={"mode": "0o755"}, execute=False)


def test_file_onchange_is_copied_verbatim(drv: Driver) -> None:
    dest = drv.tmp / "oc"
    res = drv.run("__file", str(dest), params={"onchange": "a 'x'\n\nb\n\n"}, execute=False)
    assert res.code_remote == f": > {sq(str(dest))}\na 'x'\n\nb"


STRACE = shutil.which("strace")


class TracingDriver(Driver):
    """Counts the processes (forks) that each gencode script starts."""

    def __init__(self, tmp: Path, shell: list[str]) -> None:
        super().__init__(tmp, shell)
        self.forks: dict[str, int] = {}

    def sh(self, script: Path, env: dict[str, str], stdin: bytes | None = None) -> str:
        if not script.name.startswith("gencode-"):
            return super().sh(script, env, stdin)
        log = self.tmp / f"strace-{self.counter}-{script.name}"
        shell = self.shell
        trace = "trace=fork,vfork,clone,clone3"
        self.shell = [str(STRACE), "-f", "-qq", "-e", trace, "-o", str(log), *shell]
        try:
            out = super().sh(script, env, stdin)
        finally:
            self.shell = shell
        calls = ("fork(", "vfork(", "clone(", "clone3(")
        lines = log.read_text().splitlines()
        self.forks[script.name] = sum(1 for line in lines if any(c in line for c in calls))
        return out


@pytest.fixture
def tracer(tmp_path: Path) -> TracingDriver:
    if not STRACE or not shutil.which("dash"):
        pytest.skip("needs strace and dash")
    if subprocess.run([STRACE, "-o", os.devnull, "true"], check=False).returncode:
        pytest.skip("strace cannot trace here")
    return TracingDriver(tmp_path, ["dash"])


def test_gencode_process_counts(tracer: TracingDriver) -> None:
    dest = tracer.tmp / "srv" / "d0001"
    params: dict[str, ParamValue] = {"parents": True, "mode": "0755"}
    for _ in range(2):  # create, then find it in place
        tracer.run("__directory", str(dest), params=params)
        assert tracer.forks == {"gencode-remote": 0}
    fparams: dict[str, ParamValue] = {"source": "-", "mode": "0644"}
    # new content: its size is the engine's $__cdist_trio_stdin_size; short text is
    # copied inline without od
    tracer.run("__file", str(dest / "file"), params=fparams, stdin=b"content\n")
    assert tracer.forks == {"gencode-local": 0, "gencode-remote": 0}
    # without it (as under cdist): wc -c
    tracer.stdin_size = False
    tracer.run("__file", str(dest / "other"), params=fparams, stdin=b"content\n")
    assert tracer.forks == {"gencode-local": 1, "gencode-remote": 0}
    tracer.stdin_size = True
    # other content: od piped into a shell function
    tracer.run("__file", str(dest / "binary"), params=fparams, stdin=b"\x01\n")
    assert tracer.forks == {"gencode-local": 0, "gencode-remote": 2}
    # same content: one cksum
    tracer.run("__file", str(dest / "file"), params=fparams, stdin=b"content\n")
    assert tracer.forks == {"gencode-local": 1, "gencode-remote": 0}
    tracer.run("__file", str(dest / "empty"), params={"mode": "0600"})
    assert tracer.forks == {"gencode-local": 0, "gencode-remote": 0}


def exec_count(tmp: Path, code: str, umask: int) -> int:
    """Programs that ``code`` starts (successful execve) when dash runs it under ``umask``."""
    script = tmp / "code-under-strace"
    script.write_text(code + "\n")
    log = tmp / "execve.log"
    trace = [str(STRACE), "-f", "-qq", "-e", "trace=execve", "-o", str(log)]
    subprocess.run([*trace, "dash", "-e", str(script)], umask=umask, check=True)
    lines = log.read_text().splitlines()
    return sum(1 for line in lines if "execve(" in line and line.endswith("= 0")) - 1


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask022", "umask077"])
def test_code_remote_process_counts(tracer: TracingDriver, umask: int) -> None:
    dest = tracer.tmp / "srv" / "d0001"
    params: dict[str, ParamValue] = {"parents": True, "mode": "0755"}
    res = tracer.run("__directory", str(dest), params=params, execute=False)
    # mkdir -p -m: one program (was mkdir -p + chmod)
    assert exec_count(tracer.tmp, res.code_remote, umask) == 1
    assert mode_of(dest) == 0o755
    # the parent made on the way has the mode that plain mkdir -p gives it
    assert mode_of(dest.parent) == 0o777 & ~umask
    fparams: dict[str, ParamValue] = {"source": "-", "mode": "0644"}
    res = tracer.run("__file", str(dest / "file"), params=fparams, stdin=b"x\n", execute=False)
    assert res.code_local == ""
    # printf is a builtin; chmod and mv -f.  The chmod stays: a default ACL on the
    # directory would override a umask (test_modes_are_exact_under_a_default_acl)
    assert exec_count(tracer.tmp, res.code_remote, umask) == 2
    assert mode_of(dest / "file") == 0o644
    assert (dest / "file").read_bytes() == b"x\n"


def test_directory_made_meanwhile_still_gets_its_mode(drv: Driver) -> None:
    # the directory did not exist when the explorers ran, but another object's
    # mkdir -p made it before this code ran: mkdir -p -m would leave it as it is
    dest = drv.tmp / "a" / "d"
    params: dict[str, ParamValue] = {"parents": True, "mode": "0750", "group": str(os.getgid())}
    res = drv.run("__directory", str(dest), params=params, execute=False)
    dest.mkdir(parents=True)
    dest.chmod(0o700)
    code = drv.tmp / "code-meanwhile"
    code.write_text(res.code_remote + "\n")
    drv.sh(code, {})
    assert mode_of(dest) == 0o750
    dest.rmdir()
    drv.sh(code, {})
    assert mode_of(dest) == 0o750


def set_default_acl(directory: Path, user: int, group: int, other: int) -> None:
    """A minimal default ACL (``u::user,g::group,o::other``) on ``directory``."""
    entries = ((0x01, user), (0x04, group), (0x20, other))  # USER_OBJ, GROUP_OBJ, OTHER
    value = struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, 0xFFFFFFFF) for tag, perm in entries
    )
    try:
        os.setxattr(directory, "system.posix_acl_default", value)
    except (OSError, AttributeError) as exc:
        pytest.skip(f"no POSIX ACLs here: {exc}")


def test_modes_are_exact_under_a_default_acl(drv: Driver) -> None:
    # Under a default ACL the umask is not used: a new file or directory gets the
    # ACL's bits masked by the mode given to open(2)/mkdir(2) (0666 for a shell's
    # ">").  So "( umask 133; ... > tmp )" would make a 0666 file here, while
    # chmod makes it 0644; mkdir -m chmods the directory itself when needed.
    for perms in ((7, 5, 0), (7, 7, 7)):
        parent = drv.tmp / "acl-{}{}{}".format(*perms)
        parent.mkdir()
        set_default_acl(parent, *perms)
        for mode in ("0755", "0711"):
            d = parent / f"d{mode}"
            drv.run("__directory", str(d), params={"mode": mode})
            assert mode_of(d) == int(mode, 8)
            drv.run("__directory", str(d / "p" / "q"), params={"mode": mode, "parents": True})
            assert mode_of(d / "p" / "q") == int(mode, 8)
        f = parent / "f"
        drv.run("__file", str(f), params={"source": "-", "mode": "0644"}, stdin=b"x\n")
        assert mode_of(f) == 0o644


# --------------------------------------------------------------------------- __link


def test_link_symbolic(drv: Driver) -> None:
    target = drv.tmp / "target dir"
    target.mkdir()
    link = drv.tmp / "ln"
    res = drv.converge("__link", str(link), params={"source": str(target), "type": "symbolic"})
    assert os.readlink(link) == str(target)
    assert res.messages == [f"created {link}"]
    # trailing slashes are ignored when comparing
    res = drv.run("__link", str(link), params={"source": f"{target}//", "type": "symbolic"})
    assert res.code_remote == ""
    other = drv.tmp / "other"
    res = drv.converge("__link", str(link), params={"source": str(other), "type": "symbolic"})
    assert os.readlink(link) == str(other)
    assert res.messages == [f"removed {link} (wrongsource)", f"created {link}"]
    res = drv.converge(
        "__link", str(link), params={"source": "x", "type": "symbolic", "state": "absent"}
    )
    assert not link.is_symlink()
    assert res.messages == [f"removed {link}"]


def test_link_symbolic_replaces_directory(drv: Driver) -> None:
    link = drv.tmp / "was-dir"
    (link / "sub").mkdir(parents=True)
    res = drv.converge("__link", str(link), params={"source": "/etc", "type": "symbolic"})
    assert os.readlink(link) == "/etc"
    assert res.messages == [f"removed {link} (directory)", f"created {link}"]


def test_link_hard(drv: Driver) -> None:
    src = drv.tmp / "orig"
    src.write_text("x")
    link = drv.tmp / "hard"
    res = drv.converge("__link", str(link), params={"source": str(src), "type": "hard"})
    assert link.stat().st_ino == src.stat().st_ino
    assert res.messages == [f"created {link}"]
    rel = drv.tmp / "hard-rel"
    drv.converge("__link", str(rel), params={"source": "orig", "type": "hard"})
    assert rel.stat().st_ino == src.stat().st_ino
    drv.converge(
        "__link", str(link), params={"source": str(src), "type": "hard", "state": "absent"}
    )
    assert not link.exists()
    assert src.exists()


# --------------------------------------------------------------------------- __line


def test_line_add_update_remove(drv: Driver) -> None:
    f = drv.tmp / "conf"
    f.write_text("a\nb\n")
    res = drv.converge("__line", "x", params={"file": str(f), "line": "c 'quoted' $HOME"})
    assert f.read_text() == "a\nb\nc 'quoted' $HOME\n"
    assert res.messages == ["added"]
    res = drv.converge("__line", "x", params={"file": str(f), "line": "b2", "regex": "^b"})
    assert f.read_text() == "a\nb2\nc 'quoted' $HOME\n"
    assert res.messages == ["updated"]
    res = drv.converge("__line", "x", params={"file": str(f), "line": "a", "state": "absent"})
    assert f.read_text() == "b2\nc 'quoted' $HOME\n"
    assert res.messages == ["removed"]
    res = drv.converge("__line", "x", params={"file": str(f), "regex": "^c ", "state": "absent"})
    assert f.read_text() == "b2\n"


def test_line_object_id_is_file(drv: Driver) -> None:
    f = drv.tmp / "by-id"
    f.write_text("")
    drv.converge("__line", str(f), params={"line": "only"})
    assert f.read_text() == "only\n"


def test_line_after_before_position(drv: Driver) -> None:
    f = drv.tmp / "conf"
    f.write_text("[main]\nx=1\n[other]\nnew=1\n")
    res = drv.converge(
        "__line", "p", params={"file": str(f), "line": "new=1", "after": r"^\[main\]$"}
    )
    assert f.read_text() == "[main]\nnew=1\nx=1\n[other]\n"
    assert res.messages == ["updated"]
    drv.converge("__line", "p", params={"file": str(f), "line": "top", "before": r"^\[main"})
    assert f.read_text() == "top\n[main]\nnew=1\nx=1\n[other]\n"


def test_line_replace(drv: Driver) -> None:
    f = drv.tmp / "sshd"
    f.write_text("Port 22\nPermitRootLogin yes\nX 1\nPermitRootLogin maybe\n")
    drv.converge(
        "__line",
        "r",
        params={
            "file": str(f),
            "line": "PermitRootLogin no",
            "regex": "^PermitRootLogin",
            "state": "replace",
        },
    )
    assert f.read_text() == "Port 22\nPermitRootLogin no\nX 1\n"


def test_line_keeps_file_attributes(drv: Driver) -> None:
    f = drv.tmp / "attr"
    f.write_text("a\n")
    f.chmod(0o640)
    drv.converge("__line", "k", params={"file": str(f), "line": "b"})
    assert mode_of(f) == 0o640
    assert sorted(p.name for p in drv.tmp.iterdir() if p.name.startswith("attr")) == ["attr"]


def test_line_missing_file(drv: Driver) -> None:
    f = drv.tmp / "nofile"
    with pytest.raises(ScriptError, match="does not exist"):
        drv.run("__line", "m", params={"file": str(f), "line": "x"})
    res = drv.run("__line", "m", params={"file": str(f), "line": "x", "state": "absent"})
    assert res.code_remote == ""


def test_line_explorer_embeds_edit_awk() -> None:
    awk = (CONF / "type" / "__line" / "files" / "edit.awk").read_text().rstrip("\n")
    explorer = (CONF / "type" / "__line" / "explorer" / "state").read_text()
    assert f"awk '\n{awk}\n' \"$file\"" in explorer


# --------------------------------------------------------------------------- __block


def test_block_add_update_remove(drv: Driver) -> None:
    f = drv.tmp / "hosts"
    f.write_text("127.0.0.1 localhost\n")
    res = drv.converge("__block", str(f), params={"text": "10.0.0.1 gw\n10.0.0.2 db"})
    marker = f"__block/{str(f).lstrip('/')}"
    expected = f"127.0.0.1 localhost\n#cdist:{marker}\n10.0.0.1 gw\n10.0.0.2 db\n#/cdist:{marker}\n"
    assert f.read_text() == expected
    assert res.messages == ["add"]
    f.write_text(f.read_text() + "tail\n")
    res = drv.converge("__block", str(f), params={"text": "10.0.0.9 new"})
    assert f.read_text() == (
        f"127.0.0.1 localhost\n#cdist:{marker}\n10.0.0.9 new\n#/cdist:{marker}\ntail\n"
    )
    assert res.messages == ["update"]
    res = drv.converge("__block", str(f), params={"text": "x", "state": "absent"})
    assert f.read_text() == "127.0.0.1 localhost\ntail\n"
    assert res.messages == ["remove"]


def test_block_stdin_custom_markers_new_file(drv: Driver) -> None:
    f = drv.tmp / "new.conf"
    text = b"line with 'quotes' and $(dollar)\nCDIST_TRIO_BLOCK\n\n  indented\n"
    params: dict[str, ParamValue] = {
        "file": str(f),
        "text": "-",
        "prefix": "# BEGIN x",
        "suffix": "# END x",
    }
    drv.converge("__block", "anything", params=params, stdin=text)
    assert f.read_bytes() == b"# BEGIN x\n" + text + b"# END x\n"


# --------------------------------------------------------------------------- __key_value


def test_key_value_lifecycle(drv: Driver) -> None:
    f = drv.tmp / "sysctl.conf"
    kv: dict[str, ParamValue] = {"file": str(f), "delimiter": " = ", "value": "10"}
    res = drv.converge("__key_value", "vm.swappiness", params=kv)
    assert f.read_text() == "vm.swappiness = 10\n"
    assert res.messages == ["create"]
    f.write_text("# head\nvm.swappiness=10\nother = 1\n")
    res = drv.converge("__key_value", "vm.swappiness", params=kv)
    assert f.read_text() == "# head\nvm.swappiness = 10\nother = 1\n"
    assert res.messages == ["change"]
    res = drv.converge("__key_value", "vm.swappiness", params={**kv, "value": "60"})
    assert f.read_text() == "# head\nvm.swappiness = 60\nother = 1\n"
    res = drv.converge(
        "__key_value", "x", params={**kv, "key": "new.key", "value": "a b", "comment": "# why"}
    )
    assert f.read_text() == "# head\nvm.swappiness = 60\nother = 1\n# why\nnew.key = a b\n"
    assert res.messages == ["insert"]
    res = drv.converge("__key_value", "other", params={**kv, "state": "absent"})
    assert f.read_text() == "# head\nvm.swappiness = 60\n# why\nnew.key = a b\n"
    assert res.messages == ["remove"]


def test_key_value_space_delimiter_and_duplicates(drv: Driver) -> None:
    f = drv.tmp / "sshd_config"
    f.write_text("Port 22\nPermitRootLogin yes\nPermitRootLoginX 1\nPermitRootLogin  no\n")
    drv.converge(
        "__key_value",
        "PermitRootLogin",
        params={"file": str(f), "delimiter": " ", "value": "no", "onchange": "true"},
    )
    assert f.read_text() == "Port 22\nPermitRootLogin no\nPermitRootLoginX 1\n"


def test_key_value_exact_delimiter(drv: Driver) -> None:
    f = drv.tmp / "env"
    f.write_text("A = 1\n")
    drv.converge(
        "__key_value",
        "A",
        params={"file": str(f), "delimiter": "=", "value": "2", "exact_delimiter": True},
    )
    assert f.read_text() == "A = 1\nA=2\n"


def test_key_value_requires_value(drv: Driver) -> None:
    with pytest.raises(ScriptError, match="--value"):
        drv.run("__key_value", "k", params={"file": str(drv.tmp / "f"), "delimiter": "="})


def test_key_value_explorer_embeds_edit_awk() -> None:
    awk = (CONF / "type" / "__key_value" / "files" / "edit.awk").read_text().rstrip("\n")
    explorer = (CONF / "type" / "__key_value" / "explorer" / "state").read_text()
    assert f"awk '\n{awk}\n' \"$file\"" in explorer


# --------------------------------------------------------------------------- __cron

FAKE_CRONTAB = """#!/bin/sh
dir={dir}
user=$(id -un)
while [ $# -gt 0 ]; do
    case "$1" in
        -u) user=$2; shift 2 ;;
        -l) [ -f "$dir/$user" ] || {{ echo "no crontab for $user" >&2; exit 1; }}
            cat "$dir/$user"; exit 0 ;;
        -) mkdir -p "$dir"; cat > "$dir/$user"; exit 0 ;;
        *) shift ;;
    esac
done
"""


def test_cron(drv: Driver) -> None:
    if drv.shell[0].endswith("busybox"):
        pytest.skip("busybox sh runs its own crontab applet instead of the fake one")
    tabs = drv.tmp / "crontabs"
    drv.fake_command("crontab", FAKE_CRONTAB.format(dir=tabs))
    tabs.mkdir()
    (tabs / "alice").write_text("# mine\n0 * * * * keep\n")
    job: dict[str, ParamValue] = {
        "user": "alice",
        "command": "/usr/bin/backup --all 'x'",
        "hour": "3",
        "minute": "15",
    }
    res = drv.converge("__cron", "backup", params=job)
    assert (tabs / "alice").read_text() == (
        "# mine\n0 * * * * keep\n# __cron/backup\n15 3 * * * /usr/bin/backup --all 'x'\n"
    )
    assert res.messages == ["add"]
    res = drv.converge("__cron", "backup", params={**job, "raw": "@reboot"})
    assert (
        (tabs / "alice")
        .read_text()
        .endswith("# __cron/backup\n@reboot /usr/bin/backup --all 'x'\n")
    )
    assert res.messages == ["change"]
    drv.converge(
        "__cron", "mail", params={"user": "alice", "command": "MAILTO=x", "raw_command": True}
    )
    assert (tabs / "alice").read_text().endswith("# __cron/mail\nMAILTO=x\n")
    res = drv.converge("__cron", "backup", params={**job, "state": "absent"})
    assert (tabs / "alice").read_text() == "# mine\n0 * * * * keep\n# __cron/mail\nMAILTO=x\n"
    assert res.messages == ["remove"]
    # a user without any crontab yet
    drv.converge("__cron", "j", params={"user": "bob", "command": "true"})
    assert (tabs / "bob").read_text() == "# __cron/j\n* * * * * true\n"


# --------------------------------------------------------------------------- __service

FAKE_SYSTEMCTL = """#!/bin/sh
dir={dir}
mkdir -p "$dir"
[ "$2" = --quiet ] && set -- "$1" "$3"
echo "$1 $2" >> "$dir/log"
case "$1" in
    is-active) [ -f "$dir/$2.running" ] ;;
    is-enabled) [ -f "$dir/$2.enabled" ] ;;
    start|restart) touch "$dir/$2.running" ;;
    stop) rm -f "$dir/$2.running" ;;
    enable) touch "$dir/$2.enabled" ;;
    disable) rm -f "$dir/$2.enabled" ;;
esac
"""


def test_service_systemd(drv: Driver) -> None:
    state = drv.tmp / "systemd"
    drv.fake_global("init", "systemd")
    drv.fake_command("systemctl", FAKE_SYSTEMCTL.format(dir=state))
    res = drv.converge("__service", "nginx", params={"action": "start"})
    assert res.code_remote == "systemctl 'start' 'nginx'"
    assert res.messages == ["start"]
    assert (state / "nginx.running").exists()
    drv.converge("__service", "nginx", params={"action": "enable"})
    assert (state / "nginx.enabled").exists()
    drv.converge("__service", "nginx", params={"action": "stop"})
    assert not (state / "nginx.running").exists()
    # restart always runs
    for _ in range(2):
        res = drv.run("__service", "nginx", params={"action": "restart"})
        assert res.code_remote == "systemctl 'restart' 'nginx'"


def test_service_sysvinit_script(drv: Driver) -> None:
    drv.fake_global("init", "sysvinit")
    res = drv.run("__service", "my svc", params={"action": "reload"}, execute=False)
    assert "/etc/init.d/'my svc' 'reload'" in res.code_remote


def test_service_openrc(drv: Driver) -> None:
    drv.fake_global("init", "openrc")
    res = drv.run("__service", "sshd", params={"action": "enable"}, execute=False)
    assert res.code_remote == "rc-update add 'sshd' default"


# --------------------------------------------------------------------------- packages


def test_package_apt_generated_code(drv: Driver) -> None:
    if not shutil.which("dpkg-query") or drv.shell[0] != "dash":
        pytest.skip("needs dpkg; shell independent")
    res = drv.run("__package_apt", "dpkg", execute=False)
    assert res.explorers["state"].startswith("present dpkg ")
    assert res.code_remote == ""
    res = drv.run("__package_apt", "no-such-package-xyz", execute=False)
    assert res.explorers["state"] == "absent\n"
    assert "apt-get --quiet update" in res.code_remote
    assert "--no-install-recommends install 'no-such-package-xyz'" in res.code_remote
    assert res.messages == ["installed"]
    res = drv.run(
        "__package_apt",
        "x",
        params={"name": "no-such-package-xyz", "version": "1.0", "install-recommends": True},
        execute=False,
    )
    assert "--install-recommends --allow-downgrades install 'no-such-package-xyz=1.0'" in (
        res.code_remote
    )
    res = drv.run("__package_apt", "no-such-package-xyz", params={"state": "absent"})
    assert res.code_remote == ""


def test_package_apt_absent(drv: Driver) -> None:
    drv.fake_command(
        "dpkg-query",
        "#!/bin/sh\nprintf '%s\\n' 'install ok installed|exim4|4.96|mail-transport-agent'\n",
    )
    res = drv.run(
        "__package_apt",
        "mail-transport-agent",
        params={"state": "absent", "purge-if-absent": True},
        execute=False,
    )
    assert res.explorers["state"] == "present exim4 4.96\n"
    assert res.code_remote.endswith("remove --purge 'exim4'")
    assert res.messages == ["removed"]


def test_package_apk(drv: Driver) -> None:
    db = drv.tmp / "apk-db"
    db.mkdir()
    drv.fake_command(
        "apk",
        f"""#!/bin/sh
case "$1" in
    info) [ -f "{db}/$3" ] ;;
    add) touch "{db}/$4" ;;
    del) rm -f "{db}/$4" ;;
esac
""",
    )
    res = drv.converge("__package_apk", "curl")
    assert res.code_remote == "apk add --quiet --no-progress 'curl'"
    assert (db / "curl").exists()
    res = drv.converge("__package_apk", "curl", params={"state": "absent"})
    assert not (db / "curl").exists()


# --------------------------------------------------------------------------- __user / __group


def test_user_generated_code(drv: Driver) -> None:
    res = drv.run(
        "__user",
        "nosuchuser-xyz",
        params={"uid": "4242", "home": "/home/it's", "create-home": True, "system": True},
        execute=False,
    )
    assert res.code_remote == "useradd -u '4242' -d '/home/it'\\''s' -m -r 'nosuchuser-xyz'"
    assert res.messages == ["add"]
    res = drv.run("__user", "root", params={"uid": "0", "gid": "root"}, execute=False)
    assert res.code_remote == ""
    res = drv.run(
        "__user", "root", params={"shell": "/bin/false", "comment": "Root"}, execute=False
    )
    assert res.code_remote == "usermod -c 'Root' -s '/bin/false' 'root'"
    assert res.messages == ["mod"]
    res = drv.run("__user", "root", params={"state": "absent", "remove-home": True}, execute=False)
    assert res.code_remote == "userdel -r 'root'"
    assert res.messages == ["userdel -r"]
    res = drv.run("__user", "nosuchuser-xyz", params={"state": "absent"}, execute=False)
    assert res.code_remote == ""


def test_user_freebsd(drv: Driver) -> None:
    drv.fake_global("os", "freebsd")
    res = drv.run("__user", "nosuchuser-xyz", params={"shell": "/bin/sh"}, execute=False)
    assert res.code_remote == "pw useradd 'nosuchuser-xyz' -s '/bin/sh'"


def test_group_generated_code(drv: Driver) -> None:
    res = drv.run(
        "__group", "nosuchgroup-xyz", params={"gid": "4242", "system": True}, execute=False
    )
    assert res.code_remote == "groupadd -g '4242' -r 'nosuchgroup-xyz'"
    assert res.messages == ["add"]
    res = drv.run("__group", "root", params={"gid": "0"}, execute=False)
    assert res.code_remote == ""
    res = drv.run("__group", "root", params={"gid": "7"}, execute=False)
    assert res.code_remote == "groupmod -g '7' 'root'"
    assert res.messages == ["change gid 7 0"]
    res = drv.run("__group", "root", params={"state": "absent"}, execute=False)
    assert res.code_remote == "groupdel 'root'"
    assert res.messages == ["remove"]


# --------------------------------------------------------------------------- small types


def test_cdistmarker(drv: Driver) -> None:
    dest = drv.tmp / "configured"
    for _ in range(2):
        res = drv.run("__cdistmarker", "", params={"destination": str(dest)})
        assert res.code_remote.startswith("date '-u' > ")
    assert dest.read_text().strip()


def test_check_messages(drv: Driver) -> None:
    params: dict[str, ParamValue] = {
        "pattern": "^__(file|link)/etc/nginx/",
        "execute": "echo reload",
    }
    res = drv.run("__check_messages", "x", params=params, messages_in="__file/etc/x:upload\n")
    assert res.code_remote == ""
    res = drv.run(
        "__check_messages",
        "x",
        params=params,
        messages_in="__file/etc/x:upload\n__link/etc/nginx/a:created /etc/nginx/a\n",
    )
    assert res.code_remote == "echo reload"


def _keys(explorer_output: str) -> list[str]:
    return [line.split(":", 1)[0] for line in explorer_output.splitlines()]


def test_file_state_explorer_runs_only_the_programs_gencode_needs(drv: Driver) -> None:
    """stat only with --owner/--group/--mode, cksum only with --source and state
    present: every program is a process on the target, for every object."""
    dest = drv.tmp / "present"
    dest.write_text("x\n")
    src = drv.tmp / "present-src"
    src.write_text("x\n")
    res = drv.run("__file", str(dest), params={"source": str(src)})
    assert _keys(res.explorers["state"]) == ["type", "cksum"]
    assert res.code_remote == ""
    res = drv.run("__file", str(dest), params={"mode": "0600"})
    assert _keys(res.explorers["state"]) == [
        "type",
        "kind",
        "owner",
        "group",
        "mode",
        "size",
        "links",
    ]
    res = drv.run("__file", str(dest), params={"source": str(src), "state": "exists"})
    assert _keys(res.explorers["state"]) == ["type"]
    res = drv.run("__file", str(dest), params={"state": "absent"})
    assert _keys(res.explorers["state"]) == ["type"]
    assert not dest.exists()


def test_directory_state_explorer_stats_only_for_owner_group_mode(drv: Driver) -> None:
    dest = drv.tmp / "d"
    dest.mkdir()
    res = drv.run("__directory", str(dest))
    assert _keys(res.explorers["state"]) == ["type"]
    assert res.code_remote == ""
    dest.chmod(0o700)
    res = drv.run("__directory", str(dest), params={"mode": "0755"})
    assert "mode" in _keys(res.explorers["state"])
    assert mode_of(dest) == 0o755
