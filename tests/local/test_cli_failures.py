"""The console script when the world is wrong: one clear line and a non-zero exit, no traceback.

Each case runs the installed `mme-operator` as a separate process, as a user's shell does:
`plan` without a bucket, without credentials and without a reachable endpoint; bad `MME_*`
settings; `local-aws` on an impossible port and on a port in use.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS

from tests.unit.api.documents import GOOD, MINIMAL, changed

REPO = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "mme-operator"

pytestmark = pytest.mark.skipif(
    not CONSOLE_SCRIPT.exists(), reason=f"{CONSOLE_SCRIPT} not installed"
)


def environment(**extra: str) -> dict[str, str]:
    """A bare environment (no AWS or MME settings inherited), plus EXTRA."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(REPO / "operator"),
        # Nothing from this machine's AWS configuration, and no instance metadata lookups.
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        # A single-team setup: these specs' roles and prefixes are not what the default
        # tenancy policy allows, and the policy is not what these tests are about.
        "MME_TENANCY_OPEN": "true",
        **extra,
    }


def mme_operator(
    *args: str, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *parts: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAWS]:
    with LocalAWS(triton=False) as aws:
        yield aws


def local_credentials(aws: LocalAWS) -> dict[str, str]:
    return {
        "MME_AWS_ENDPOINT_URL": aws.endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
    }


def manifest(tmp_path: Path, doc: dict[str, object]) -> str:
    path = tmp_path / "endpoint.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_plan_on_a_missing_bucket(tmp_path: Path, local_aws: LocalAWS) -> None:
    doc = changed(MINIMAL, "spec.artifacts.bucket", "no-such-bucket-here")
    result = mme_operator(
        "plan", "-f", manifest(tmp_path, doc), env=environment(**local_credentials(local_aws))
    )
    assert_one_line(
        result, 1, "default/tiny", "the artifacts bucket 'no-such-bucket-here' does not exist"
    )


def test_plan_without_credentials(tmp_path: Path, local_aws: LocalAWS) -> None:
    env = environment(MME_AWS_ENDPOINT_URL=local_aws.endpoint_url)
    result = mme_operator("plan", "-f", manifest(tmp_path, GOOD), env=env)
    assert_one_line(result, 1, "ml/small-llms: no AWS credentials found")


def test_plan_with_an_unreachable_endpoint(tmp_path: Path, local_aws: LocalAWS) -> None:
    env = environment(
        **{
            **local_credentials(local_aws),
            "MME_AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        }
    )
    result = mme_operator("plan", "-f", manifest(tmp_path, GOOD), env=env)
    assert_one_line(result, 1, "ml/small-llms: cannot reach AWS: Could not connect")


@pytest.mark.parametrize(
    ("variable", "value", "part"),
    [
        ("MME_LOG_FORMAT", "yaml", "error: MME_LOG_FORMAT='yaml': String should match pattern"),
        (
            "MME_POLL_INTERVAL_SECONDS",
            "30s",
            "error: MME_POLL_INTERVAL_SECONDS='30s': Input should be a valid number",
        ),
    ],
)
@pytest.mark.parametrize("command", ["plan", "run"])
def test_a_bad_setting_is_one_line(
    tmp_path: Path, command: str, variable: str, value: str, part: str
) -> None:
    args = ["plan", "-f", manifest(tmp_path, GOOD)] if command == "plan" else ["run"]
    result = mme_operator(*args, env=environment(**{variable: value}))
    assert_one_line(result, 2, part)


def test_local_aws_refuses_a_port_that_cannot_exist() -> None:
    result = mme_operator("local-aws", "--port", "99999", "--triton", "off", env=environment())
    assert_one_line(result, 2, "error: --port 99999: a port is 0-65535")
    assert result.stdout == ""


def test_local_aws_on_a_port_in_use_announces_nothing() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = mme_operator(
            "local-aws", "--port", str(port), "--triton", "off", env=environment()
        )
    assert_one_line(result, 1, f"error: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert result.stdout == ""


def test_local_aws_announces_the_port_it_listens_on() -> None:
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "local-aws", "--port", "0", "--triton", "off"],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:")
        url = first.split("=", 1)[1]
        assert not url.endswith(":0")
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    assert answer.status < 500
                break
            except urllib.error.HTTPError as answer:  # S3's ListBuckets without a signature
                assert answer.code < 500
                break
            except OSError:
                assert time.monotonic() < deadline, f"nothing listens on {url}"
                time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_plan_with_no_servable_model_says_why_and_exits_2(
    tmp_path: Path, local_aws: LocalAWS
) -> None:
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket="plan-artifacts")
    s3.create_bucket(Bucket="plan-sources")
    doc = changed(MINIMAL, "spec.region", "us-east-1")
    doc = changed(doc, "spec.artifacts.bucket", "plan-artifacts")
    doc = changed(doc, "spec.models.0.source", "s3://plan-sources/nothing-here/model.pt")
    file = manifest(tmp_path, doc)

    result = mme_operator("plan", "-f", file, env=environment(**local_credentials(local_aws)))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{file}: default/tiny: blocked (NoServableModels): no model can be")
    assert "nothing to bill for" in line
    assert "blocked (NoServableModels)" in result.stdout
    assert "create endpoint" not in result.stdout
    assert "note: model 'resnet' skipped" in result.stdout

    # Worst over all files: a missing bucket (1) beside it still exits 2.
    other = tmp_path / "other"
    other.mkdir()
    gone = changed(changed(MINIMAL, "metadata.name", "gone"), "spec.region", "us-east-1")
    no_bucket = manifest(other, changed(gone, "spec.artifacts.bucket", "no-such-bucket-here"))
    alone = mme_operator("plan", "-f", no_bucket, env=environment(**local_credentials(local_aws)))
    both = mme_operator(
        "plan", "-f", no_bucket, "-f", file, env=environment(**local_credentials(local_aws))
    )
    assert alone.returncode == 1, alone.stderr
    assert both.returncode == 2, both.stderr
    assert f"error: {no_bucket}: default/gone: the artifacts bucket" in both.stderr
