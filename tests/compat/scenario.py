"""The two-phase scenario shared by the compatibility suite and the Debian type tests.

`manifests/apply` then `manifests/change` are applied to Debian targets by cdist-trio (with
cdist 7.0.0's conf dir or with our own) and by cdist 7.0.0 itself. A `Snapshot` is what a
target holds afterwards (files, modes, owners, users, groups, packages); the `APPLIED` and
`CHANGED` checks say, per type, what it must hold.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness import SshTarget

HERE = Path(__file__).resolve().parent
MANIFESTS = HERE / "manifests"
COMPAT_CONF = HERE / "conf"  # $__files for the manifests

# What the snapshot looks at: everything the manifests touch, and nothing that differs
# between two identical targets (times, host keys, host names).
_SNAPSHOT_SCRIPT = r"""
for p in /opt/compat /opt/gone /home/compatuser /etc/cdist-configured; do
    [ -e "$p" ] || [ -L "$p" ] || continue
    find "$p" -printf 'F|%p|%y|%m|%u|%g|%s|%n|%l\n'
done
if [ -d /opt/compat ]; then
    find /opt/compat -type f | while read -r f; do
        printf 'C|%s|%s\n' "$f" "$(base64 -w0 "$f")"
    done
fi
for db in passwd group shadow gshadow; do
    grep -E '^compat(user|sys|grp|grp2):' "/etc/$db" | sed "s/^/$db|/" || true
done
dpkg-query -W -f='D|${Package}|${Version}|${db:Status-Abbrev}\n'
"""


@dataclasses.dataclass(frozen=True)
class FileFacts:
    kind: str  # find's %y: f, d, l
    mode: int
    owner: str
    group: str
    size: int
    links: int
    target: str  # a symlink's target, else ""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A target's state as far as the scenario is concerned; equal means identical."""

    files: Mapping[str, FileFacts]
    contents: Mapping[str, str]
    accounts: Mapping[str, str]  # "<db>|<name>" -> the line, without dates
    packages: Mapping[str, str]  # package -> "<version> <status>"

    def installed(self, package: str) -> bool:
        return self.packages.get(package, "").endswith(" ii")

    def account(self, db: str, name: str) -> list[str] | None:
        line = self.accounts.get(f"{db}|{name}")
        return line.split(":") if line is not None else None

    def comparable(self) -> dict[str, object]:
        """Everything except the marker file's size (a date of the run's own making)."""
        files = dict(self.files)
        marker = files.pop("/etc/cdist-configured", None)
        return {
            "files": files,
            "marker": marker is not None and dataclasses.replace(marker, size=0),
            "contents": dict(self.contents),
            "accounts": dict(self.accounts),
            "packages": dict(self.packages),
        }


def snapshot(target: SshTarget) -> Snapshot:
    """Read the target's state through `docker exec` (not through the engine under test)."""
    files: dict[str, FileFacts] = {}
    contents: dict[str, str] = {}
    accounts: dict[str, str] = {}
    packages: dict[str, str] = {}
    for line in target.shell(_SNAPSHOT_SCRIPT).text.splitlines():
        kind, _, rest = line.partition("|")
        if kind == "F":
            path, ftype, mode, owner, group, size, links, link = rest.split("|", 7)
            files[path] = FileFacts(ftype, int(mode, 8), owner, group, int(size), int(links), link)
        elif kind == "C":
            path, _, data = rest.partition("|")
            contents[path] = base64.b64decode(data).decode(errors="replace")
        elif kind in ("passwd", "group", "shadow", "gshadow"):
            fields = rest.split(":")
            if kind == "shadow":
                fields[2] = "<date>"  # days since the epoch of the last change
            accounts[f"{kind}|{fields[0]}"] = ":".join(fields)
        elif kind == "D":
            name, version, status = rest.split("|")
            packages[name] = f"{version} {status.strip()}"
    return Snapshot(files, contents, accounts, packages)


def diff(left: Snapshot, right: Snapshot) -> list[str]:
    """Human-readable differences between two snapshots (empty when they match)."""
    problems: list[str] = []
    a, b = left.comparable(), right.comparable()
    for section in a:
        one, two = a[section], b[section]
        if isinstance(one, dict) and isinstance(two, dict):
            for key in sorted(set(one) | set(two)):
                if one.get(key) != two.get(key):
                    problems.append(f"{section}[{key}]: {one.get(key)!r} != {two.get(key)!r}")
        elif one != two:
            problems.append(f"{section}: {one!r} != {two!r}")
    return problems


# -- running the engines ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """One configuration run of one host and what its cache says about it."""

    returncode: int
    output: str
    seconds: float
    cache: Path | None
    messages: tuple[str, ...]
    code_objects: tuple[str, ...]  # objects that generated code-local or code-remote

    def explorer(self, name: str) -> str:
        assert self.cache is not None
        return (self.cache / "explorer" / name).read_text()


def _read_cache(home: Path, host: str) -> Path | None:
    cache = home / ".cdist" / "cache" / hashlib.md5(host.encode()).hexdigest()
    return cache if cache.is_dir() else None


def _code_objects(cache: Path) -> tuple[str, ...]:
    marker = (cache / "object_marker").read_text().strip()
    found: set[str] = set()
    for code in (cache / "object").rglob("code-*"):
        if code.parent.name == marker and code.is_file() and code.read_text().strip():
            found.add(code.parent.parent.relative_to(cache / "object").as_posix())
    return tuple(sorted(found))


def _finish(proc: subprocess.CompletedProcess[str], home: Path, host: str, started: float) -> Run:
    cache = _read_cache(home, host)
    messages: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    if cache is not None and proc.returncode == 0:
        messages_file = cache / "messages"
        if messages_file.is_file():
            messages = tuple(messages_file.read_text().splitlines())
        code = _code_objects(cache)
    return Run(
        proc.returncode,
        proc.stdout + proc.stderr,
        time.monotonic() - started,
        cache,
        messages,
        code,
    )


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("__", "CDIST_"))}
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    return env


def run_cdist_trio(
    home: Path,
    ssh_config: Path,
    host: str,
    manifest: Path,
    conf_dirs: Sequence[Path] = (),
    *,
    extra: Sequence[str] = (),
) -> Run:
    """`cdist-trio config --transport openssh` of one host, with a fresh HOME (its cache)."""
    home.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "cdist_trio", "config", "--transport", "openssh"]
    argv += ["-F", str(ssh_config), "-i", str(manifest), *extra]
    for conf in (*conf_dirs, COMPAT_CONF):
        argv += ["-c", str(conf)]
    started = time.monotonic()
    proc = subprocess.run(
        [*argv, host],
        env=_clean_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return _finish(proc, home, host, started)


def ssh_wrappers(directory: Path, ssh_config: Path) -> Path:
    """`ssh` and `scp` that add `-F ssh_config`, to put first on cdist's PATH.

    OpenSSH reads `~/.ssh/config` from the passwd entry's home, never from `$HOME`, so a
    temporary HOME cannot carry the fleet's ssh_config; cdist's own command strings
    (`ssh -o User=root -o ControlPath=... -o ControlMaster=auto ...`) stay unchanged.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ssh", "scp"):
        real = subprocess.run(
            ["sh", "-c", f"command -v {name}"], capture_output=True, text=True, check=True
        ).stdout.strip()
        wrapper = directory / name
        wrapper.write_text(f'#!/bin/sh\nexec {real} -F "{ssh_config}" "$@"\n')
        wrapper.chmod(0o755)
    return directory


def start_cdist(
    cdist: Path, home: Path, wrappers: Path, host: str, manifest: Path
) -> Callable[[], Run]:
    """Start `cdist config` (7.0.0, default ssh settings) in the background; the result
    is a function that waits for it."""
    home.mkdir(parents=True, exist_ok=True)
    env = _clean_env(home)
    env["PATH"] = f"{wrappers}{os.pathsep}{env.get('PATH', '')}"
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(cdist), "config", "-i", str(manifest), "-c", str(COMPAT_CONF), host],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def wait() -> Run:
        try:
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        completed = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        return _finish(completed, home, host, started)

    return wait


# -- what each type must have done -----------------------------------------------------

Check = Callable[[Snapshot], None]


def _file(state: Snapshot, path: str) -> FileFacts:
    assert path in state.files, f"{path} missing; have {sorted(state.files)}"
    return state.files[path]


def _applied_directory(s: Snapshot) -> None:
    top = _file(s, "/opt/compat")
    assert (top.kind, top.mode) == ("d", 0o755)
    deep = _file(s, "/opt/compat/sub/deep")
    assert (deep.kind, deep.mode, deep.owner, deep.group) == ("d", 0o750, "nobody", "nogroup")


def _changed_directory(s: Snapshot) -> None:
    assert _file(s, "/opt/compat").mode == 0o711
    assert "/opt/compat/sub" not in s.files


def _applied_file(s: Snapshot) -> None:
    plain = _file(s, "/opt/compat/plain")
    assert (plain.kind, plain.mode, plain.owner) == ("f", 0o640, "root")
    assert s.contents["/opt/compat/plain"] == (COMPAT_CONF / "files" / "plain").read_text()
    assert s.contents["/opt/compat/stdin"] == "from stdin\n"
    assert _file(s, "/opt/compat/stdin").mode == 0o600
    empty = _file(s, "/opt/compat/empty")
    assert (empty.size, empty.owner, empty.group) == (0, "nobody", "nogroup")
    assert "/opt/gone" not in s.files
    lines = _file(s, "/opt/compat/lines")
    assert (lines.owner, lines.mode) == ("nobody", 0o664)
    # No leftover upload temp files (`<dest>.cdist.<marker>.<pid>`).
    assert not [p for p in s.files if ".cdist." in p], sorted(s.files)


def _changed_file(s: Snapshot) -> None:
    plain = _file(s, "/opt/compat/plain")
    assert (plain.mode, plain.owner) == (0o644, "nobody")
    assert s.contents["/opt/compat/plain"] == (COMPAT_CONF / "files" / "changed").read_text()
    assert "/opt/compat/empty" not in s.files
    lines = _file(s, "/opt/compat/lines")
    assert (lines.owner, lines.group, lines.mode) == ("root", "nogroup", 0o660)
    assert not [p for p in s.files if ".cdist." in p], sorted(s.files)


def _applied_link(s: Snapshot) -> None:
    link = _file(s, "/opt/compat/symlink")
    assert (link.kind, link.target) == ("l", "/opt/compat/plain")
    assert _file(s, "/opt/compat/hardlink").links == 2
    assert _file(s, "/opt/compat/plain").links == 2


def _changed_link(s: Snapshot) -> None:
    assert _file(s, "/opt/compat/symlink").target == "/opt/compat/stdin"
    assert "/opt/compat/hardlink" not in s.files
    assert _file(s, "/opt/compat/plain").links == 1


def _applied_line(s: Snapshot) -> None:
    assert s.contents["/opt/compat/lines"] == "first line\nafter first\nsecond line\n"


def _changed_line(s: Snapshot) -> None:
    assert s.contents["/opt/compat/lines"] == "after first\nsecond line, replaced\n"


def _applied_block(s: Snapshot) -> None:
    assert s.contents["/opt/compat/blocks"] == (
        "#cdist:__block/block-a\nblock a, line one\nblock a, line two\n#/cdist:__block/block-a\n"
        "#cdist:__block/block-b\nblock b from stdin\n#/cdist:__block/block-b\n"
    )


def _changed_block(s: Snapshot) -> None:
    assert s.contents["/opt/compat/blocks"] == (
        "#cdist:__block/block-a\nblock a, changed\n#/cdist:__block/block-a\n"
    )


def _applied_key_value(s: Snapshot) -> None:
    assert s.contents["/opt/compat/kv"] == "compat-key = 42\nother = 2\n"


def _changed_key_value(s: Snapshot) -> None:
    assert s.contents["/opt/compat/kv"] == "compat-key = 43\n"


def _applied_group(s: Snapshot) -> None:
    assert s.account("group", "compatgrp") == ["compatgrp", "x", "2345", ""]
    # cdist 7.0.0's __group ignores --system on creation (it only passes gid/password):
    # the group exists, whatever its gid.
    assert s.account("group", "compatgrp2") is not None


def _changed_group(s: Snapshot) -> None:
    group = s.account("group", "compatgrp")
    assert group is not None
    assert group[2] == "2350", group
    assert s.account("group", "compatgrp2") is None
    assert s.account("gshadow", "compatgrp2") is None


def _applied_user(s: Snapshot) -> None:
    assert s.account("passwd", "compatuser") == [
        "compatuser", "x", "2345", "2345", "compat user", "/home/compatuser", "/bin/sh",
    ]  # fmt: skip
    home = _file(s, "/home/compatuser")
    assert (home.kind, home.owner) == ("d", "compatuser")
    system = s.account("passwd", "compatsys")
    assert system is not None
    assert int(system[2]) < 1000, system
    assert system[6] == "/usr/sbin/nologin", system


def _changed_user(s: Snapshot) -> None:
    user = s.account("passwd", "compatuser")
    assert user is not None
    assert (user[2], user[4], user[6]) == ("2347", "changed user", "/bin/bash"), user
    assert s.account("passwd", "compatsys") is None
    assert s.account("shadow", "compatsys") is None


def _applied_package(s: Snapshot) -> None:
    assert s.installed("hello")
    assert not s.installed("tree")


def _changed_package(s: Snapshot) -> None:
    assert not s.installed("hello")
    assert s.installed("tree")


def _applied_cdistmarker(s: Snapshot) -> None:
    assert _file(s, "/etc/cdist-configured").kind == "f"


def _applied_check_messages(s: Snapshot) -> None:
    assert s.contents["/opt/compat/messages-seen"] == "seen\n"


def _changed_check_messages(s: Snapshot) -> None:
    # Nothing uploaded /opt/compat/stdin this time: no message, so nothing executed.
    assert s.contents["/opt/compat/messages-seen"] == "seen\n"


def _no_check(s: Snapshot) -> None:
    pass


#: type → (check after `apply`, check after `change`)
CHECKS: dict[str, tuple[Check, Check]] = {
    "__directory": (_applied_directory, _changed_directory),
    "__file": (_applied_file, _changed_file),
    "__link": (_applied_link, _changed_link),
    "__line": (_applied_line, _changed_line),
    "__block": (_applied_block, _changed_block),
    "__key_value": (_applied_key_value, _changed_key_value),
    "__group": (_applied_group, _changed_group),
    "__user": (_applied_user, _changed_user),
    "__package": (_applied_package, _changed_package),
    "__cdistmarker": (_applied_cdistmarker, _no_check),
    "__check_messages": (_applied_check_messages, _changed_check_messages),
}

#: The 19 global explorers cdist 7.0.0 ships (cdist-spec §19.1).
SHIPPED_EXPLORERS = (
    "cpu_cores", "cpu_sockets", "disks", "hostname", "init", "interfaces", "is-freebsd-jail",
    "kernel_name", "lsb_codename", "lsb_description", "lsb_id", "lsb_release", "machine",
    "machine_type", "memory", "os", "os_release", "os_version", "runlevel",
)  # fmt: skip
