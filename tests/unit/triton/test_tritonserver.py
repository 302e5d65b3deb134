"""Rendered configs and the demo models loaded into a real tritonserver (CPU).

The server is the one shipped in the ``nvidia-pytriton`` wheel (extra ``triton``); without
it these tests are skipped. They show what the schema check alone cannot: that Triton's
C++ parser reads our escaping the same way, and that the demo models load and answer.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mme_operator.api import ModelSpec, parse_resource
from mme_operator.demo_models import demo_manifest
from mme_operator.triton import default_model_filename, render_model_config

from tests.unit.triton.cases import TRICKY_STRING

pytestmark = [pytest.mark.triton, pytest.mark.slow]

STARTUP_TIMEOUT_S = 20.0


def pytriton_tritonserver() -> Path | None:
    """The tritonserver directory inside the installed pytriton package, if any."""
    # find_spec does not import pytriton (and its dependencies); only its files are needed.
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    home = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    return home if (home / "bin" / "tritonserver").is_file() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_model(repository: Path, model: ModelSpec) -> None:
    """The layout the artifacts packager produces for a single-file source."""
    version_dir = repository / model.name / "1"
    version_dir.mkdir(parents=True)
    (repository / model.name / "config.pbtxt").write_text(
        render_model_config(model), encoding="utf-8"
    )
    shutil.copy(model.source.removeprefix("file://"), version_dir / default_model_filename(model))


@pytest.fixture(scope="module")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    home = pytriton_tritonserver()
    if home is None:
        pytest.skip("tritonserver not installed (pip install 'mme-operator[triton]')")
    import tritonclient.grpc as grpcclient

    root = tmp_path_factory.mktemp("triton")
    # A backend directory of our own: the stub must match this interpreter's version, and
    # the installed package is not ours to modify. Symlinks, not copies: the binaries find
    # their libraries relative to where they really lie ($ORIGIN).
    python_backend = root / "backends" / "python"
    python_backend.mkdir(parents=True)
    stubs = home / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}"
    for target in (
        home / "backends" / "python" / "libtriton_python.so",
        home / "backends" / "python" / "triton_python_backend_utils.py",
        stubs / "triton_python_backend_stub",
    ):
        (python_backend / target.name).symlink_to(target)

    repository = root / "models"
    demo = parse_resource(demo_manifest())
    for model in demo.spec.models:
        write_model(repository, model)
    [echo] = [m for m in demo.spec.models if m.name == "echo_upper"]
    write_model(
        repository,
        echo.model_copy(update={"name": "echo_tricky", "parameters": {"tricky": TRICKY_STRING}}),
    )

    port = free_port()
    env = dict(os.environ)
    # The Python stub finds numpy through the interpreter first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log_path = root / "tritonserver.log"
    log = log_path.open("wb")
    # A file, not a pipe: nobody reads a pipe while the server runs, and a full one blocks it.
    server = subprocess.Popen(
        [
            str(home / "bin" / "tritonserver"),
            f"--model-repository={repository}",
            f"--backend-directory={root / 'backends'}",
            f"--grpc-port={port}",
            "--allow-http=false",
            "--allow-metrics=false",
            "--exit-timeout-secs=5",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"tritonserver exited ({server.returncode}):\n{log_tail(log_path)}")
            try:
                if client.is_server_ready():
                    break
            except Exception:
                pass  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail(f"tritonserver did not become ready:\n{log_tail(log_path)}")
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def log_tail(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-4000:]


def test_add_sub_adds_and_subtracts(triton: object) -> None:
    import tritonclient.grpc as grpcclient

    assert isinstance(triton, grpcclient.InferenceServerClient)
    a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    b = np.array([0.5, 0.5, 0.5, 8.0], dtype=np.float32)
    inputs = [grpcclient.InferInput(n, [4], "FP32") for n in ("INPUT0", "INPUT1")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    result = triton.infer("add_sub", inputs)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)


def test_echo_upper_upper_cases_a_batch_of_strings(triton: object) -> None:
    import tritonclient.grpc as grpcclient

    assert isinstance(triton, grpcclient.InferenceServerClient)
    text = np.array([["héllo".encode(), b"world"], [b"a", "ß".encode()]], dtype=np.object_)
    request = grpcclient.InferInput("TEXT", [2, 2], "BYTES")
    request.set_data_from_numpy(text)
    result = triton.infer("echo_upper", [request]).as_numpy("UPPER")
    assert [[v.decode() for v in row] for row in result] == [["HÉLLO", "WORLD"], ["A", "SS"]]


def test_triton_reads_the_batching_and_instances_we_rendered(triton: object) -> None:
    import tritonclient.grpc as grpcclient

    assert isinstance(triton, grpcclient.InferenceServerClient)
    config = triton.get_model_config("echo_upper").config
    assert config.max_batch_size == 8
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert [(g.count, g.kind) for g in config.instance_group] == [(2, 2)]  # 2 == KIND_CPU


def test_triton_reads_escaped_parameter_strings_exactly(triton: object) -> None:
    import tritonclient.grpc as grpcclient

    assert isinstance(triton, grpcclient.InferenceServerClient)
    config = triton.get_model_config("echo_tricky").config
    assert config.parameters["tricky"].string_value == TRICKY_STRING
