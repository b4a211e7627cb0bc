"""`python -m harness.demo`: start a few targets, configure them with cdist-trio, show the
result, remove the targets. The helper behind `nox -s demo`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .image import FLAVOURS
from .targets import Fleet

DEFAULT_MANIFEST = Path("examples/demo/manifest")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.demo", description=__doc__)
    parser.add_argument("-n", "--targets", type=int, default=3, help="how many (default 3)")
    parser.add_argument("--flavour", choices=FLAVOURS, default="debian")
    parser.add_argument("-i", "--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("-j", "--jobs", type=int, default=16)
    parser.add_argument("cdist_args", nargs="*", help="more cdist-trio config arguments (after --)")
    return parser


def config_command(fleet: Fleet, manifest: Path, jobs: int, extra: Sequence[str]) -> list[str]:
    """The cdist-trio command line that configures every host of `fleet`."""
    beside = Path(sys.executable).parent / "cdist-trio"
    if beside.is_file():
        program = [str(beside)]
    elif found := shutil.which("cdist-trio"):
        program = [found]
    else:
        program = [sys.executable, "-m", "cdist_trio"]
    return [
        *program,
        "config",
        "--transport",
        "openssh",
        "-F",
        str(fleet.ssh_config),
        "-p",
        "-j",
        str(jobs),
        "-f",
        str(fleet.hosts_file),
        "-i",
        str(manifest),
        *(extra or ["-v"]),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns cdist-trio's exit status (2 for a missing manifest)."""
    options = _parser().parse_args(argv)
    if not options.manifest.is_file():
        print(f"demo: no manifest at {options.manifest}", file=sys.stderr)
        return 2
    print(f"demo: starting {options.targets} {options.flavour} target(s) ...", flush=True)
    with Fleet(options.targets, flavour=options.flavour) as fleet:
        print(f"demo: targets up in {fleet.start_seconds:.1f} s\n{fleet.summary()}", flush=True)
        command = config_command(fleet, options.manifest, options.jobs, options.cdist_args)
        print("demo: $ " + " ".join(command), flush=True)
        started = time.monotonic()
        result = subprocess.run(command, check=False)
        elapsed = time.monotonic() - started
        print(f"demo: cdist-trio exited {result.returncode} after {elapsed:.1f} s")
        first = fleet[0]
        listing = first.shell(
            "ls -la /srv/demo /srv/demo/releases; cat /etc/demo.conf", check=False
        )
        print(f"demo: what {first.name} looks like now:\n{listing.text}")
        for target in fleet:
            counts = target.sshd_counts()
            print(
                f"demo: {target.name}: {counts.connections - 1} connection(s), "
                f"{counts.sessions} session(s), {counts.refused_sessions} refused"
            )
    print("demo: targets removed")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
