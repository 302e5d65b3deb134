"""A real ``tritonserver`` on CPU, from the ``nvidia-pytriton`` wheel, driven over HTTP.

The wheel (the project's optional extra ``triton``) ships the server binary, the Python
backend, per-Python-version backend stubs and the shared libraries they need. This module
finds them at run time, lays out a backend directory the server accepts, starts the server
with explicit model control on free ports, and speaks the KServe v2 HTTP API with plain
urllib.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mme_operator.extras import install_command


class TritonError(RuntimeError):
    """Triton refused a request; ``status`` is its HTTP status, ``message`` its error text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"tritonserver answered {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TritonInstallation:
    """Where the pieces of a ``nvidia-pytriton`` installation lie."""

    server: Path
    python_backend: Path
    stub: Path
    libs: Path


def find_triton() -> TritonInstallation | None:
    """The tritonserver shipped by ``nvidia-pytriton``, or None when it is not installed."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    root = package / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = TritonInstallation(
        server=root / "bin" / "tritonserver",
        python_backend=root / "backends" / "python",
        stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
        libs=package.parent / "nvidia_pytriton.libs",
    )
    if all(p.exists() for p in (found.server, found.python_backend, found.stub, found.libs)):
        return found
    return None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def python_environment_bin() -> Path:
    """The folder that goes first on the server's ``PATH``, so Python models see this environment.

    The Python backend's stub embeds the system's libpython in isolated mode: it ignores
    ``PYTHONPATH`` and ``PYTHONHOME`` and derives its prefix, as any embedded CPython does,
    from the first ``python3`` on ``PATH`` (a venv's ``pyvenv.cfg`` beside it included).
    Putting this interpreter's own folder first makes the stub load this environment's
    site-packages (numpy for the models) whatever ``PATH`` the caller had.
    """
    return Path(sys.executable).parent


def _stub_path_entries(scratch: Path) -> list[str]:
    # A venv always has bin/python3; an interpreter found under another name gets a
    # python3 link (no venv to detect there, so the link's resolved prefix is right).
    folder = python_environment_bin()
    if (folder / "python3").exists():
        return [str(folder)]
    links = scratch / "python-bin"
    links.mkdir(exist_ok=True)
    (links / "python3").symlink_to(sys.executable)
    return [str(links), str(folder)]


def python_backend_problem() -> str | None:
    """Why the Python backend's models could not import numpy here, in one line; None when they can.

    Runs this interpreter isolated (``-I``), as the stub runs: environment variables and
    the user's site-packages do not count.
    """
    probe = subprocess.run(
        [sys.executable, "-I", "-c", "import numpy"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode == 0:
        return None
    return (
        f"the local tritonserver's Python models need numpy, which {sys.executable} cannot "
        f"import: pip install numpy (or {install_command('triton')}) into {sys.prefix}"
    )


class TritonServer:
    """A ``tritonserver`` process with explicit model control, for tests and the demo.

    Use as a context manager, or ``start()`` / ``stop()``. ``model_repository`` defaults
    to a temporary folder removed on ``stop()``.
    """

    def __init__(
        self,
        model_repository: Path | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 30.0,
        installation: TritonInstallation | None = None,
    ) -> None:
        self.installation = installation or find_triton()
        self.host = host
        self.startup_timeout = startup_timeout
        self._own_dir: Path | None = None
        self._given_repository = model_repository
        self.model_repository: Path = model_repository or Path()
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @staticmethod
    def available() -> bool:
        """Whether a tritonserver can be started here (``nvidia-pytriton`` installed)."""
        return find_triton() is not None

    @property
    def url(self) -> str:
        """Base URL of the server's HTTP (KServe v2) API."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> TritonServer:
        """Start the server and wait until ``/v2/health/ready`` answers 200."""
        if self.installation is None:
            raise RuntimeError(f"tritonserver not found: {install_command('triton')}")
        inst = self.installation
        self._own_dir = Path(tempfile.mkdtemp(prefix="local-triton-"))
        if self._given_repository is None:
            self.model_repository = self._own_dir / "models"
            self.model_repository.mkdir()
        # The Python backend looks for its stub beside itself; the wheel keeps the stubs
        # apart (one per Python version), so a private backend folder joins them.
        backends = self._own_dir / "backends"
        shutil.copytree(inst.python_backend, backends / "python")
        shutil.copy2(inst.stub, backends / "python" / "triton_python_backend_stub")
        self.port = _free_port(self.host)
        env = dict(os.environ)
        # The copied stub loses its relative RPATH to the wheel's bundled libraries.
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(inst.libs), env.get("LD_LIBRARY_PATH", "")) if p
        )
        env["PATH"] = os.pathsep.join(
            [*_stub_path_entries(self._own_dir), *filter(None, [env.get("PATH")])]
        )
        self._log_path = self._own_dir / "tritonserver.log"
        command = [
            str(inst.server),
            f"--model-repository={self.model_repository}",
            "--model-control-mode=explicit",
            f"--backend-directory={backends}",
            f"--http-address={self.host}",
            f"--http-port={self.port}",
            "--allow-grpc=false",
            "--allow-metrics=false",
            "--strict-readiness=false",
            "--exit-on-error=false",
        ]
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"tritonserver exited early:\n{self.log_tail()}")
            try:
                if self._request("GET", "/v2/health/ready", timeout=1.0)[0] == 200:
                    return
            except (OSError, TritonError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"tritonserver not ready in {self.startup_timeout} s")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for error messages."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-chars:]

    def _request(
        self, method: str, path: str, body: Any = None, timeout: float = 30.0
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                message = json.loads(raw).get("error", raw.decode(errors="replace"))
            except ValueError:
                message = raw.decode(errors="replace")
            raise TritonError(err.code, message) from None

    def load(self, model_dir: Path, name: str | None = None) -> str:
        """Copy ``model_dir`` into the repository (unless it is there) and load it.

        Returns the model's name in Triton: ``name``, or the folder's name.
        """
        name = name or model_dir.name
        target = self.model_repository / name
        if model_dir.resolve() != target.resolve():
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(model_dir, target)
        self._request("POST", f"/v2/repository/models/{name}/load", body={}, timeout=120.0)
        return name

    def unload(self, name: str, *, dependents: bool = False) -> None:
        """Unload a model (it stays in the repository); with ``dependents``, an ensemble's
        steps too."""
        body = {"parameters": {"unload_dependents": True}} if dependents else {}
        self._request("POST", f"/v2/repository/models/{name}/unload", body=body)

    def is_ready(self, name: str) -> bool:
        """Whether model ``name`` is loaded and ready."""
        try:
            return self._request("GET", f"/v2/models/{name}/ready")[0] == 200
        except TritonError:
            return False

    def model_config(self, name: str) -> dict[str, Any]:
        """The configuration Triton parsed for a loaded model, as its JSON."""
        _, config = self._request("GET", f"/v2/models/{name}/config")
        return dict(config)

    def infer(self, model: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run a KServe v2 JSON inference request; returns Triton's JSON response."""
        _, response = self._request("POST", f"/v2/models/{model}/infer", body=request)
        return dict(response)

    def stop(self) -> None:
        """Stop the server and remove its temporary files."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
