"""Apply the bundled types through the real engine with ``--transport local``.

Every scenario runs ``cdist-trio config`` twice with the same manifest: the
first run must reach the wanted state, the second must generate no code at all
(no ``code-local``/``code-remote`` file in the host's cache).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "localhost"


@dataclass
class Run:
    cache: Path
    messages: list[str]
    code_files: list[Path]


class Engine:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.home.mkdir()
        self.remote = tmp / "remote"
        self.target = tmp / "target"
        self.target.mkdir()
        self.count = 0

    def config(self, manifest: str, stdin: bytes = b"") -> Run:
        self.count += 1
        init = self.tmp / f"init{self.count}"
        init.write_text(manifest)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("__", "CDIST_"))}
        env["HOME"] = str(self.home)
        env["XDG_CONFIG_HOME"] = str(self.home / ".config")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cdist_trio",
                "config",
                "--transport",
                "local",
                "-i",
                str(init),
                "-r",
                str(self.remote),
                HOST,
            ],
            env=env,
            input=stdin,
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        caches = list((self.home / ".cdist" / "cache").iterdir())
        assert len(caches) == 1
        cache = caches[0]
        messages_file = cache / "messages"
        messages = messages_file.read_text().splitlines() if messages_file.exists() else []
        code = sorted(
            p
            for p in (cache / "object").rglob("code-*")
            if p.is_file() and p.parent.name != "stdout" and p.parent.name != "stderr"
        )
        return Run(cache, messages, code)

    def converge(self, manifest: str) -> Run:
        first = self.config(manifest)
        second = self.config(manifest)
        assert second.code_files == [], second.code_files
        assert second.messages == [], second.messages
        return first


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def q(path: Path) -> str:
    """Single-quote a path for a manifest line."""
    return "'" + str(path).replace("'", "'\\''") + "'"


def test_file_directory_link_line(engine: Engine) -> None:
    t = engine.target
    src = engine.tmp / "motd source"
    src.write_text("welcome\n")
    (t / "lines").write_text("first\n")
    manifest = f"""
__directory {q(t / "etc" / "app")} --parents --mode 0750
require="__directory{t}/etc/app" __file {q(t / "etc" / "app" / "motd")} \\
    --source {q(src)} --mode 0640
__link {q(t / "motd-link")} --source {q(t / "etc" / "app" / "motd")} --type symbolic
__line {q(t / "lines")} --line 'second line'
echo from-stdin | __file {q(t / "stdin-file")} --source -
"""
    run = engine.converge(manifest)
    assert (t / "etc" / "app").is_dir()
    assert (t / "etc" / "app").stat().st_mode & 0o7777 == 0o750
    motd = t / "etc" / "app" / "motd"
    assert motd.read_text() == "welcome\n"
    assert motd.stat().st_mode & 0o7777 == 0o640
    assert os.readlink(t / "motd-link") == str(motd)
    assert (t / "lines").read_text() == "first\nsecond line\n"
    assert (t / "stdin-file").read_text() == "from-stdin\n"
    assert f"__file{motd}:upload" in run.messages
    assert f"__file{motd}:chmod 0640" in run.messages
    assert f"__directory{t}/etc/app:create" in run.messages
    assert f"__line{t}/lines:added" in run.messages

    # change: new content is uploaded, a second run is quiet again
    src.write_text("changed\n")
    run = engine.converge(manifest)
    assert motd.read_text() == "changed\n"
    assert f"__file{motd}:upload" in run.messages


def test_absent_states(engine: Engine) -> None:
    t = engine.target
    (t / "f").write_text("x")
    (t / "d" / "sub").mkdir(parents=True)
    (t / "l").symlink_to("/nonexistent")
    (t / "lines").write_text("keep\ndrop\n")
    manifest = f"""
__file {q(t / "f")} --state absent
__directory {q(t / "d")} --state absent
__link {q(t / "l")} --source /nonexistent --type symbolic --state absent
__line {q(t / "lines")} --line drop --state absent
"""
    run = engine.converge(manifest)
    assert not (t / "f").exists()
    assert not (t / "d").exists()
    assert not (t / "l").is_symlink()
    assert (t / "lines").read_text() == "keep\n"
    assert f"__file{t}/f:remove" in run.messages
    assert f"__directory{t}/d:remove" in run.messages
    assert f"__link{t}/l:removed {t}/l" in run.messages
    assert f"__line{t}/lines:removed" in run.messages


def test_awkward_names(engine: Engine) -> None:
    t = engine.target
    spaced = t / "dir with space"
    d = t / "plain"
    name = d / "it's $(echo no) file"
    manifest = f"""
__directory {q(spaced)}
__directory {q(d)}
require="__directory{d}" __file {q(name)} --mode 600
"""
    engine.converge(manifest)
    assert spaced.is_dir()
    assert name.is_file()
    assert sorted(p.name for p in d.iterdir()) == [name.name]


def test_text_types_and_messages(engine: Engine) -> None:
    t = engine.target
    hosts = t / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    conf = t / "app.conf"
    hook = t / "hook-ran"
    manifest = f"""
__block {q(hosts)} --text - <<'EOT'
10.0.0.1 gateway
10.0.0.2 db
EOT
__key_value app-port --file {q(conf)} --key port --delimiter ' = ' --value 8080
require="__key_value/app-port" __check_messages app-restart \\
    --pattern '^__key_value/app-port:' --execute {q(f"touch '{hook}'")}
"""
    first = engine.config(manifest)
    assert "10.0.0.2 db" in hosts.read_text()
    assert conf.read_text() == "port = 8080\n"
    assert hook.exists()
    assert f"__block{hosts}:add" in first.messages
    assert "__key_value/app-port:create" in first.messages
    hook.unlink()
    second = engine.config(manifest)
    assert second.code_files == []
    assert not hook.exists()


def test_package_dispatch(engine: Engine) -> None:
    if not Path("/usr/bin/dpkg-query").exists():
        pytest.skip("needs a Debian-like machine")
    # nothing to do: dpkg is installed, the other package is not
    run = engine.config(
        "__package dpkg\n__package no-such-package-xyz --state absent --version 1\n"
    )
    assert run.code_files == []
    objects = run.cache / "object"
    assert (objects / "__package_apt" / "dpkg").is_dir()
    assert (objects / "__package_apt" / "no-such-package-xyz").is_dir()


def test_cdistmarker_runs_every_time(engine: Engine) -> None:
    dest = engine.target / "configured"
    for _ in range(2):
        run = engine.config(f"__cdistmarker --destination {q(dest)}\n")
        assert len(run.code_files) == 1
        assert dest.read_text().strip()
