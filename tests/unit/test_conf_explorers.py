"""Sanity checks for the bundled conf dir: global explorers and script hygiene."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "cdist_trio" / "conf"
EXPLORERS = CONF / "explorer"
TYPES = CONF / "type"

SHELLS = [
    s for s in (["dash"], ["bash", "--posix"], ["busybox", "sh"], ["/bin/sh"]) if shutil.which(s[0])
]


def run_explorer(name: str, shell: list[str] | None = None) -> str:
    proc = subprocess.run(
        [*(shell or ["/bin/sh"]), "-e", str(EXPLORERS / name)],
        env={**os.environ, "__explorer": str(EXPLORERS)},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def run_explorer_bytes(name: str, shell: list[str]) -> bytes:
    return subprocess.run(
        [*shell, "-e", str(EXPLORERS / name)],
        env={**os.environ, "__explorer": str(EXPLORERS)},
        capture_output=True,
        check=False,
    ).stdout


def all_scripts() -> list[Path]:
    scripts = [p for p in EXPLORERS.iterdir() if not p.name.startswith(".")]
    for type_dir in TYPES.iterdir():
        for name in ("manifest", "gencode-local", "gencode-remote"):
            if (type_dir / name).exists():
                scripts.append(type_dir / name)
        if (type_dir / "explorer").is_dir():
            scripts.extend(p for p in (type_dir / "explorer").iterdir())
    return sorted(scripts)


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_every_global_explorer_runs(shell: list[str]) -> None:
    for script in sorted(EXPLORERS.iterdir()):
        out = run_explorer(script.name, shell)
        assert out.endswith("\n") or out == "", script.name


def test_kernel_name_and_machine() -> None:
    assert run_explorer("kernel_name").strip() == platform.uname().system
    assert run_explorer("machine").strip() == platform.uname().machine


def test_hostname() -> None:
    assert run_explorer("hostname").strip() == platform.uname().node


def test_os_is_one_lowercase_word() -> None:
    out = run_explorer("os")
    assert out.endswith("\n")
    word = out.strip()
    assert word
    assert word == word.lower()
    assert len(word.split()) == 1
    if Path("/etc/debian_version").exists() and not Path("/etc/os-release").exists():
        assert word in {"debian", "ubuntu", "devuan"}


def test_os_matches_os_release() -> None:
    path = Path("/etc/os-release")
    if not path.exists():
        pytest.skip("no /etc/os-release here")
    ids = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        ids[key] = value.strip("\"'").lower()
    known = {"debian", "ubuntu", "devuan", "alpine", "centos", "fedora"}
    if ids.get("ID") in known:
        assert run_explorer("os").strip() == ids["ID"]


def test_os_version_not_empty() -> None:
    assert run_explorer("os_version").strip()


def test_numeric_explorers() -> None:
    if (EXPLORERS / "cpu_cores").exists():
        assert int(run_explorer("cpu_cores")) >= 1
    if (EXPLORERS / "memory").exists():
        assert int(run_explorer("memory")) > 0


# --- the common Linux path of the global explorers starts no program -------------
#
# hostname, kernel_name, memory and os_release read /proc and the os-release file
# with shell builtins; os, os_version and the lsb_* explorers do too when the
# release files hold printable ASCII.  With PATH pointing nowhere they must print
# what they print with the real PATH (busybox sh finds its applets anyway).

PROC_FILES = ("/proc/sys/kernel/ostype", "/proc/sys/kernel/hostname", "/proc/meminfo")
LINUX_PROC = all(os.access(p, os.R_OK) for p in PROC_FILES)
OS_RELEASE = next(
    (Path(p) for p in ("/etc/os-release", "/usr/lib/os-release") if Path(p).is_file()), None
)
LSB_RELEASE = Path("/etc/lsb-release")
RELEASE_FILE_FAMILIES = {
    "debian", "devuan", "raspbian", "ubuntu", "linuxmint", "alpine",
    "centos", "redhat", "fedora", "scientific", "almalinux", "rocky",
}  # fmt: skip
OTHER_VERSION_SOURCES = {"openwrt", "freebsd", "openbsd", "netbsd", "dragonfly", "macosx"}


def run_in_env(
    name: str, shell: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    program = shutil.which(shell[0])
    assert program
    return subprocess.run(
        [program, *shell[1:], "-e", str(EXPLORERS / name)],
        env={**env, "__explorer": str(EXPLORERS)},
        capture_output=True,
        check=False,
    )


def without_path(name: str, shell: list[str]) -> subprocess.CompletedProcess[bytes]:
    return run_in_env(name, shell, {"PATH": "/nonexistent"})


def with_path(name: str, shell: list[str]) -> subprocess.CompletedProcess[bytes]:
    return run_in_env(name, shell, dict(os.environ))


def first_value(path: Path, key: str) -> tuple[str, bytes] | None:
    """What follows KEY= on the first line starting with it, and that line's end."""
    if not path.is_file():
        return None
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines):
        if line.startswith(key.encode() + b"="):
            end = b"\n" if number < len(lines) - 1 else b""
            return line[len(key) + 1 :].decode("ascii"), end
    return None


def plain_ascii(path: Path) -> bool:
    """Whether every line of the file is printable ASCII (the builtin-only case)."""
    if not path.exists():
        return True
    return all(0x20 <= byte < 0x7F for byte in path.read_bytes().replace(b"\n", b""))


def unquote(value: str) -> str:
    return value.replace('"', "").replace("'", "")


needs_proc = pytest.mark.skipif(not LINUX_PROC, reason="no Linux /proc here")
needs_plain_os_release = pytest.mark.skipif(
    not LINUX_PROC
    or OS_RELEASE is None
    or not plain_ascii(OS_RELEASE)
    or not plain_ascii(LSB_RELEASE),
    reason="no os-release of printable ASCII here",
)


@needs_proc
@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("name", ["hostname", "kernel_name", "memory", "os_release"])
def test_proc_explorers_start_no_program(shell: list[str], name: str) -> None:
    bare = without_path(name, shell)
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout == with_path(name, shell).stdout
    if name != "os_release":
        assert bare.stdout.strip()
    if name == "os_release" and OS_RELEASE is not None:
        assert bare.stdout == OS_RELEASE.read_bytes()


@needs_plain_os_release
@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_os_explorers_start_no_program(shell: list[str]) -> None:
    assert OS_RELEASE is not None
    os_name = without_path("os", shell)
    assert os_name.returncode == 0, os_name.stderr
    assert os_name.stdout == with_path("os", shell).stdout
    name = os_name.stdout.decode().strip()

    # os_version asks uname -r (or sed, sw_vers) for these, and for any other os
    # without a VERSION_ID
    version_id = first_value(OS_RELEASE, "VERSION_ID")
    uses_programs = name in OTHER_VERSION_SOURCES or (
        name not in RELEASE_FILE_FAMILIES and not (version_id and unquote(version_id[0]))
    )
    if not uses_programs:
        bare = without_path("os_version", shell)
        full = with_path("os_version", shell)
        assert (bare.returncode, bare.stdout) == (full.returncode, full.stdout)


@needs_plain_os_release
@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_lsb_explorers_read_release_files(shell: list[str]) -> None:
    """Without lsb_release the lsb_* explorers read /etc/lsb-release, then os-release:
    the first line with the key, quotes removed, its newline kept as it is."""
    assert OS_RELEASE is not None

    def expect(lsb_key: str, osr_key: str) -> bytes:
        found = first_value(LSB_RELEASE, lsb_key)
        if found is None:
            found = first_value(OS_RELEASE, osr_key)
        return b"" if found is None else unquote(found[0]).encode() + found[1]

    assert without_path("lsb_release", shell).stdout == expect("DISTRIB_RELEASE", "VERSION_ID")
    if first_value(LSB_RELEASE, "DISTRIB_ID") is None:
        found = first_value(OS_RELEASE, "ID")
        value = unquote(found[0]) if found else ""
        wanted = (value[:1].upper() + value[1:] + "\n").encode()
    else:
        wanted = expect("DISTRIB_ID", "ID")
    assert without_path("lsb_id", shell).stdout == wanted
    codename = without_path("lsb_codename", shell).stdout
    if first_value(LSB_RELEASE, "DISTRIB_CODENAME") is not None:
        assert codename == expect("DISTRIB_CODENAME", "VERSION_CODENAME")
    else:
        found = first_value(OS_RELEASE, "VERSION_CODENAME")
        if found and unquote(found[0]):
            assert codename == unquote(found[0]).encode() + b"\n"
    if not shutil.which("lsb_release"):
        for name in ("lsb_release", "lsb_id", "lsb_codename"):
            assert without_path(name, shell).stdout == with_path(name, shell).stdout


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_os_version_sources_our_os_explorer(tmp_path: Path, shell: list[str]) -> None:
    """os_version runs an os explorer that starts with ``#!/bin/sh -e`` in its own
    shell (same $$), and anything else as a program of its own, as before."""
    directory = tmp_path / "explorer"
    shutil.copytree(EXPLORERS, directory)
    program = shutil.which(shell[0])
    assert program
    outputs = []
    for first_line, sourced in (("#!/bin/sh -e", True), ("#!/bin/sh", False)):
        os_explorer = directory / "os"
        os_explorer.write_text(f'{first_line}\necho "$$" > "$__explorer/pid"\necho debian\n')
        os_explorer.chmod(0o755)
        proc = subprocess.Popen(
            [program, *shell[1:], "-e", str(directory / "os_version")],
            env={**os.environ, "__explorer": str(directory)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = proc.communicate()
        pid = (directory / "pid").read_text().strip()
        assert (pid == str(proc.pid)) is sourced, (first_line, pid, proc.pid, err)
        outputs.append((proc.returncode, out))
    # the version of "debian" either way
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_explorers_sourced_like_the_batch_does(shell: list[str]) -> None:
    """The batch sources plain sh explorers in a subshell with set -e: same output."""
    for script in sorted(EXPLORERS.iterdir()):
        sourced = subprocess.run(
            [*shell, "-c", '( set -e; . "$1" ) </dev/null', "explorer", str(script)],
            env={**os.environ, "__explorer": str(EXPLORERS)},
            capture_output=True,
            check=False,
        )
        assert sourced.returncode == 0, (script.name, sourced.stderr)
        assert sourced.stdout == run_explorer_bytes(script.name, shell), script.name


def test_scripts_are_executable_sh() -> None:
    scripts = all_scripts()
    assert scripts
    for script in scripts:
        assert script.is_file(), script
        assert os.access(script, os.X_OK), f"{script} is not executable"
        first = script.read_text().splitlines()[0]
        assert first == "#!/bin/sh -e", f"{script}: {first!r}"


def test_scripts_have_no_bash_only_syntax() -> None:
    bashisms = re.compile(
        r"^\s*(local|declare|typeset|source)\s|\[\[\s|<<<|\$'|&>"
        r"|^\s*function\s+[\w-]+\s*(\(\s*\))?\s*\{?\s*$"
    )
    for script in all_scripts():
        for number, line in enumerate(script.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            assert not bashisms.search(line), f"{script}:{number}: {line}"


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
def test_shellcheck() -> None:
    # SC2154: the engine provides __object, __explorer and friends
    proc = subprocess.run(
        ["shellcheck", "-s", "sh", "-e", "SC2154", *map(str, all_scripts())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_scripts_parse(shell: list[str]) -> None:
    if shell[0] == "bash":
        shell = ["bash"]
    for script in all_scripts():
        proc = subprocess.run(
            [*shell, "-n", str(script)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{script}: {proc.stderr}"


def test_type_layout() -> None:
    types = [d for d in TYPES.iterdir() if not d.name.startswith(".")]
    assert types
    allowed = {
        "manifest",
        "gencode-local",
        "gencode-remote",
        "explorer",
        "parameter",
        "singleton",
        "nonparallel",
        "install",
        "deprecated",
        "files",
        "man.rst",
    }
    for type_dir in types:
        assert type_dir.name.startswith("__"), type_dir
        assert (type_dir / "man.rst").is_file(), f"{type_dir.name} has no man.rst"
        assert set(os.listdir(type_dir)) <= allowed, type_dir
        params = type_dir / "parameter"
        declared: dict[str, set[str]] = {}
        if params.is_dir():
            for kind in (
                "required",
                "optional",
                "boolean",
                "required_multiple",
                "optional_multiple",
            ):
                path = params / kind
                if path.exists():
                    names = {n.strip() for n in path.read_text().splitlines() if n.strip()}
                    declared[kind] = names
            everything = [n for names in declared.values() for n in names]
            assert len(everything) == len(set(everything)), f"{type_dir.name}: duplicates"
            defaults = params / "default"
            if defaults.is_dir():
                optional = declared.get("optional", set()) | declared.get(
                    "optional_multiple", set()
                )
                for d in defaults.iterdir():
                    assert d.name in optional, f"{type_dir.name}: default for {d.name}"
        explorer_dir = type_dir / "explorer"
        if explorer_dir.is_dir():
            assert all(p.is_file() for p in explorer_dir.iterdir()), "explorer subdirs"
        for marker in ("singleton", "nonparallel"):
            if (type_dir / marker).exists():
                assert (type_dir / marker).is_file()
