"""SSH targets in containers, started through testcontainers, and the fleet that owns them.

A `Fleet` starts n sshd containers in parallel, waits for their banners, and writes an
ssh_config, a known_hosts and a hosts file naming them `target-1` … `target-n`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

from . import cleanup
from .faults import Faults
from .image import BuiltImage, Flavour, build_image
from .sshd import SshdTuning, poll_until, wait_for_banner

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

HOST = "127.0.0.1"  # never a 172.x bridge address: published ports on loopback only
_HOSTKEY_PREFIX = "cdist-trio-hostkey: "
_START_WORKERS = 10  # 30 containers: 7.7 s one by one, 3.7 s from 10 threads (FIELD-NOTES)

# testcontainers reads these when it is imported; the harness imports it lazily, after this.
_TESTCONTAINERS_ENV = {
    "TESTCONTAINERS_RYUK_DISABLED": "true",  # the reaper image cannot be pulled here
    "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
    "TESTCONTAINERS_HOST_OVERRIDE": HOST,
    "TC_POOLING_INTERVAL": "0.05",
}


def _testcontainers() -> type[DockerContainer]:
    for name, value in _TESTCONTAINERS_ENV.items():
        os.environ.setdefault(name, value)
    from testcontainers.core.container import DockerContainer

    return DockerContainer


class SshTarget(Faults):
    """One sshd container: its addresses, host key, faults and inspection helpers."""

    def __init__(self, index: int, aliases: Sequence[str], container: DockerContainer) -> None:
        self.index = index
        self.aliases = tuple(aliases)
        self._container = container
        self.port = _published_port(container)
        self.host_key = ""
        self.ssh_config: Path | None = None  # set by the fleet once it wrote the file

    @property
    def name(self) -> str:
        """The first alias, `target-<index>`."""
        return self.aliases[0]

    @property
    def container_id(self) -> str:
        return self._container.get_container_id()

    def docker_container(self) -> Any:
        return self._container.get_wrapped_container()

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Block until sshd sends its banner on 127.0.0.1:<port> and the host key is known.

        Waits further until the probe's own "Connection from" line is in the log, so that
        counts taken after this return are not disturbed by the probe.
        """
        before = self.sshd_counts().connections
        wait_for_banner(HOST, self.port, timeout=timeout)
        poll_until(
            lambda: self.sshd_counts().connections > before and self._read_host_key(),
            timeout=timeout,
            what=f"{self.name}'s host key and probe in its log",
        )

    def _read_host_key(self) -> bool:
        for line in self.sshd_log().splitlines():
            if line.startswith(_HOSTKEY_PREFIX):
                self.host_key = line[len(_HOSTKEY_PREFIX) :].strip()
        return bool(self.host_key)

    def known_hosts_line(self) -> str:
        names = ",".join([*self.aliases, f"[{HOST}]:{self.port}"])
        return f"{names} {self.host_key}\n"

    def ssh_args(self, *args: str, alias: str | None = None) -> list[str]:
        """An OpenSSH client command line for this target through the fleet's ssh_config."""
        if self.ssh_config is None:
            raise RuntimeError("the target's fleet has not written its ssh_config yet")
        return ["ssh", "-F", str(self.ssh_config), alias or self.name, *args]

    def ssh(
        self, command: str, *, alias: str | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` over SSH with the OpenSSH client (host key verified); blocks."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 60)
        return subprocess.run(self.ssh_args(command, alias=alias), check=False, **kwargs)

    def memory_bytes(self) -> int:
        """The container's current memory use as its cgroup counts it."""
        stats = self.docker_container().stats(stream=False)
        return int(stats["memory_stats"].get("usage", 0))

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self._container.stop(force=True, delete_volume=True)

    def __repr__(self) -> str:
        return f"<SshTarget {self.name} {HOST}:{self.port}>"


def _published_port(container: DockerContainer) -> int:
    ports = container.get_wrapped_container().attrs["HostConfig"]["PortBindings"]["22/tcp"]
    return int(ports[0]["HostPort"])


def _free_port() -> int:
    # A fixed host port survives `docker restart`; a docker-chosen one changes on restart.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class ClientKey:
    """The fleet's own ed25519 client key pair."""

    private: Path
    public: str

    @classmethod
    def generate(cls, directory: Path) -> ClientKey:
        private = directory / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "harness", "-f", str(private)],
            check=True,
        )
        return cls(private, (directory / "id_ed25519.pub").read_text().strip())


class Fleet:
    """n sshd targets for one test session, run and removed as a unit.

    `with Fleet(5, flavour="debian", tuning=SshdTuning(max_sessions=2)) as fleet:` starts
    the containers from a thread pool, blocks until every one answers with an SSH banner,
    writes `fleet.ssh_config`, `fleet.known_hosts` and `fleet.hosts_file`, and removes
    every container on exit, also when starting failed. `hosts_per_target` > 1 names
    n * hosts_per_target hosts spread over the n containers, to load one sshd from many
    "hosts". Each path in `tmpfs` is a fresh tmpfs (mode 0755) in every target: the
    benchmark keeps the tools' remote work directory there.
    """

    def __init__(
        self,
        n: int,
        *,
        flavour: Flavour = "minimal",
        tuning: SshdTuning | None = None,
        hosts_per_target: int = 1,
        image: BuiltImage | str | None = None,
        directory: Path | None = None,
        name_prefix: str = "target",
        ready_timeout: float = 30.0,
        tmpfs: Sequence[str] = (),
    ) -> None:
        if n < 1 or hosts_per_target < 1:
            raise ValueError("a fleet needs n >= 1 and hosts_per_target >= 1")
        self.n = n
        self.flavour: Flavour = flavour
        self.tuning = tuning or SshdTuning()
        self.hosts_per_target = hosts_per_target
        self.name_prefix = name_prefix
        self.ready_timeout = ready_timeout
        self.tmpfs = tuple(tmpfs)
        for path in self.tmpfs:
            if not path.startswith("/") or path == "/":
                raise ValueError(f"a tmpfs mount point must be an absolute path, not {path!r}")
        self._image = image
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="cdist-trio-fleet-"))
        self.targets: list[SshTarget] = []
        self.start_seconds = 0.0
        self.client_key: ClientKey | None = None
        self._fleet_id = uuid.uuid4().hex[:12]

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def hosts_file(self) -> Path:
        return self.directory / "hosts"

    @property
    def hosts(self) -> list[str]:
        """Every host alias, target-1 … target-(n * hosts_per_target)."""
        return sorted((a for t in self.targets for a in t.aliases), key=_alias_order)

    def target(self, alias: str) -> SshTarget:
        """The target a host alias points to."""
        for target in self.targets:
            if alias in target.aliases:
                return target
        raise KeyError(alias)

    def __getitem__(self, index: int) -> SshTarget:
        return self.targets[index]

    def __len__(self) -> int:
        return len(self.targets)

    def __iter__(self) -> Iterator[SshTarget]:
        return iter(self.targets)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Build (or reuse) the image, start every target and write the client files.

        Blocks until all targets answer; on any failure, or KeyboardInterrupt, removes what
        was started and re-raises.
        """
        started = time.monotonic()
        cleanup.started()
        try:
            image = self._image_tag()
            self.client_key = ClientKey.generate(self.directory)
            aliases = self._aliases()
            with concurrent.futures.ThreadPoolExecutor(min(self.n, _START_WORKERS)) as pool:
                futures = [
                    pool.submit(self._start_one, i, aliases[i], image) for i in range(self.n)
                ]
                errors: list[BaseException] = []
                for future in futures:
                    try:
                        self.targets.append(future.result())
                    except Exception as error:  # collected; every future is awaited first
                        errors.append(error)
            if errors:
                raise errors[0]
            self.targets.sort(key=lambda t: t.index)
            self._write_client_files()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        """Remove every container of this fleet (idempotent) and its temporary files."""
        targets, self.targets = self.targets, []
        with concurrent.futures.ThreadPoolExecutor(_START_WORKERS) as pool:
            list(pool.map(lambda t: t.remove(), targets))
        cleanup.remove_containers({cleanup.FLEET_LABEL: self._fleet_id})
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def heal(self) -> None:
        """Undo faults: unpause, start sshd if it died, remove link delays."""
        for target in self.targets:
            if target._status() == "paused":
                target.unpause()
            if target.sshd_pid() is None:
                target.start_sshd()
            with contextlib.suppress(Exception):
                target.clear_link()

    def _image_tag(self) -> str:
        if isinstance(self._image, str):
            return self._image
        if isinstance(self._image, BuiltImage):
            return self._image.tag
        return build_image(self.flavour).tag

    def _aliases(self) -> list[list[str]]:
        aliases: list[list[str]] = [[] for _ in range(self.n)]
        for number in range(1, self.n * self.hosts_per_target + 1):
            aliases[(number - 1) % self.n].append(f"{self.name_prefix}-{number}")
        return aliases

    def _start_one(self, index: int, aliases: list[str], image: str) -> SshTarget:
        assert self.client_key is not None
        for attempt in range(3):
            container = self._container(image, aliases[0])
            try:
                container.start()
            except Exception as error:
                with contextlib.suppress(Exception):
                    container.stop(force=True)
                # Another process may take the port between _free_port and docker-proxy.
                if "already" in str(error) and "port" in str(error) and attempt < 2:
                    continue
                raise
            target = SshTarget(index, aliases, container)
            target.wait_ready(timeout=self.ready_timeout)
            return target
        raise AssertionError("unreachable")

    def _container(self, image: str, name: str) -> DockerContainer:
        assert self.client_key is not None
        container = (
            _testcontainers()(image)
            .with_env("CDIST_TRIO_AUTHORIZED_KEYS", self.client_key.public)
            .with_command(self.tuning.sshd_args())
        )
        kwargs: dict[str, Any] = {
            "init": True,  # docker's tini as PID 1 reaps orphaned sshd children
            "labels": {
                **cleanup.session_labels(),
                cleanup.FLEET_LABEL: self._fleet_id,
                "cdist-trio.harness.target": name,
            },
            "hostname": name,
        }
        # Docker's tmpfs options; exec because cdist-style tools may run scripts there.
        mounts = dict.fromkeys(self.tmpfs, "mode=0755,exec")
        own = getattr(container, "tmpfs", None)
        if isinstance(own, dict):  # newer testcontainers pass their own tmpfs= to docker
            own.update(mounts)
        elif mounts:
            kwargs["tmpfs"] = mounts
        container.with_kwargs(**kwargs)
        # testcontainers can only bind 0.0.0.0; docker-py takes (address, port).
        container.ports = cast(Any, {"22/tcp": (HOST, _free_port())})
        return container

    def _write_client_files(self) -> None:
        assert self.client_key is not None
        self.known_hosts.write_text("".join(t.known_hosts_line() for t in self.targets))
        blocks: list[str] = []
        for alias in self.hosts:
            target = self.target(alias)
            blocks.append(
                f"Host {alias}\n"
                f"    HostName {HOST}\n"
                f"    Port {target.port}\n"
                "    User root\n"
                f"    IdentityFile {_quote(self.client_key.private)}\n"
                "    IdentitiesOnly yes\n"
                f"    UserKnownHostsFile {_quote(self.known_hosts)}\n"
                "    GlobalKnownHostsFile /dev/null\n"
                "    StrictHostKeyChecking yes\n"
                "    BatchMode yes\n"
                "    LogLevel ERROR\n"
            )
        self.ssh_config.write_text("\n".join(blocks))
        self.hosts_file.write_text("".join(f"{alias}\n" for alias in self.hosts))
        for target in self.targets:
            target.ssh_config = self.ssh_config

    def summary(self) -> str:
        """One line per target: aliases, port, container id."""
        return "\n".join(
            f"{','.join(t.aliases)}\t{HOST}:{t.port}\t{t.container_id[:12]}" for t in self.targets
        )


def _alias_order(alias: str) -> tuple[str, int]:
    prefix, _, number = alias.rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (alias, 0)


def _quote(path: Path) -> str:
    text = str(path)
    return f'"{text}"' if any(c.isspace() for c in text) else text


def ssh_command_line(fleet: Fleet, alias: str, command: str) -> str:
    """The shell command line a human would type to reach `alias` (for messages)."""
    return shlex.join(["ssh", "-F", str(fleet.ssh_config), alias, command])
