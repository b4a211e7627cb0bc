"""cdist's data model: types read from their directories, objects in their on-disk layout.

Plain synchronous code with no Trio import, shared by the engine and the emulator process.
"""

from __future__ import annotations

from .cdist_type import CdistType as CdistType
from .cdist_type import TypeRegistry as TypeRegistry
from .ids import split_object_name as split_object_name
from .ids import validate_object_id as validate_object_id
from .objects import DONE as DONE
from .objects import PREPARED as PREPARED
from .objects import CdistObject as CdistObject
from .objects import ObjectStore as ObjectStore
from .objects import ParameterValue as ParameterValue
from .objects import State as State
