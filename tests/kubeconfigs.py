"""Kubeconfig files and exec credential plugins as users have them, for the login tests.

:func:`write_plugin` writes a real executable (a Python script) that behaves like
``aws eks get-token``: it prints an ``ExecCredential`` with the next token of a list (the
last one repeats), optionally valid for a few seconds, and records every run with the
``KUBERNETES_EXEC_INFO`` it was given.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PLUGIN = """\
#!{python}
import datetime, json, os, sys

runs = os.environ["PLUGIN_RUNS"]
with open(runs, "a") as out:
    out.write(os.environ.get("KUBERNETES_EXEC_INFO", "") + "\\n")
with open(runs) as done:
    count = len(done.read().splitlines())
fail_file = os.path.join(os.path.dirname(runs), "fail")
if os.path.exists(fail_file):
    print("checking the SSO session ...", file=sys.stderr)
    print(open(fail_file).read(), file=sys.stderr)
    sys.exit(255)
with open(os.environ["PLUGIN_TOKENS"]) as listed:
    tokens = listed.read().split()
status = {{"token": tokens[min(count, len(tokens)) - 1]}}
ttl_file = os.path.join(os.path.dirname(runs), "ttl")
ttl = open(ttl_file).read() if os.path.exists(ttl_file) else None
if ttl:
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=float(ttl))
    status["expirationTimestamp"] = until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": status}}))
"""


@dataclass
class Plugin:
    """A written plugin: where its tokens and its record of runs are."""

    command: Path
    tokens: Path
    runs: Path

    def set_tokens(self, *tokens: str) -> None:
        self.tokens.write_text("\n".join(tokens) + "\n")

    def set_ttl(self, seconds: float) -> None:
        """Credentials from now on expire ``seconds`` after the plugin ran."""
        (self.runs.parent / "ttl").write_text(str(seconds))

    def run_infos(self) -> list[dict[str, Any]]:
        """The ``KUBERNETES_EXEC_INFO`` of each run so far (its number: the list's length)."""
        if not self.runs.exists():
            return []
        return [json.loads(line) for line in self.runs.read_text().splitlines()]

    def set_failure(self, message: str | None) -> None:
        """From now on fail with exit 255 and ``message`` last on stderr (None: work again)."""
        failing = self.runs.parent / "fail"
        if message is None:
            failing.unlink(missing_ok=True)
        else:
            failing.write_text(message)

    def exec_stanza(self) -> dict[str, Any]:
        env = [
            {"name": "PLUGIN_RUNS", "value": str(self.runs)},
            {"name": "PLUGIN_TOKENS", "value": str(self.tokens)},
        ]
        return {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": f"./{self.command.name}",
            "args": ["token", "--cluster-name", "envtest"],
            "env": env,
            "interactiveMode": "Never",
            "provideClusterInfo": True,
        }


def write_plugin(directory: Path, *tokens: str) -> Plugin:
    """An exec plugin in ``directory`` handing out ``tokens`` in turn."""
    directory.mkdir(parents=True, exist_ok=True)
    command = directory / "get-token"
    command.write_text(PLUGIN.format(python=sys.executable))
    command.chmod(0o755)
    plugin = Plugin(command, directory / "tokens", directory / "runs")
    plugin.set_tokens(*tokens)
    return plugin


def write_kubeconfig(
    path: Path,
    cluster: Mapping[str, Any],
    user: Mapping[str, Any],
    namespace: str = "default",
    name: str = "test",
) -> Path:
    """A one-context kubeconfig at ``path`` (its directory made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": dict(cluster)}],
        "users": [{"name": name, "user": dict(user)}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def without_cluster_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with nothing that says "in a pod" (the tests may run in one)."""
    cleaned = dict(os.environ if env is None else env)
    for key in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        cleaned.pop(key, None)
    return cleaned
