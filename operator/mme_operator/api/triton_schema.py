"""Triton's ``model_config.proto`` schema, loaded where the API layer can use it.

The spec validates its ``configPbtxt`` fragment and names Triton fields it does not type
with this schema; :mod:`mme_operator.triton` renders and checks configs with it.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from google.protobuf import descriptor as _descriptor


def _load_model_config_pb2() -> ModuleType:
    """Triton's ``model_config_pb2`` from the installed tritonclient, loaded on its own.

    Importing it as ``tritonclient.grpc.model_config_pb2`` runs ``tritonclient.grpc``'s
    ``__init__`` first, which loads grpc and numpy (a third of the operator's start-up)
    for a module that needs only protobuf. Loading the file itself gives the same
    classes (protobuf keeps one per descriptor), whoever imports the package later.
    """
    package = importlib.util.find_spec("tritonclient")
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("tritonclient is not installed: pip install tritonclient")
    path = Path(next(iter(package.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("mme_operator.triton._model_config_pb2", path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"Triton's model_config_pb2 is missing from {path.parent}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    from tritonclient.grpc import model_config_pb2 as model_config_pb2
else:
    model_config_pb2 = _load_model_config_pb2()


def _all_field_names(message: _descriptor.Descriptor, seen: set[str], names: set[str]) -> None:
    if message.full_name in seen:
        return
    seen.add(message.full_name)
    for field in message.fields:
        names.add(field.name)
        if field.message_type is not None:
            _all_field_names(field.message_type, seen, names)


@lru_cache(maxsize=1)
def triton_field_names() -> frozenset[str]:
    """Every field name (snake_case) of ``inference.ModelConfig`` and the messages under it."""
    names: set[str] = set()
    _all_field_names(model_config_pb2.ModelConfig.DESCRIPTOR, set(), names)
    return frozenset(names)
