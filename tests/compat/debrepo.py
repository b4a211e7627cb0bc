"""A `debian` test image with a local apt repository, so package types need no network.

The packages named in `containers/debs/packages` are fetched with `apt-get download` on
this (Debian bookworm) machine, cached in `.cache/debs/`, indexed into a flat `Packages`
file and baked into a variant of the harness's debian image as an overlay.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import BuiltImage, build_image

ROOT = Path(__file__).resolve().parents[2]
DEBS_DIR = ROOT / "containers" / "debs"
CACHE_DIR = ROOT / ".cache" / "debs"


def package_names() -> list[str]:
    """The packages the local repository holds (one name a line in `packages`)."""
    lines = (DEBS_DIR / "packages").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _download(names: list[str], destination: Path) -> list[Path]:
    """`.deb` files for `names`, downloaded once into `destination` and reused after."""
    destination.mkdir(parents=True, exist_ok=True)
    wanted = {name: sorted(destination.glob(f"{name}_*.deb")) for name in names}
    missing = [name for name, found in wanted.items() if not found]
    if missing:
        with tempfile.TemporaryDirectory(dir=destination) as scratch:
            result = subprocess.run(
                ["apt-get", "download", *missing],
                cwd=scratch,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"apt-get download {' '.join(missing)} failed (run `apt-get update` "
                    f"first on a fresh machine):\n{result.stderr}"
                )
            for deb in Path(scratch).glob("*.deb"):
                deb.rename(destination / deb.name)
    return [sorted(destination.glob(f"{name}_*.deb"))[-1] for name in names]


def _index_entry(deb: Path) -> str:
    """One paragraph of a flat repository's `Packages` file."""
    control = subprocess.run(
        ["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True
    ).stdout.rstrip("\n")
    data = deb.read_bytes()
    return (
        f"{control}\n"
        f"Filename: ./{deb.name}\n"
        f"Size: {len(data)}\n"
        f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
        f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
    )


def build_overlay() -> Path:
    """The overlay directory (a root filesystem fragment) holding the repository."""
    debs = _download(package_names(), CACHE_DIR / "pool")
    overlay = CACHE_DIR / "overlay"
    shutil.rmtree(overlay, ignore_errors=True)
    repo = overlay / "srv" / "debs"
    sources = overlay / "etc" / "apt" / "sources.list.d"
    repo.mkdir(parents=True)
    sources.mkdir(parents=True)
    for deb in debs:
        shutil.copy2(deb, repo / deb.name)
    (repo / "Packages").write_text("\n".join(_index_entry(deb) for deb in debs))
    shutil.copy2(DEBS_DIR / "local.list", sources / "local.list")
    shutil.copy2(DEBS_DIR / "sources.list", sources.parent / "sources.list")
    # cdist 7.0.0's __package_apt never really runs `apt-get update` (its guard echoes the
    # command), so the image carries the index as `apt-get update` would leave it.
    lists = overlay / "var" / "lib" / "apt" / "lists"
    lists.mkdir(parents=True)
    # Relative, so that it also resolves inside the overlay and the image hash covers it.
    (lists / "_srv_debs_._Packages").symlink_to("../../../../srv/debs/Packages")
    for path in overlay.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return overlay


def debian_repo_image() -> BuiltImage:
    """The debian sshd image plus the local repository; cached by content hash."""
    return build_image("debian", overlays=[build_overlay()])
