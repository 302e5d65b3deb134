"""The tenancy policy's checks: what a namespace's ModelEndpoints may use (pure functions)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from mme_operator.api import validate_resource
from mme_operator.api.resource import ModelEndpoint
from mme_operator.sagemaker.images import default_image
from mme_operator.tenancy import (
    ArchiveClaims,
    ArchiveLocation,
    PolicyError,
    TenancyPolicy,
    adoption_allowed,
    archive_location,
    load_policy,
    policy_problems,
)

ROLE = "arn:aws:iam::123456789012:role/sagemaker-mme"
SAFE = TenancyPolicy.model_validate({"defaults": {"executionRoleArns": [ROLE]}})

BODY: dict[str, Any] = {
    "apiVersion": "mme-operator.io/v1alpha1",
    "kind": "ModelEndpoint",
    "metadata": {
        "name": "prod",
        "namespace": "team-a",
        "uid": "uid-a",
        "creationTimestamp": "2026-12-02T04:00:00Z",
    },
    "spec": {
        "region": "us-east-1",
        "executionRoleArn": ROLE,
        "artifacts": {"bucket": "models"},
        "instanceType": "ml.g5.xlarge",
        "models": [
            {"name": "m", "source": "s3://src/team-a/m.onnx", "platform": "onnxruntime_onnx"}
        ],
    },
}


def resource(**spec: Any) -> ModelEndpoint:
    body = copy.deepcopy(BODY)
    for key, value in spec.items():
        body["spec"][key] = value
    parsed, problems = validate_resource(body)
    assert parsed is not None, problems
    return parsed


def other(prefix: str, *, older: bool = True, bucket: str = "models") -> ArchiveLocation:
    created = "2026-12-01T00:00:00Z" if older else "2026-12-03T00:00:00Z"
    return ArchiveLocation("uid-b", created, bucket, prefix)


def test_the_defaults_allow_an_endpoint_of_its_own():
    assert policy_problems(resource(), SAFE) == []
    assert (
        policy_problems(resource(artifacts={"bucket": "models", "prefix": "team-a/prod/v1/"}), SAFE)
        == []
    )


def test_an_archive_prefix_outside_namespace_and_name_is_refused():
    problems = policy_problems(resource(artifacts={"bucket": "models", "prefix": "team-b/"}), SAFE)
    assert problems == [
        "spec.artifacts.prefix: 'team-b/' is outside what namespace team-a may use ('team-a/prod/')"
    ]
    # A prefix that only starts like its own is not its own.
    assert policy_problems(
        resource(artifacts={"bucket": "models", "prefix": "team-a/production/"}), SAFE
    )


def test_nesting_with_an_older_location_is_refused_and_the_older_is_not():
    mine = resource(artifacts={"bucket": "models", "prefix": "team-a/prod/"})
    for prefix in ("team-a/prod/", "team-a/", "team-a/prod/sub/"):
        problems = policy_problems(mine, SAFE, [other(prefix)])
        assert len(problems) == 1 and "nests with another ModelEndpoint" in problems[0]
        assert "uid-b" not in problems[0]
        assert policy_problems(mine, SAFE, [other(prefix, older=False)]) == []
    assert policy_problems(mine, SAFE, [other("team-a/prod/", bucket="elsewhere")]) == []
    assert policy_problems(mine, SAFE, [other("team-a/production/")]) == []


SAME_SECOND = BODY["metadata"]["creationTimestamp"]


def test_a_location_already_admitted_keeps_its_place_over_an_older_newcomer():
    # Same second, and the other's uid sorts first: age alone would let it displace mine.
    mine = resource(artifacts={"bucket": "models", "prefix": "team-a/prod/"})
    rival = ArchiveLocation("uid-0", SAME_SECOND, "models", "team-a/")
    held = ArchiveLocation("uid-a", SAME_SECOND, "models", "team-a/prod/", admitted=True)
    assert policy_problems(mine, SAFE, [rival, held]) == []
    # And the rival, checked against mine, is the one refused.
    rival_body = copy.deepcopy(BODY)
    rival_body["metadata"].update(uid="uid-0", name="x")
    rival_body["spec"]["artifacts"] = {"bucket": "models", "prefix": "team-a/"}
    policy = TenancyPolicy.model_validate(
        {"defaults": {"executionRoleArns": [ROLE], "archivePrefixes": ["{namespace}/"]}}
    )
    rival_resource, _ = validate_resource(rival_body)
    assert rival_resource is not None
    problems = policy_problems(rival_resource, policy, [rival, held])
    assert len(problems) == 1 and "nests with another" in problems[0]


def test_of_two_same_second_newcomers_the_first_admitted_wins_whatever_the_uids():
    claims = ArchiveClaims()
    late_uid = copy.deepcopy(BODY)
    late_uid["metadata"]["uid"] = "uid-z"
    first, _ = validate_resource(late_uid)
    assert first is not None
    first_loc = ArchiveLocation("uid-z", SAME_SECOND, "models", "team-a/prod/")
    second_loc = ArchiveLocation("uid-a", SAME_SECOND, "models", "team-a/prod/")
    both = [first_loc, second_loc]
    # uid-z is checked (and admitted) before uid-a is seen, though uid-a wins a tie by uid.
    assert policy_problems(first, SAFE, [first_loc], claims) == []
    second = resource()
    problems = policy_problems(second, SAFE, both, claims)
    assert len(problems) == 1 and "nests with another" in problems[0]
    # Every later pass of the first still passes, and the second is still refused.
    for _ in range(3):
        assert policy_problems(first, SAFE, both, claims) == []
        assert policy_problems(second, SAFE, both, claims)
    # A refused one is not admitted, whatever else it does: only allowed passes claim.
    assert not claims.has_admitted(second_loc)
    # Seen together before either is admitted, the tie goes by uid, the same on every pass.
    fresh = ArchiveClaims()
    assert policy_problems(first, SAFE, both, fresh)
    assert policy_problems(second, SAFE, both, fresh) == []
    assert policy_problems(first, SAFE, both, fresh)


def test_a_refused_pass_admits_nothing_and_a_deleted_claim_is_forgotten():
    claims = ArchiveClaims()
    denied = resource(executionRoleArn="arn:aws:iam::123456789012:role/other")
    loc = ArchiveLocation("uid-a", SAME_SECOND, "models", "team-a/prod/")
    assert policy_problems(denied, SAFE, [loc], claims)
    assert not claims.has_admitted(loc)
    assert policy_problems(resource(), SAFE, [loc], claims) == []
    assert claims.has_admitted(loc)
    gone = ArchiveLocation("uid-gone", SAME_SECOND, "models", "team-x/")
    claims.admit(gone, present=[])
    assert not claims.has_admitted(loc) and claims.has_admitted(gone)


def test_an_s3_source_inside_another_archive_location_is_refused():
    mine = resource(
        models=[{"name": "m", "source": "s3://models/team-b/x/m-1.tar.gz", "backend": "python"}]
    )
    problems = policy_problems(mine, SAFE, [other("team-b/x/", older=False)])
    assert problems == [
        "spec.models['m'].source: s3://models/team-b/x/m-1.tar.gz is inside another "
        "ModelEndpoint's archive location"
    ]
    assert policy_problems(mine, SAFE, [other("team-b/y/")]) == []


def test_only_the_sagemaker_triton_image_and_listed_ones():
    assert policy_problems(resource(image=default_image("us-east-1", "24.09")), SAFE) == []
    problems = policy_problems(resource(image="evil.example.com/miner:1"), SAFE)
    assert problems == [
        "spec.image: evil.example.com/miner:1 is neither the SageMaker Triton image nor one "
        "the platform allows"
    ]
    listed = TenancyPolicy.model_validate(
        {"defaults": {"executionRoleArns": [ROLE], "images": ["registry.internal/triton:*"]}}
    )
    assert policy_problems(resource(image="registry.internal/triton:24"), listed) == []


def test_only_the_execution_roles_the_platform_names():
    assert "spec.executionRoleArn" in policy_problems(resource(), TenancyPolicy())[0]
    problems = policy_problems(resource(executionRoleArn=ROLE + "-admin"), SAFE)
    assert problems and problems[0].startswith("spec.executionRoleArn:")


def test_a_rule_for_the_namespace_wins_over_the_defaults():
    policy = TenancyPolicy.model_validate(
        {
            "defaults": {"executionRoleArns": [ROLE]},
            "rules": [
                {
                    "namespaces": ["team-*"],
                    "executionRoleArns": [ROLE],
                    "archivePrefixes": ["{namespace}/"],
                    "s3Sources": ["s3://src/{namespace}/"],
                    "httpsHosts": ["*.example.com"],
                    "fileRoots": ["/models/{namespace}"],
                    "archiveBuckets": ["models"],
                },
                {"namespaces": ["team-a"], "executionRoleArns": []},
            ],
        }
    )
    assert (
        policy_problems(resource(artifacts={"bucket": "models", "prefix": "team-a/x/"}), policy)
        == []
    )
    refused = resource(
        artifacts={"bucket": "other", "prefix": "team-a/"},
        models=[
            {"name": "a", "source": "s3://src/team-b/m.onnx", "platform": "onnxruntime_onnx"},
            {"name": "b", "source": "https://evil.test/m.onnx", "platform": "onnxruntime_onnx"},
            {"name": "c", "source": "file:///models/team-b/m.onnx", "platform": "onnxruntime_onnx"},
            {
                "name": "d",
                "source": "https://hub.example.com/m.onnx",
                "platform": "onnxruntime_onnx",
            },
            {
                "name": "e",
                "source": "file:///models/team-a/e/m.onnx",
                "platform": "onnxruntime_onnx",
            },
        ],
    )
    problems = policy_problems(refused, policy)
    assert [p.split(":")[0] for p in problems] == [
        "spec.artifacts.bucket",
        "spec.models['a'].source",
        "spec.models['b'].source",
        "spec.models['c'].source",
    ]


def test_open_mode_allows_everything():
    policy = load_policy(None, True)
    assert policy.open
    assert (
        policy_problems(
            resource(
                image="x/y:1",
                executionRoleArn=ROLE + "x",
                artifacts={"bucket": "bbb", "prefix": "p/"},
            ),
            policy,
            [other("p/", bucket="bbb")],
        )
        == []
    )


def test_adoption_per_namespace():
    policy = TenancyPolicy.model_validate(
        {"rules": [{"namespaces": ["team-a"], "allowAdoption": True}]}
    )
    assert adoption_allowed(resource(), policy, False)
    assert not adoption_allowed(resource(), TenancyPolicy(), False)
    assert adoption_allowed(resource(), TenancyPolicy(), True)


def test_archive_location_of_a_raw_body():
    assert archive_location(BODY) == ArchiveLocation(
        "uid-a", "2026-12-02T04:00:00Z", "models", "team-a/prod/"
    )
    # Its status recording the same location says it holds it (a different one does not).
    held = {**BODY, "status": {"artifactsLocation": "s3://models/team-a/prod/"}}
    assert archive_location(held) == ArchiveLocation(
        "uid-a", "2026-12-02T04:00:00Z", "models", "team-a/prod/", admitted=True
    )
    moved = {**BODY, "status": {"artifactsLocation": "s3://models/team-a/old/"}}
    assert archive_location(moved).admitted is False  # type: ignore[union-attr]
    assert archive_location({"metadata": {}, "spec": "x"}) is None


def test_a_bad_policy_file_is_one_line(tmp_path: Path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("mode: closed\n")
    with pytest.raises(PolicyError, match=r"^tenancy policy .*: mode: Input should be"):
        load_policy(str(bad))
    bad = tmp_path / "policy2.yaml"
    bad.write_text("defaults: {archivePrefix: [x]}\n")
    with pytest.raises(PolicyError, match=r"defaults\.archivePrefix: Extra inputs"):
        load_policy(str(bad))
    with pytest.raises(PolicyError, match="No such file"):
        load_policy(str(tmp_path / "missing.yaml"))
    good = tmp_path / "good.yaml"
    good.write_text("defaults:\n  executionRoleArns: [" + ROLE + "]\n")
    assert load_policy(str(good)).defaults.execution_role_arns == [ROLE]


def test_validate_with_a_policy_refuses_in_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    import yaml
    from mme_operator.cli import main

    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  executionRoleArns: [" + ROLE + "]\n")
    first = copy.deepcopy(BODY)
    second = copy.deepcopy(BODY)
    second["metadata"]["name"] = "grab"
    second["spec"]["artifacts"]["prefix"] = "team-a/"
    manifests = tmp_path / "endpoints.yaml"
    manifests.write_text(yaml.safe_dump_all([first, second]))
    assert main(["validate", "-f", str(manifests)]) == 0
    capsys.readouterr()
    assert main(["validate", "-f", str(manifests), "--policy", str(policy)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"{manifests}: team-a/grab: refused by the tenancy policy: spec.artifacts.prefix: "
        "'team-a/' is outside what namespace team-a may use ('team-a/grab/')",
        f"{manifests}: team-a/grab: refused by the tenancy policy: spec.artifacts: "
        "s3://models/team-a/ nests with another ModelEndpoint's archive location; give this "
        "one a prefix of its own",
    ]
    policy.write_text("mode: closed\n")
    assert main(["validate", "-f", str(manifests), "--policy", str(policy)]) == 2
    assert capsys.readouterr().err.startswith(f"error: tenancy policy {policy}: mode:")


def test_file_roots_follow_real_paths_and_hosts_ignore_case(tmp_path: Path):
    own, other = tmp_path / "team-a", tmp_path / "team-b"
    own.mkdir()
    other.mkdir()
    (other / "m.onnx").write_bytes(b"x")
    (own / "link").symlink_to(other)
    policy = TenancyPolicy.model_validate(
        {
            "defaults": {
                "executionRoleArns": [ROLE],
                "fileRoots": [str(tmp_path / "{namespace}")],
                "httpsHosts": ["Models.Example.com"],
            }
        }
    )

    def source(uri: str) -> list[str]:
        model = {"name": "m", "source": uri, "platform": "onnxruntime_onnx"}
        return policy_problems(resource(models=[model]), policy)

    assert source(f"file://{own}/m.onnx") == []
    for sneaky in (f"file://{own}/../team-b/m.onnx", f"file://{own}/link/m.onnx"):
        (problem,) = source(sneaky)
        assert "is not under a directory this namespace's sources may read" in problem
    assert source("https://MODELS.example.com/m.onnx") == []
    assert source("https://evil.example.com/m.onnx")
