"""Builds the sshd target image without any container registry, cached by content hash.

A root filesystem is assembled locally (busybox + the host's sshd, or mmdebstrap), imported
with `docker import`, then `containers/sshd/Dockerfile` adds the sshd configuration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import docker

Flavour = Literal["debian", "minimal"]
FLAVOURS: tuple[Flavour, ...] = ("debian", "minimal")

#: The build context shipped with the project (Dockerfile, entrypoint, sshd_config).
CONTEXT_DIR = Path(__file__).resolve().parent.parent / "containers" / "sshd"
IMAGE_LABEL = "cdist-trio.harness.image"

DEBIAN_SUITE = os.environ.get("CDIST_TRIO_DEBIAN_SUITE", "bookworm")
DEBIAN_MIRROR = os.environ.get("CDIST_TRIO_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBIAN_PACKAGES = ("openssh-server",)

# Host programs copied into the minimal flavour, with the libraries `ldd` names. Debian's
# busybox lacks `cksum` and `getent`, which explorers use.
_MINIMAL_REQUIRED = ("/usr/sbin/sshd", "/usr/bin/ssh-keygen")
_MINIMAL_OPTIONAL = ("/usr/bin/scp", "/usr/bin/cksum", "/usr/bin/getent")
_BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
_RECIPE_VERSION = "1"


class ImageBuildError(RuntimeError):
    """The image could not be built; the message says which step failed and why."""


@dataclasses.dataclass(frozen=True)
class BuiltImage:
    """An sshd image ready to run, and what building it cost."""

    tag: str
    flavour: Flavour
    cached: bool
    seconds: float


def build_image(
    flavour: Flavour = "minimal",
    *,
    base: str | None = None,
    overlays: Sequence[Path] = (),
    extra_packages: Sequence[str] = (),
    client: docker.DockerClient | None = None,
) -> BuiltImage:
    """Build `cdist-trio-sshd-<flavour>:<hash>`, or return at once when it exists.

    `base` names a registry image to build from instead of a local root filesystem (it is
    pulled by the Docker engine). `overlays` are directories copied over the image's root:
    the hook for later needs such as a local package repository. `extra_packages` are added
    to the debian flavour's mmdebstrap `--include`. Blocks; safe across processes (a lock
    file serialises builds of the same image).
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; expected one of {FLAVOURS}")
    if extra_packages and flavour != "debian":
        raise ValueError("extra_packages needs the debian flavour")
    started = time.monotonic()
    if client is None:
        import docker

        client = docker.from_env()
    base_tag = base or _base_tag(flavour, extra_packages)
    digest = _digest(base_tag, _context_files(overlays))
    tag = f"cdist-trio-sshd-{flavour}:{digest}"
    with _build_lock(tag):
        if _image_exists(client, tag):
            return BuiltImage(tag, flavour, cached=True, seconds=time.monotonic() - started)
        if base is None and not _image_exists(client, base_tag):
            _import_base(client, flavour, base_tag, extra_packages)
        _build_final(client, tag, base_tag, overlays)
    return BuiltImage(tag, flavour, cached=False, seconds=time.monotonic() - started)


def _image_exists(client: docker.DockerClient, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


@contextlib.contextmanager
def _build_lock(tag: str) -> Iterator[None]:
    path = Path(tempfile.gettempdir()) / f"cdist-trio-{tag.replace(':', '-')}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- content hashes --------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _base_tag(flavour: Flavour, extra_packages: Sequence[str]) -> str:
    """The base image's tag, named after everything that goes into its root filesystem."""
    recipe = hashlib.sha256(f"{flavour}\0{_RECIPE_VERSION}\0".encode())
    if flavour == "debian":
        packages = sorted({*DEBIAN_PACKAGES, *extra_packages})
        recipe.update(f"{DEBIAN_SUITE}\0{DEBIAN_MIRROR}\0{','.join(packages)}".encode())
    else:
        for path in _minimal_files():
            recipe.update(f"{path}\0{_sha256_file(Path(path))}\0".encode())
    return f"cdist-trio-base-{flavour}:{recipe.hexdigest()[:16]}"


def _context_files(overlays: Sequence[Path]) -> list[tuple[str, Path]]:
    """(path in the build context, source file) for the shipped context plus overlays."""
    files: list[tuple[str, Path]] = []
    for root, prefix in [(CONTEXT_DIR, ""), *((Path(o), "overlay/") for o in overlays)]:
        if not root.is_dir():
            raise ImageBuildError(f"build context directory {root} does not exist")
        for path in sorted(root.rglob("*")):
            if path.is_file():
                files.append((prefix + path.relative_to(root).as_posix(), path))
    return files


def _digest(base_tag: str, files: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256(base_tag.encode() + b"\0")
    for name, path in files:
        mode = path.stat().st_mode & 0o777
        digest.update(f"{name}\0{mode:o}\0{_sha256_file(path)}\0".encode())
    return digest.hexdigest()[:16]


# -- base root filesystems -------------------------------------------------------------


def _import_base(
    client: docker.DockerClient, flavour: Flavour, tag: str, extra_packages: Sequence[str]
) -> None:
    repository, _, version = tag.partition(":")
    changes = [f"LABEL {IMAGE_LABEL}=base"]
    with tempfile.TemporaryDirectory(prefix="cdist-trio-rootfs-") as scratch:
        if flavour == "debian":
            rootfs = Path(scratch) / "rootfs.tar"
            _mmdebstrap(rootfs, extra_packages)
            data = rootfs.read_bytes()
        else:
            data = _minimal_rootfs()
        client.api.import_image_from_data(data, repository=repository, tag=version, changes=changes)
    if not _image_exists(client, tag):
        raise ImageBuildError(f"docker import did not produce {tag}")


def _mmdebstrap(destination: Path, extra_packages: Sequence[str]) -> None:
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError("the debian flavour needs mmdebstrap (apt-get install mmdebstrap)")
    packages = ",".join(sorted({*DEBIAN_PACKAGES, *extra_packages}))
    command = [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={packages}",
        "--format=tar",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        # Each container makes its own host key; none may be baked into the image.
        '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*',
        DEBIAN_SUITE,
        str(destination),
        DEBIAN_MIRROR,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImageBuildError(f"mmdebstrap failed ({result.returncode}):\n{result.stderr[-4000:]}")


def _busybox() -> str:
    for candidate in _BUSYBOX_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise ImageBuildError(
        "the minimal flavour needs a static busybox (apt-get install busybox-static)"
    )


def _minimal_files() -> list[str]:
    """Host files the minimal root filesystem copies: programs and their libraries."""
    missing = [p for p in _MINIMAL_REQUIRED if not Path(p).is_file()]
    if missing:
        raise ImageBuildError(
            f"the minimal flavour needs {missing} (apt-get install openssh-server)"
        )
    programs = [*_MINIMAL_REQUIRED, *(p for p in _MINIMAL_OPTIONAL if Path(p).is_file())]
    files = {_busybox(), *programs}
    for program in programs:
        files.update(_libraries(program))
    return sorted(files)


def _libraries(program: str) -> list[str]:
    result = subprocess.run(["ldd", program], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return []  # static
    found: list[str] = []
    for line in result.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) >= 3 and words[2].startswith("/"):
            found.append(words[2])
        elif words and words[0].startswith("/"):
            found.append(words[0])
    return found


_ETC_FILES = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\n"
        "sshd:x:100:65534::/run/sshd:/bin/false\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    ),
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\nnobody:*:19000::::::\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
    "etc/os-release": 'ID=cdist-trio-minimal\nNAME="cdist-trio minimal sshd target"\n',
}
_DIRECTORIES = {
    "bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
    "usr/local": 0o755, "usr/local/bin": 0o755, "usr/local/sbin": 0o755, "etc": 0o755,
    "etc/ssh": 0o755, "root": 0o700, "root/.ssh": 0o700, "run": 0o755, "run/sshd": 0o755,
    "tmp": 0o1777, "var": 0o755, "var/log": 0o755, "var/tmp": 0o1777, "home": 0o755,
    "proc": 0o555, "sys": 0o555, "dev": 0o755,
}  # fmt: skip


def _minimal_rootfs() -> bytes:
    """A tar of busybox, the host's sshd and their libraries: a shell target in 20 MB."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        added: set[str] = set()

        def add_dirs(path: str) -> None:
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                name = "/".join(parts[:depth])
                if name and name not in added:
                    _add(tar, name, mode=_DIRECTORIES.get(name, 0o755), kind=tarfile.DIRTYPE)
                    added.add(name)

        for name in _DIRECTORIES:
            add_dirs(name + "/")
        for name, text in _ETC_FILES.items():
            mode = 0o640 if name == "etc/shadow" else 0o644
            _add(tar, name, mode=mode, data=text.encode())
            added.add(name)
        for source in _minimal_files():
            name = source.lstrip("/")
            add_dirs(name)
            _add(tar, name, mode=0o755, data=Path(source).read_bytes())
            added.add(name)
        busybox = _busybox().lstrip("/")
        if busybox != "bin/busybox":
            _add(tar, "bin/busybox", kind=tarfile.SYMTYPE, link="/" + busybox)
            added.add("bin/busybox")
        listing = subprocess.run(
            ["/" + busybox, "--list-full"], capture_output=True, text=True, check=True
        )
        for applet in listing.stdout.split():
            if applet not in added and applet.rsplit("/", 1)[0] in _DIRECTORIES:
                _add(tar, applet, kind=tarfile.SYMTYPE, link="/bin/busybox")
                added.add(applet)
    return buffer.getvalue()


def _add(
    tar: tarfile.TarFile,
    name: str,
    *,
    mode: int = 0o644,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = 0
    info.mtime = 0
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


# -- the final image -------------------------------------------------------------------


def _build_final(
    client: docker.DockerClient, tag: str, base_tag: str, overlays: Sequence[Path]
) -> None:
    import docker.errors

    with tempfile.TemporaryDirectory(prefix="cdist-trio-context-") as scratch:
        context = Path(scratch)
        shutil.copytree(CONTEXT_DIR, context, dirs_exist_ok=True)
        for overlay in overlays:
            shutil.copytree(overlay, context / "overlay", dirs_exist_ok=True, symlinks=True)
        try:
            client.images.build(
                path=str(context),
                tag=tag,
                buildargs={"BASE": base_tag},
                labels={IMAGE_LABEL: "sshd"},
                rm=True,
                forcerm=True,
            )
        except (docker.errors.BuildError, docker.errors.APIError) as error:
            log = "".join(
                str(chunk.get("stream", chunk.get("error", "")))
                for chunk in getattr(error, "build_log", [])
            )
            raise ImageBuildError(
                f"docker build of {tag} failed: {error}\n{log[-4000:]}"
            ) from error


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m harness.image [flavour ...]`: build the images and print their tags."""
    import sys

    flavours = list(argv if argv is not None else sys.argv[1:]) or list(FLAVOURS)
    for flavour in flavours:
        if flavour not in FLAVOURS:
            print(f"unknown flavour {flavour!r}; expected one of {FLAVOURS}", file=sys.stderr)
            return 2
        built = build_image(flavour)
        state = "cached" if built.cached else "built"
        print(f"{built.tag}\t{state} in {built.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
