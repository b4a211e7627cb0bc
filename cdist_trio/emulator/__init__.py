"""The type emulator: what runs when a manifest calls ``__sometype`` (cdist-spec §6).

One short-lived process per call; stdlib only and no Trio, so it starts fast.
"""

from __future__ import annotations

from .entry import is_emulator_name as is_emulator_name
from .entry import main as main
