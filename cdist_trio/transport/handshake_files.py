"""What asyncssh reads from disk at every handshake, read once per run instead.

asyncssh builds each connection's options from scratch: it loads the client's private
keys (an RSA key is validated on every load: 83 ms for 3072 bits, 190 ms for 4096 bits
here) and reads the known_hosts files (67 ms for 10,000 lines).  Over a fleet that is
minutes of CPU for nothing: `HandshakeFiles` keeps what the first connection loaded and
gives it to the next ones, through asyncssh's own ``client_keys``, ``agent_identities``
and ``known_hosts`` arguments.

Keys are shared between hosts whose ssh_config names the same ``IdentityFile`` list and
``IdentitiesOnly`` (or neither: the default keys).  With ``CertificateFile`` or
``PKCS11Provider`` asyncssh loads them itself, as before.  Used on the asyncio thread only.

The known_hosts files are OpenSSH's, not asyncssh's: the user files (``UserKnownHostsFile``,
else ``~/.ssh/known_hosts`` and ``known_hosts2``) and the global ones
(``GlobalKnownHostsFile``, else ``/etc/ssh/ssh_known_hosts`` and ``ssh_known_hosts2``).
asyncssh alone reads only ``~/.ssh/known_hosts`` by default, and only the global files
when the ssh_config names those without user files, so a host key that ``ssh`` trusts
(and the openssh transport with it) failed as "not trusted".  Default files that do not
exist are skipped, as ssh does; a named one that cannot be read is left to asyncssh,
which says why.

Where the ssh_config sets no ``Ciphers``, the options also put AES-GCM first
(`PREFERRED_CIPHERS`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:
    import asyncssh
except ImportError:  # pragma: no cover - no extra (`open_asyncssh_remote` says so)
    asyncssh = None  # type: ignore[assignment]

#: OpenSSH's defaults for ``UserKnownHostsFile`` and ``GlobalKnownHostsFile``.
USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")

#: The ssh_config options that decide which keys asyncssh loads for a host.
_KeySource = tuple[tuple[str, ...] | None, bool]


class HandshakeFiles:
    """One run's client keys and known_hosts, by what the ssh_config says to load."""

    def __init__(self) -> None:
        self._known_hosts: dict[tuple[str, ...], Any] = {}
        self._keys: dict[_KeySource, tuple[Any, Any]] = {}

    def options(self, host: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """The connection options for ``host`` (as ``asyncssh.connect(host, **kwargs)``
        would make them, keys loaded once per run) and the arguments to connect with."""
        probe = asyncssh.SSHClientConnectionOptions(**kwargs, host=host, client_keys=None)
        kwargs.update(_cipher_order(probe.config))
        source = _key_source(probe.config)
        cached = self._keys.get(source) if source is not None else None
        if cached is None:
            options = asyncssh.SSHClientConnectionOptions(**kwargs, host=host)
            if source is not None and options.client_keys:
                self._keys[source] = (options.client_keys, options.agent_identities)
        else:
            keys, identities = cached
            options = asyncssh.SSHClientConnectionOptions(
                **kwargs, host=host, client_keys=keys, agent_identities=identities
            )
        known = self.known_hosts(options)
        return options, {} if known is None else {"known_hosts": known}

    def known_hosts(self, options: Any) -> Any:
        """The known_hosts files OpenSSH would read for ``options`` (see the module
        docstring), read once; None leaves them to asyncssh (no host key check, no file,
        or a named one it cannot read: asyncssh then says why)."""
        if options.known_hosts is None:
            return None  # UserKnownHostsFile none: asyncssh checks no host key
        config = options.config
        paths = _named(config.get("UserKnownHostsFile", ())) or _existing(USER_KNOWN_HOSTS)
        paths += _named(config.get("GlobalKnownHostsFile", ())) or _existing(GLOBAL_KNOWN_HOSTS)
        if not paths or not all(isinstance(p, str) for p in paths):
            return None
        key = tuple(paths)
        known = self._known_hosts.get(key)
        if known is None:
            try:
                known = asyncssh.read_known_hosts(list(key))
            except (OSError, ValueError):
                return None
            self._known_hosts[key] = known
        return known


#: The ciphers asyncssh offers, AES-GCM first.  asyncssh puts chacha20-poly1305 first (as
#: OpenSSH does) but runs it through several cipher objects per packet: 10 µs a packet
#: here, against 2 µs for AES-GCM, which is as strong.  An ssh_config that sets
#: ``Ciphers`` keeps its own order.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _cipher_order(config: Any) -> dict[str, Any]:
    """``encryption_algs``: asyncssh's default ciphers with `PREFERRED_CIPHERS` first;
    nothing when the ssh_config chooses (``Ciphers``) or asyncssh lacks AES-GCM."""
    if config.get("Ciphers", ()):
        return {}
    try:
        from asyncssh.encryption import get_default_encryption_algs
    except ImportError:  # pragma: no cover - asyncssh moved it: keep its order
        return {}
    defaults = [alg.decode("ascii") for alg in get_default_encryption_algs()]
    first = [alg for alg in PREFERRED_CIPHERS if alg in defaults]
    if not first:
        return {}
    return {"encryption_algs": first + [alg for alg in defaults if alg not in first]}


def _named(value: Any) -> list[str]:
    return list(value) if isinstance(value, list | tuple) else []


def _existing(defaults: tuple[str, ...]) -> list[str]:
    """The default files that exist and can be read (ssh skips the others)."""
    found = []
    for path in defaults:
        full = Path(path).expanduser()
        if full.is_file() and os.access(full, os.R_OK):
            found.append(str(full))
    return found


def _key_source(config: Any) -> _KeySource | None:
    """What decides a host's client keys, or None when asyncssh should load them itself."""
    if config.get("CertificateFile") or config.get("PKCS11Provider"):
        return None
    files = config.get("IdentityFile")
    return (tuple(str(f) for f in files) if files else None), bool(config.get("IdentitiesOnly"))
