"""A first upload of local weights reads them once, and leaves nothing in the work dir.

The operator's pass runs in a process of its own (a fresh interpreter, as a pod would),
against the local AWS served from the test's process; the kernel's ``rchar`` of that
process (every byte its ``read`` calls returned, from files and sockets alike) is taken
around the pass. A first pass over another endpoint comes before, so lazy imports and
botocore's data files are not counted. The weights repeat one random block, so their
archive is small: what the upload reads back of it stays well under the weights' size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from mme_operator.artifacts.sources.file_hashes import CACHE_FILE_NAME
from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS

BUCKET = "reads-artifacts"
WEIGHTS_MIB = 16

PASS = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import boto3
    from mme_operator.local import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
    from mme_operator.reconcile import reconcile
    from mme_operator.sagemaker.clients import make_clients
    from mme_operator.settings import Settings

    def rchar():
        io = Path("/proc/self/io").read_text().split()
        return int(io[io.index("rchar:") + 1])

    endpoint_url, roots, work = sys.argv[1:4]
    settings = Settings(aws_endpoint_url=endpoint_url, file_roots=roots, work_dir=work)
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY
    )
    clients = make_clients("us-east-1", settings, session)
    read = []
    for body in json.loads(sys.stdin.read()):
        before = rchar()
        outcome = reconcile(body, clients, settings)
        read.append(rchar() - before)
    print(json.dumps(read))
    """
)


def endpoint(name: str, uid: str, source: Path) -> dict[str, Any]:
    return {
        "apiVersion": "mme-operator.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": "ml", "uid": uid, "generation": 1},
        "spec": {
            "region": "us-east-1",
            "executionRoleArn": "arn:aws:iam::123456789012:role/sagemaker-mme",
            "artifacts": {"bucket": BUCKET, "prefix": f"{name}/"},
            "instanceType": "ml.g5.xlarge",
            "models": [
                {"name": "model", "source": source.as_uri(), "platform": "onnxruntime_onnx"}
            ],
        },
    }


def passes_in_a_new_process(
    aws: LocalAWS, root: Path, work: Path, bodies: list[dict[str, Any]]
) -> list[int]:
    """Bytes read by each pass of ``bodies``, run one after the other in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", PASS, aws.endpoint_url, str(root), str(work)],
        input=json.dumps(bodies),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    read: list[int] = json.loads(result.stdout.strip().splitlines()[-1])
    return read


def s3_client(aws: LocalAWS) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=aws.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
    )


@pytest.fixture
def aws() -> Iterator[LocalAWS]:
    with LocalAWS(endpoint_delay=0.5, triton=False) as local:
        s3_client(local).create_bucket(Bucket=BUCKET)
        yield local


def weights(path: Path, mib: int) -> Path:
    """``mib`` MiB of one random 4 KiB block repeated: hashed in full, compressed small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(4096) * (mib * 256))
    return path


def archives(aws: LocalAWS, prefix: str) -> dict[str, int]:
    """Key -> size of the archives under ``prefix`` of the artifacts bucket."""
    listing = s3_client(aws).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: o["Size"] for o in listing.get("Contents", [])}


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_a_first_upload_of_local_weights_reads_them_once(aws: LocalAWS, tmp_path: Path) -> None:
    root, work = tmp_path / "models", tmp_path / "work"
    warm = weights(root / "warm" / "model.onnx", 1)
    big = weights(root / "big" / "model.onnx", WEIGHTS_MIB)
    size = big.stat().st_size

    _, first = passes_in_a_new_process(
        aws,
        root,
        work,
        [endpoint("warm", "uid-warm", warm), endpoint("big", "uid-big", big)],
    )

    (archive,) = archives(aws, "big/").values()
    # Besides the weights, the upload reads the small archive back (botocore reads a
    # body more than once: checksum, then send); answers on sockets are not in rchar.
    assert size <= first < size + 4 * archive + 64 * 1024, (
        f"the first pass read {first} bytes for {size} bytes of weights "
        f"and an archive of {archive} bytes"
    )
    # Nothing of the pass stays behind: only the remembered digests.
    assert sorted(p.name for p in work.iterdir()) == [CACHE_FILE_NAME]


def test_a_new_pod_finding_the_archive_in_s3_leaves_nothing_behind(
    aws: LocalAWS, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    big = weights(root / "big" / "model.onnx", 2)
    body = endpoint("again", "uid-again", big)
    passes_in_a_new_process(aws, root, tmp_path / "work", [body])
    uploaded = archives(aws, "again/")
    aws.reset_calls()

    # A new pod: its work dir remembers nothing, so naming reads (and packages) the
    # weights; the archive is in S3 already, so nothing is uploaded and nothing kept.
    passes_in_a_new_process(aws, root, tmp_path / "new-pod", [body])

    assert aws.calls["PutObject"] == 0
    assert archives(aws, "again/") == uploaded
    assert sorted(p.name for p in (tmp_path / "new-pod").iterdir()) == [CACHE_FILE_NAME]


def test_a_failed_upload_leaves_nothing_in_the_work_dir(aws: LocalAWS, tmp_path: Path) -> None:
    root, work = tmp_path / "models", tmp_path / "work"
    big = weights(root / "big" / "model.onnx", 2)
    aws.faults.error("AccessDenied", "Access Denied", 403, operations="PutObject", service="s3")

    passes_in_a_new_process(aws, root, work, [endpoint("denied", "uid-denied", big)])

    assert archives(aws, "denied/") == {}
    assert sorted(p.name for p in work.iterdir()) == [CACHE_FILE_NAME]
