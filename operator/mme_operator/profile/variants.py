"""Serving variants of one model, packaged as the operator packages them, loaded into a Triton.

A variant is the user's :class:`ModelSpec` with other ``instanceGroups`` / ``dynamicBatching``;
its ``config.pbtxt`` comes from the operator's renderer and its files from the operator's
packager, so what is measured is what the operator would deploy. Loading goes through
Triton's repository API with the config and files in the request (``POST
/v2/repository/models/<name>/load``), so it works on any server started with
``--model-control-mode=explicit``, local or remote, without sharing a folder with it.
"""

from __future__ import annotations

import base64
import json
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from google.protobuf import json_format, text_format

from mme_operator.api import ModelSpec
from mme_operator.api.spec import DynamicBatchingSpec, InstanceGroupSpec, InstanceKind
from mme_operator.artifacts import ArtifactError, open_source, package_model
from mme_operator.profile.grid import ProfileError, Variant
from mme_operator.settings import Settings
from mme_operator.triton import TritonConfigError, default_model_filename, render_model_config
from mme_operator.triton.schema import model_config_pb2


def on_cpu(model: ModelSpec) -> ModelSpec:
    """``model`` with every copy placed on CPU, for a server without a GPU."""
    groups = model.instance_groups or [InstanceGroupSpec()]
    return model.model_copy(
        update={
            "instance_groups": [
                g.model_copy(update={"kind": InstanceKind.KIND_CPU, "gpus": None}) for g in groups
            ]
        }
    )


def variant_spec(model: ModelSpec, variant: Variant, *, cpu: bool) -> ModelSpec:
    """``model`` served as ``variant``; ``cpu`` places the copies on CPU (a CPU-only server)."""
    kind = InstanceKind.KIND_CPU if cpu else _kind(model)
    batching = None
    if variant.queue_delay_us is not None:
        if model.max_batch_size == 0:
            raise ProfileError(
                f"model {model.name!r} has maxBatchSize 0, so dynamic batching cannot be "
                "measured; set maxBatchSize (e.g. 32) or profile without batching delays"
            )
        base = model.dynamic_batching or DynamicBatchingSpec()
        batching = base.model_copy(update={"max_queue_delay_microseconds": variant.queue_delay_us})
    return model.model_copy(
        update={
            "instance_groups": [InstanceGroupSpec(count=variant.instances, kind=kind)],
            "dynamic_batching": batching,
        }
    )


def _kind(model: ModelSpec) -> InstanceKind:
    groups = model.instance_groups or []
    return groups[0].kind if groups else InstanceKind.KIND_GPU


def file_roots_for(uri: str) -> list[str]:
    """A ``file://`` source may be read where it lies: the user runs the profile locally."""
    if not uri.startswith("file://"):
        return []
    path = Path(unquote(urlparse(uri).path))
    return [str(path if path.is_dir() else path.parent)]


def package_files(spec: ModelSpec, settings: Settings, workdir: Path) -> dict[str, bytes]:
    """The model's files (``config.pbtxt``, ``1/model.onnx``...) as the operator packages them."""
    try:
        config = render_model_config(spec)
    except TritonConfigError as exc:
        raise ProfileError(str(exc)) from None
    try:
        source = open_source(spec.source, settings=settings, file_roots=file_roots_for(spec.source))
        archive = package_model(
            spec.name, config, source, default_model_filename(spec), workdir / f"{spec.name}.tgz"
        )
    except ArtifactError as exc:
        raise ProfileError(f"model {spec.name!r}: {exc}") from None
    files: dict[str, bytes] = {}
    with tarfile.open(archive.path, "r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                files[member.name.split("/", 1)[1]] = handle.read()
    return files


def config_json(config_pbtxt: str, name: str) -> str:
    """The rendered text config as the JSON the load API takes, named ``name``."""
    config = model_config_pb2.ModelConfig()
    text_format.Parse(config_pbtxt, config)
    config.name = name
    return str(json_format.MessageToJson(config, preserving_proto_field_name=True))


def load_variant(url: str, name: str, files: dict[str, bytes], timeout: float = 300.0) -> None:
    """Load ``files`` into the Triton at ``url`` as model ``name`` (replacing one of that name)."""
    parameters: dict[str, str] = {"config": config_json(files["config.pbtxt"].decode(), name)}
    for path, content in files.items():
        if path != "config.pbtxt":
            parameters[f"file:{path}"] = base64.b64encode(content).decode()
    _post(url, f"/v2/repository/models/{name}/load", {"parameters": parameters}, timeout)


def unload_variant(url: str, name: str) -> None:
    """Unload model ``name``; its memory is free for the next variant."""
    _post(url, f"/v2/repository/models/{name}/unload", {}, 120.0)


def _post(url: str, path: str, body: object, timeout: float) -> None:
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as err:
        raw = err.read().decode(errors="replace")
        try:
            message = json.loads(raw).get("error", raw)
        except ValueError:
            message = raw
        raise ProfileError(f"Triton at {url} refused {path}: {message}") from None
    except OSError as err:
        raise ProfileError(f"cannot reach Triton at {url}: {err}") from None


__all__ = [
    "ProfileError",
    "Variant",
    "config_json",
    "load_variant",
    "on_cpu",
    "package_files",
    "unload_variant",
    "variant_spec",
]
