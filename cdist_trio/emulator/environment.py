"""What the emulator learns from its environment (cdist-spec §6.1), read once, frozen.

Missing required variables are a `UserError` naming the first one missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

REQUIRED_VARIABLES = (
    "__global",
    "__target_host",
    "__target_hostname",
    "__target_fqdn",
    "__cdist_manifest",
    "__cdist_type_base_path",
    "__cdist_object_marker",
)


@dataclass(frozen=True)
class EmulatorEnv:
    """The settings of one emulator call.

    ``parent_name`` is the object whose type manifest is running (None in the initial
    manifest); ``order_dependency`` and ``override`` are true when the variable is set at
    all, even to an empty value, as in cdist.
    """

    global_path: Path
    target_host: str
    manifest: str
    type_base: Path
    marker: str
    parent_name: str | None
    require: str
    order_dependency: bool
    override: bool

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EmulatorEnv:
        for variable in REQUIRED_VARIABLES:
            if variable not in environ:
                raise UserError(
                    f"Emulator requires the environment variable {variable} to be setup"
                )
        return cls(
            global_path=Path(environ["__global"]),
            target_host=environ["__target_host"],
            manifest=environ["__cdist_manifest"],
            type_base=Path(environ["__cdist_type_base_path"]),
            marker=environ["__cdist_object_marker"],
            parent_name=environ.get("__object_name") or None,
            require=environ.get("require", ""),
            order_dependency="CDIST_ORDER_DEPENDENCY" in environ,
            override="CDIST_OVERRIDE" in environ,
        )

    @property
    def object_base(self) -> Path:
        return self.global_path / "object"
