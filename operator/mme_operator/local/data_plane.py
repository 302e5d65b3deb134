"""sagemaker-runtime's InvokeEndpoint for Multi-Model Endpoints served by Triton.

As on SageMaker's Triton MME: the first call naming a ``TargetModel`` downloads
``<ModelDataUrl><TargetModel>`` from S3, unpacks it (one top-level model folder holding
``config.pbtxt`` and numeric version folders, or an ensemble's folder with its steps), and
loads it under a name derived from the TargetModel (which replaces ``config.name``); a load
Triton refuses comes back as SageMaker's ModelError with Triton's message, status 400 (507
out of memory) as MME's container answers it. Later calls find the model loaded,
so overwriting the object changes nothing until the model is evicted. Each instance of the
endpoint keeps its own cache of loaded models, evicted least recently used first when its
memory is full, and every invocation puts MME's metrics to the local CloudWatch
(:mod:`mme_operator.local.model_cache`).
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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from google.protobuf import json_format, text_format

from mme_operator.api.spec import MODEL_LOAD_GPU_LIMIT_ENV
from mme_operator.local.control_plane import (
    ACCOUNT_ID,
    Endpoint,
    Model,
    model_data_url,
    split_s3_url,
)
from mme_operator.local.errors import AwsError
from mme_operator.local.model_cache import (
    Capacity,
    Fleet,
    InstanceCache,
    Invocation,
    MemoryNeed,
    Publish,
    describe_capacity,
    describe_need,
    invocation_metrics,
    memory_need,
    publish_all,
)
from mme_operator.local.triton import TritonError, TritonServer
from mme_operator.sizing import InstanceType, get_catalogue
from mme_operator.triton.schema import model_config_pb2

ReadObject = Callable[[str, str], bytes | None]
"""(bucket, key) -> the object's bytes, or None when there is no such object."""


class ModelLoadError(Exception):
    """An archive Triton could not load; ``status`` is what MME's container answers.

    Triton's MME front end answers every failed load with 400 (507 when the message names an
    out-of-memory condition, 409 when the name is taken) and ``{"error": message}``.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class LoadedModel:
    """A model in an endpoint's memory."""

    target_model: str
    config: model_config_pb2.ModelConfig
    need: MemoryNeed
    triton_name: str | None = None
    steps: dict[str, str] = field(default_factory=dict)
    """Ensemble step models loaded with it: name in Triton -> digest of its content."""


@dataclass(frozen=True)
class ArchiveModels:
    """The model folders of an unpacked archive: the one served, and an ensemble's steps."""

    served: Path
    steps: tuple[Path, ...] = ()


def _validation_error(message: str) -> AwsError:
    return AwsError("ValidationError", message, 400)


def _model_error(region: str, endpoint: str, status: int, message: str) -> AwsError:
    """SageMaker's ModelError for a container answer: ``message`` is the error text Triton's
    front end puts in its ``{"error": ...}`` body, which SageMaker passes on as is."""
    body = json.dumps({"error": message})
    kind = "client" if status < 500 else "server"
    text = f'Received {kind} error ({status}) from primary with message "{body}". See '
    log_group = f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
    return AwsError(
        "ModelError",
        f"{text}{log_group} in account {ACCOUNT_ID} for more information.",
        424,
        OriginalStatusCode=status,
        OriginalMessage=body,
        LogStreamArn=log_group,
    )


# Triton's MME front end (SageMakerMMECheckOOMError) answers 507 when an error names one of
# these, so that SageMaker unloads other models; any other error is a 400.
_OUT_OF_MEMORY = (
    "CUDA out of memory",
    "CUDA_OUT_OF_MEMORY",
    "Out of memory",
    "out of memory",
    "MemoryError",
    "OutOfMemory",
    "OOM",
    "Failed to allocate memory",
    "failed to allocate memory",
    "No space left on device",
)


def container_status(message: str) -> int:
    """The status MME's Triton container answers a failed load or invocation with."""
    return 507 if any(marker in message for marker in _OUT_OF_MEMORY) else 400


_ENSEMBLE = re.compile(r'platform:\s*"ensemble"')


def _poll_failed(name: str, detail: str) -> ModelLoadError:
    # Triton's repository manager says only this to the client (the detail is in the log).
    return ModelLoadError(
        f"failed to load '{name}', failed to poll from model repository: {detail}"
    )


def unpack_model_archive(data: bytes, destination: Path) -> ArchiveModels:
    """Unpack a Triton model archive into ``destination`` and find its models, as MME does.

    A ``config.pbtxt`` at the archive's root makes the root the model. Otherwise every
    top-level folder is a model: the one whose config says ``platform: "ensemble"`` is served
    and the others are its steps; without an ensemble there must be exactly one (MME would
    serve whichever folder it read last). Raises ``ModelLoadError`` when it is not a gzip
    tar, or not Triton's layout (``config.pbtxt`` and a numeric version folder per model).
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            members = archive.getmembers()
            tops: set[str] = set()
            root_files: set[str] = set()
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
                    root_files.add(parts[0])
                else:
                    tops.add(parts[0])
            archive.extractall(destination, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ModelLoadError(f"failed to extract model archive: {err}") from None
    if "config.pbtxt" in root_files:
        _check_versions(destination, "the archive's root")
        return ArchiveModels(destination)
    if root_files:
        raise ModelLoadError(
            f"file {sorted(root_files)[0]} at the top of the archive; expected model folders "
            "holding config.pbtxt and version folders"
        )
    folders = [destination / top for top in sorted(tops)]
    for folder in folders:
        if not (folder / "config.pbtxt").is_file():
            raise ModelLoadError(f"{folder.name}/config.pbtxt not found in model archive")
        _check_versions(folder, f"{folder.name}/")
    ensembles = [
        f for f in folders if _ENSEMBLE.search((f / "config.pbtxt").read_text("utf-8", "replace"))
    ]
    if len(ensembles) > 1:
        raise ModelLoadError(
            f"several ensembles in one archive ({', '.join(f.name for f in ensembles)}); "
            "MME serves one per archive"
        )
    if ensembles:
        served = ensembles[0]
        return ArchiveModels(served, tuple(f for f in folders if f != served))
    if len(folders) != 1:
        raise ModelLoadError(
            f"expected exactly one model folder at the top of the archive (or an ensemble with "
            f"its steps), found {[f.name for f in folders] or 'none'}"
        )
    return ArchiveModels(folders[0])


def _check_versions(model_dir: Path, where: str) -> None:
    if not any(p.is_dir() and p.name.isdigit() for p in model_dir.iterdir()):
        raise ModelLoadError(f"no numeric version folder under {where}")


def parse_model_config(model_dir: Path, name: str | None = None) -> model_config_pb2.ModelConfig:
    """Parse ``config.pbtxt`` with Triton's own schema; ``ModelLoadError`` when invalid.

    ``name``: the served model's name in Triton, which replaces ``config.name`` (MME maps the
    archive's model to its TargetModel). Without it (an ensemble's step) the folder's name is
    the model's, and a ``config.name`` naming another is refused, as Triton refuses it.
    """
    model_name = name or model_dir.name
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse((model_dir / "config.pbtxt").read_text(), config)
    except (text_format.ParseError, UnicodeDecodeError) as err:
        raise _poll_failed(model_name, f"{model_dir.name}/config.pbtxt: {err}") from None
    if name is None and config.name and config.name != model_dir.name:
        raise _poll_failed(
            model_name,
            f"unexpected model name {config.name!r} in config.pbtxt, expected the folder's "
            f"name {model_dir.name!r}",
        )
    if not config.platform and not config.backend:
        raise _poll_failed(
            model_name, f"{model_dir.name}/config.pbtxt names neither platform nor backend"
        )
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


LOCAL_BACKENDS = frozenset({"python"})
"""The backends the local tritonserver (the nvidia-pytriton wheel's) has."""


def runs_on_local_triton(
    config: model_config_pb2.ModelConfig, steps: Iterable[model_config_pb2.ModelConfig] = ()
) -> bool:
    """Whether the local tritonserver can load this model (and its ensemble's steps).

    Only Python-backend models and ensembles of them: the wheel ships no other backend. The
    others are answered with their description, as without a tritonserver, so a load
    failure of, say, an ONNX model is not seen locally.
    """
    return all(c.backend in LOCAL_BACKENDS or c.platform == "ensemble" for c in (config, *steps))


def _on_cpu(config: model_config_pb2.ModelConfig) -> model_config_pb2.ModelConfig:
    """A copy of ``config`` whose GPU instance groups run on CPU.

    The local tritonserver runs on CPU; a GPU model would fail to load here although it
    loads on the GPU instance it is meant for.
    """
    copy = model_config_pb2.ModelConfig()
    copy.CopyFrom(config)
    for group in copy.instance_group:
        if group.kind in (group.KIND_GPU, group.KIND_AUTO):
            group.kind = group.KIND_CPU
            del group.gpus[:]
    return copy


def _write_model(source: Path, target: Path, config: model_config_pb2.ModelConfig) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    (target / "config.pbtxt").write_text(text_format.MessageToString(config))


def _tree_digest(folder: Path, config_text: str) -> str:
    """Content of a model folder, with ``config_text`` standing for its config.pbtxt."""
    digest = hashlib.sha256(config_text.encode())
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.relative_to(folder) != Path("config.pbtxt"):
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _triton_name(endpoint: str, target_model: str) -> str:
    # Triton model names must be plain folder names; TargetModels are S3 key suffixes.
    digest = hashlib.sha256(f"{endpoint}\0{target_model}".encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", target_model)[:40]
    return f"{stem}-{digest}"


def _weights_bytes(folder: Path) -> int:
    """Bytes of a model folder besides its config.pbtxt (its weights, code and data)."""
    config = folder / "config.pbtxt"
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p != config)


def _gpu_load_limit(model: Model) -> float | None:
    """The container's SAGEMAKER_TRITON_MODEL_LOAD_GPU_LIMIT (the image's serve script passes
    it to Triton as --model-load-gpu-limit); None when unset or not a fraction."""
    raw = model.containers[0].get("Environment", {}).get(MODEL_LOAD_GPU_LIMIT_ENV)
    try:
        limit = float(raw) if raw is not None else None
    except ValueError:
        return None
    return limit if limit is not None and 0 < limit <= 1 else None


def _cache_disabled(model: Model) -> bool:
    setting = model.containers[0].get("MultiModelConfig", {}).get("ModelCacheSetting")
    return bool(setting == "Disabled")


class MultiModelRuntime:
    """Loads and serves MME models per endpoint instance; see the module docstring.

    ``triton`` is a started ``TritonServer`` for real inference, or None to answer a
    description of the loaded model instead. ``memory_budget_bytes`` overrides the memory
    (GPU and host) of every instance, to test eviction without GiB-sized models.
    ``publish`` puts the MME metrics of each invocation to CloudWatch (None: none are put).
    """

    def __init__(
        self,
        read_object: ReadObject,
        triton: Callable[[], TritonServer | None] | None = None,
        memory_budget_bytes: int | None = None,
        publish: Publish | None = None,
    ) -> None:
        self._read_object = read_object
        self._triton = triton or (lambda: None)
        self.memory_budget_bytes = memory_budget_bytes
        self._publish = publish
        self._lock = threading.Lock()
        self._fleets: dict[str, Fleet[LoadedModel]] = {}

    def loaded_models(self, endpoint_arn: str) -> list[str]:
        """TargetModels loaded on an endpoint, instance by instance, least recently used first."""
        return [t for models in self.loaded_by_instance(endpoint_arn) for t in models]

    def loaded_by_instance(self, endpoint_arn: str) -> list[list[str]]:
        """Per instance of the endpoint, its loaded TargetModels, least recently used first."""
        with self._lock:
            fleet = self._fleets.get(endpoint_arn)
            return [list(i.models) for i in fleet.instances] if fleet else []

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
        if endpoint.status not in ("InService", "Updating", "RollingBack"):
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
        started = time.time()
        with self._lock:
            loaded, cache, invocation = self._load(
                region, endpoint, model, target_model, variant, instance
            )
            server = self._triton()
            triton_name = loaded.triton_name
            if server is None or triton_name is None:
                payload = describe_model(target_model, loaded.config)
                self._served(region, endpoint, variant_name, model, cache, invocation, started)
                return json.dumps(payload).encode(), "application/json", variant_name
        try:
            request = json.loads(body or b"{}")
        except ValueError as err:
            with self._lock:
                self._served(region, endpoint, variant_name, model, cache, invocation, started)
            raise _model_error(region, endpoint.name, 400, f"invalid JSON request: {err}") from None
        try:
            response = server.infer(triton_name, request)
        except TritonError as err:
            # MME's front end answers every failed invocation 400 (507 out of memory),
            # whatever status Triton's own HTTP server would give.
            status = container_status(err.message)
            raise _model_error(region, endpoint.name, status, err.message) from None
        finally:
            with self._lock:
                self._served(region, endpoint, variant_name, model, cache, invocation, started)
        return json.dumps(response).encode(), "application/json", variant_name

    def _served(
        self,
        region: str,
        endpoint: Endpoint,
        variant_name: str,
        model: Model,
        cache: InstanceCache[LoadedModel],
        invocation: Invocation,
        started: float,
    ) -> None:
        """After an invocation: its work on the instance, the unload a disabled cache makes,
        and its metrics."""
        cache.worked(started, time.time())
        target = invocation.target_model
        if _cache_disabled(model) and target in cache.models:
            # ModelCacheSetting Disabled: unloaded after every invocation (MME-FACTS #17).
            loaded, _ = cache.models.pop(target)
            began = time.monotonic()
            self._unload(loaded)
            invocation.unload_seconds.append(time.monotonic() - began)
        gpu_type = cache.capacity.gpu_bytes > 0
        metrics = invocation_metrics(endpoint.name, variant_name, invocation, cache, gpu_type)
        publish_all(self._publish, region, metrics)

    def _load(
        self,
        region: str,
        endpoint: Endpoint,
        model: Model,
        target_model: str,
        variant: dict[str, Any],
        instance: InstanceType | None,
    ) -> tuple[LoadedModel, InstanceCache[LoadedModel], Invocation]:
        fleet = self._fleets.get(endpoint.arn)
        if fleet is None or fleet.generation != endpoint.generation:
            # A new fleet (create or update) starts with nothing loaded.
            if fleet is not None:
                self._unload_fleet(fleet)
            capacity = Capacity.of(instance, self.memory_budget_bytes, _gpu_load_limit(model))
            fleet = Fleet(endpoint.generation, capacity)
            self._fleets[endpoint.arn] = fleet
        for dropped in fleet.resize(endpoint.instance_count(variant)):
            self._unload(dropped)
        holder = fleet.holding(target_model)
        if holder is not None:
            holder.models.move_to_end(target_model)
            return holder.models[target_model][0], holder, Invocation(target_model, hit=True)
        began = time.monotonic()
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
        downloaded = time.monotonic()
        invocation = Invocation(target_model, hit=False, download_seconds=downloaded - began)
        loaded, cache = self._unpack_and_load(
            region, endpoint, target_model, data, fleet, instance, invocation
        )
        done = time.monotonic()
        invocation.wait_seconds = done - began
        invocation.load_seconds = done - downloaded - sum(invocation.unload_seconds)
        return loaded, cache, invocation

    def _unpack_and_load(
        self,
        region: str,
        endpoint: Endpoint,
        target_model: str,
        data: bytes,
        fleet: Fleet[LoadedModel],
        instance: InstanceType | None,
        invocation: Invocation,
    ) -> tuple[LoadedModel, InstanceCache[LoadedModel]]:
        name = _triton_name(endpoint.name, target_model)
        with tempfile.TemporaryDirectory(prefix="local-mme-") as tmp:
            unpacked = Path(tmp) / "archive"
            unpacked.mkdir()
            try:
                models = unpack_model_archive(data, unpacked)
                config = parse_model_config(models.served, name)
                steps = {step.name: parse_model_config(step) for step in models.steps}
            except ModelLoadError as err:
                raise _model_error(region, endpoint.name, err.status, err.message) from None
            folders = [(config, _weights_bytes(models.served))]
            folders += [(steps[step.name], _weights_bytes(step)) for step in models.steps]
            need = memory_need(folders, gpu_type=fleet.capacity.gpu_bytes > 0)
            if not fleet.capacity.holds(need):
                kind = instance.name if instance else "the instance type"
                raise _model_error(
                    region,
                    endpoint.name,
                    507,
                    f"model {target_model} needs {describe_need(need)}, more than an instance "
                    f"of {kind} has for models ({describe_capacity(fleet.capacity)})",
                )
            cache = fleet.place(need)
            while cache.models and not cache.fits(need):
                evicted_target, evicted = cache.least_recently_used()
                del cache.models[evicted_target]
                began = time.monotonic()
                self._unload(evicted)
                invocation.unload_seconds.append(time.monotonic() - began)
            loaded = LoadedModel(target_model, config, need)
            server = self._triton()
            if server is not None and runs_on_local_triton(config, steps.values()):
                try:
                    loaded.steps = self._load_into(
                        server, (m for _, m in fleet.loaded()), models, config, steps, name
                    )
                except ModelLoadError as err:
                    raise _model_error(region, endpoint.name, err.status, err.message) from None
                loaded.triton_name = name
            cache.models[target_model] = (loaded, need)
            return loaded, cache

    def _load_into(
        self,
        server: TritonServer,
        loaded_now: Iterable[LoadedModel],
        models: ArchiveModels,
        config: model_config_pb2.ModelConfig,
        steps: dict[str, model_config_pb2.ModelConfig],
        name: str,
    ) -> dict[str, str]:
        """Load the served model as ``name``, an ensemble's steps under their own names.

        Triton has one namespace: a step already loaded for another TargetModel is shared
        when it is the same model, and refused (409, as MME answers a name taken) when not.
        Returns the steps' digests.
        """
        repository = server.model_repository
        in_use = {step: d for m in loaded_now for step, d in m.steps.items()}
        placed: list[Path] = []
        digests: dict[str, str] = {}
        for step_dir in models.steps:
            target = repository / step_dir.name
            step_config = _on_cpu(steps[step_dir.name])
            digest = _tree_digest(step_dir, text_format.MessageToString(step_config))
            digests[step_dir.name] = digest
            if step_dir.name in in_use:
                if in_use[step_dir.name] != digest:
                    raise ModelLoadError(
                        f"failed to load '{name}': ensemble step '{step_dir.name}' is already "
                        "loaded from another archive with other content; give changed steps "
                        "new names",
                        409,
                    )
                continue
            _write_model(step_dir, target, step_config)
            placed.append(target)
        served = _on_cpu(config)
        served.name = name
        _write_model(models.served, repository / name, served)
        placed.append(repository / name)
        try:
            server.load(repository / name, name)
        except TritonError as err:
            for path in placed:
                shutil.rmtree(path, ignore_errors=True)
            raise ModelLoadError(err.message, container_status(err.message)) from None
        return digests

    def _unload(self, loaded: LoadedModel) -> None:
        server = self._triton()
        if server is None or loaded.triton_name is None:
            return
        # Already gone means nothing left to free.
        with contextlib.suppress(TritonError, OSError):
            server.unload(loaded.triton_name, dependents=bool(loaded.steps))
        shutil.rmtree(server.model_repository / loaded.triton_name, ignore_errors=True)
        still_used = {
            step
            for fleet in self._fleets.values()
            for _, m in fleet.loaded()
            if m is not loaded
            for step in m.steps
        }
        for step in set(loaded.steps) - still_used:
            shutil.rmtree(server.model_repository / step, ignore_errors=True)

    def _unload_fleet(self, fleet: Fleet[LoadedModel]) -> None:
        for instance in fleet.instances:
            models = [loaded for loaded, _ in instance.models.values()]
            instance.models.clear()
            for loaded in models:
                self._unload(loaded)

    def forget(self, endpoint_arn: str) -> None:
        """Drop an endpoint's loaded models (it was deleted)."""
        with self._lock:
            fleet = self._fleets.pop(endpoint_arn, None)
            if fleet is not None:
                self._unload_fleet(fleet)
