"""sagemaker-runtime's InvokeEndpoint for Multi-Model Endpoints served by Triton.

As on SageMaker's Triton MME: the first call naming a ``TargetModel`` downloads
``<ModelDataUrl><TargetModel>`` from S3, unpacks it (one top-level model folder holding
``config.pbtxt`` and numeric version folders), and loads it; later calls find it loaded,
so overwriting the object changes nothing until the model is evicted. Models are evicted
least recently used first when the instance's model memory is full.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import shutil
import tarfile
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from google.protobuf import json_format, text_format

from mme_operator.local.control_plane import (
    ACCOUNT_ID,
    Endpoint,
    Model,
    model_data_url,
    split_s3_url,
)
from mme_operator.local.errors import AwsError
from mme_operator.local.triton import TritonError, TritonServer
from mme_operator.sizing import get_catalogue
from mme_operator.triton.schema import model_config_pb2

ReadObject = Callable[[str, str], bytes | None]
"""(bucket, key) -> the object's bytes, or None when there is no such object."""


class ModelLoadError(Exception):
    """An archive Triton could not load; ``status`` is what the container answers."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class LoadedModel:
    """A model in an endpoint's memory."""

    target_model: str
    config: model_config_pb2.ModelConfig
    size_bytes: int
    triton_name: str | None = None


@dataclass
class _EndpointMemory:
    generation: int
    budget_bytes: int
    models: OrderedDict[str, LoadedModel] = field(default_factory=OrderedDict)

    @property
    def used_bytes(self) -> int:
        return sum(m.size_bytes for m in self.models.values())


def _validation_error(message: str) -> AwsError:
    return AwsError("ValidationError", message, 400)


def _model_error(region: str, endpoint: str, status: int, message: str) -> AwsError:
    kind = "client" if status < 500 else "server"
    text = f'Received {kind} error ({status}) from primary with message "{message}". See '
    log_group = f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
    return AwsError(
        "ModelError",
        f"{text}{log_group} in account {ACCOUNT_ID} for more information.",
        424,
        OriginalStatusCode=status,
        OriginalMessage=message,
        LogStreamArn=log_group,
    )


def unpack_model_archive(data: bytes, destination: Path) -> Path:
    """Unpack a Triton model archive into ``destination``; returns the model's folder.

    Raises ``ModelLoadError`` when it is not a gzip tar, or not Triton's layout: exactly one
    top-level folder holding ``config.pbtxt`` and at least one numeric version folder.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            members = archive.getmembers()
            tops: set[str] = set()
            for member in members:
                parts = PurePosixPath(member.name).parts
                parts = tuple(p for p in parts if p != ".")
                if not parts:
                    continue
                if member.name.startswith("/") or ".." in parts:
                    raise ModelLoadError(f"unsafe path in model archive: {member.name}")
                if not (member.isfile() or member.isdir()):
                    raise ModelLoadError(f"model archive member is not a file: {member.name}")
                if len(parts) == 1 and member.isfile():
                    raise ModelLoadError(
                        f"file {member.name} at the top of the archive; expected one model "
                        "folder holding config.pbtxt and version folders"
                    )
                tops.add(parts[0])
            if len(tops) != 1:
                raise ModelLoadError(
                    f"expected exactly one model folder at the top of the archive, "
                    f"found {sorted(tops) or 'none'}"
                )
            archive.extractall(destination, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ModelLoadError(f"failed to extract model archive: {err}") from None
    model_dir = destination / tops.pop()
    if not (model_dir / "config.pbtxt").is_file():
        raise ModelLoadError(f"{model_dir.name}/config.pbtxt not found in model archive")
    if not any(p.is_dir() and p.name.isdigit() for p in model_dir.iterdir()):
        raise ModelLoadError(f"no numeric version folder under {model_dir.name}/")
    return model_dir


def parse_model_config(model_dir: Path) -> model_config_pb2.ModelConfig:
    """Parse ``config.pbtxt`` with Triton's own schema; ``ModelLoadError`` when invalid."""
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse((model_dir / "config.pbtxt").read_text(), config)
    except (text_format.ParseError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"failed to parse {model_dir.name}/config.pbtxt: {err}") from None
    if config.name and config.name != model_dir.name:
        raise ModelLoadError(
            f"unexpected model name {config.name!r} in config.pbtxt, expected the folder's "
            f"name {model_dir.name!r}"
        )
    if not config.platform and not config.backend:
        raise ModelLoadError(f"{model_dir.name}/config.pbtxt names neither platform nor backend")
    return config


def describe_model(target_model: str, config: model_config_pb2.ModelConfig) -> dict[str, Any]:
    """What a loaded model would serve, answered when no real tritonserver runs."""
    as_dict = json_format.MessageToDict(config, preserving_proto_field_name=True)
    return {
        "loaded": True,
        "target_model": target_model,
        "name": config.name,
        "platform": config.platform,
        "backend": config.backend,
        "max_batch_size": config.max_batch_size,
        "inputs": as_dict.get("input", []),
        "outputs": as_dict.get("output", []),
        "instance_groups": as_dict.get("instance_group", []),
        "dynamic_batching": as_dict.get("dynamic_batching"),
    }


def _triton_name(endpoint: str, target_model: str) -> str:
    # Triton model names must be plain folder names; TargetModels are S3 key suffixes.
    digest = hashlib.sha256(f"{endpoint}\0{target_model}".encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", target_model)[:40]
    return f"{stem}-{digest}"


class MultiModelRuntime:
    """Loads and serves MME models per endpoint; see the module docstring.

    ``triton`` is a started ``TritonServer`` for real inference, or None to answer a
    description of the loaded model instead. ``memory_budget_bytes`` overrides the memory
    the instance type gives (to test eviction with small models).
    """

    def __init__(
        self,
        read_object: ReadObject,
        triton: Callable[[], TritonServer | None] | None = None,
        memory_budget_bytes: int | None = None,
    ) -> None:
        self._read_object = read_object
        self._triton = triton or (lambda: None)
        self.memory_budget_bytes = memory_budget_bytes
        self._lock = threading.Lock()
        self._memory: dict[str, _EndpointMemory] = {}

    def loaded_models(self, endpoint_arn: str) -> list[str]:
        """TargetModels loaded on an endpoint, least recently used first."""
        with self._lock:
            memory = self._memory.get(endpoint_arn)
            return list(memory.models) if memory else []

    def invoke(
        self,
        region: str,
        endpoint: Endpoint,
        models: dict[str, Model],
        target_model: str | None,
        body: bytes,
        content_type: str | None,
    ) -> tuple[bytes, str, str]:
        """Serve one InvokeEndpoint; returns (body, content type, invoked variant)."""
        if endpoint.status not in ("InService", "Updating"):
            raise _validation_error(f"Endpoint {endpoint.name} of account {ACCOUNT_ID} not found.")
        variant = endpoint.config.variants[0]
        model = models.get(str(variant.get("ModelName", "")).lower())
        if model is None:
            raise _model_error(region, endpoint.name, 500, "the endpoint's model was deleted")
        variant_name = str(variant["VariantName"])
        if not model.is_multi_model:
            if target_model is not None:
                raise _validation_error(
                    f"Endpoint {endpoint.name} is not a multi-model endpoint and does not "
                    "support target model header."
                )
            raise _model_error(region, endpoint.name, 400, "single-model endpoints not emulated")
        if not target_model:
            raise _validation_error(
                f"TargetModel header is required for a multi-model endpoint ({endpoint.name})."
            )
        instance = get_catalogue().get(str(variant.get("InstanceType", "")))
        budget = self.memory_budget_bytes or (instance.model_memory_bytes if instance else 0)
        with self._lock:
            loaded = self._load(region, endpoint, model, target_model, budget)
            server = self._triton()
            if server is None:
                payload = describe_model(target_model, loaded.config)
                return json.dumps(payload).encode(), "application/json", variant_name
            triton_name = loaded.triton_name
        assert triton_name is not None
        try:
            request = json.loads(body or b"{}")
        except ValueError as err:
            raise _model_error(region, endpoint.name, 400, f"invalid JSON request: {err}") from None
        try:
            response = server.infer(triton_name, request)
        except TritonError as err:
            raise _model_error(region, endpoint.name, err.status, err.message) from None
        return json.dumps(response).encode(), "application/json", variant_name

    def _load(
        self, region: str, endpoint: Endpoint, model: Model, target_model: str, budget: int
    ) -> LoadedModel:
        memory = self._memory.get(endpoint.arn)
        if memory is None or memory.generation != endpoint.generation:
            # A new fleet (create or update) starts with nothing loaded.
            if memory is not None:
                self._unload_all(memory)
            memory = _EndpointMemory(endpoint.generation, budget)
            self._memory[endpoint.arn] = memory
        if target_model in memory.models:
            memory.models.move_to_end(target_model)
            return memory.models[target_model]
        url = model_data_url(model.containers[0]) or ""
        bucket, prefix = split_s3_url(url)
        key = prefix + target_model
        data = self._read_object(bucket, key)
        if data is None:
            raise _validation_error(
                f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure "
                "that there is an object located at the URL and that the role passed to "
                "CreateModel has permissions to download the model."
            )
        loaded = self._unpack_and_load(region, endpoint, target_model, data, budget, memory)
        memory.models[target_model] = loaded
        return loaded

    def _unpack_and_load(
        self,
        region: str,
        endpoint: Endpoint,
        target_model: str,
        data: bytes,
        budget: int,
        memory: _EndpointMemory,
    ) -> LoadedModel:
        with tempfile.TemporaryDirectory(prefix="local-mme-") as tmp:
            try:
                model_dir = unpack_model_archive(data, Path(tmp))
                config = parse_model_config(model_dir)
            except ModelLoadError as err:
                raise _model_error(region, endpoint.name, err.status, err.message) from None
            size = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
            if size > budget:
                raise _model_error(
                    region,
                    endpoint.name,
                    507,
                    f"model {target_model} needs {size} bytes, more than the instance's "
                    f"{budget} bytes of model memory",
                )
            while memory.models and memory.used_bytes + size > budget:
                _, evicted = memory.models.popitem(last=False)
                self._unload(evicted)
            loaded = LoadedModel(target_model, config, size)
            server = self._triton()
            if server is not None:
                name = _triton_name(endpoint.name, target_model)
                renamed = Path(tmp) / name
                if renamed != model_dir:
                    model_dir.rename(renamed)
                # Triton wants the config's name (when set) to match the folder's.
                config_copy = model_config_pb2.ModelConfig()
                config_copy.CopyFrom(config)
                config_copy.name = name
                # The local tritonserver runs on CPU; a GPU model would fail to load here
                # although it loads on the GPU instance it is meant for.
                for group in config_copy.instance_group:
                    if group.kind in (group.KIND_GPU, group.KIND_AUTO):
                        group.kind = group.KIND_CPU
                        del group.gpus[:]
                (renamed / "config.pbtxt").write_text(text_format.MessageToString(config_copy))
                try:
                    server.load(renamed, name)
                except TritonError as err:
                    shutil.rmtree(server.model_repository / name, ignore_errors=True)
                    raise _model_error(region, endpoint.name, err.status, err.message) from None
                loaded.triton_name = name
            return loaded

    def _unload(self, loaded: LoadedModel) -> None:
        server = self._triton()
        if server is None or loaded.triton_name is None:
            return
        # Already gone means nothing left to free.
        with contextlib.suppress(TritonError, OSError):
            server.unload(loaded.triton_name)
        shutil.rmtree(server.model_repository / loaded.triton_name, ignore_errors=True)

    def _unload_all(self, memory: _EndpointMemory) -> None:
        for loaded in memory.models.values():
            self._unload(loaded)
        memory.models.clear()

    def forget(self, endpoint_arn: str) -> None:
        """Drop an endpoint's loaded models (it was deleted)."""
        with self._lock:
            memory = self._memory.pop(endpoint_arn, None)
            if memory is not None:
                self._unload_all(memory)
