"""The tenancy policy: what each namespace's ModelEndpoints may use, and the checks of it.

A policy is a YAML document (the chart renders it from its ``tenancy`` values)::

    mode: restricted            # or open: no check at all (a single-team install)
    defaults:                   # for every namespace no rule matches
      archiveBuckets: ["*"]
      archivePrefixes: ["{namespace}/{name}/"]
      executionRoleArns: [arn:aws:iam::123456789012:role/sagemaker-mme]
    rules:                      # the first whose namespaces match wins
      - namespaces: [team-a, "ml-*"]
        archivePrefixes: ["{namespace}/"]
        s3Sources: ["s3://models/{namespace}/"]
        httpsHosts: [huggingface.co, "*.example.com"]
        fileRoots: [/models/shared]
        images: []
        allowAdoption: true

Fields a rule leaves out take the built-in safe defaults (not those of ``defaults``): a
rule says everything its namespaces may do. Whatever the policy says, two ModelEndpoints'
archive locations never nest and an ``s3://`` source never reads inside another
ModelEndpoint's archive location (restricted mode).
"""

from __future__ import annotations

import contextlib
import fnmatch
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mme_operator.api.resource import ModelEndpoint
from mme_operator.artifacts.errors import InvalidSourceError
from mme_operator.artifacts.sources.file import file_path
from mme_operator.safe_yaml import load_documents
from mme_operator.sagemaker.images import (
    default_image,
    supported_regions,
    supported_triton_versions,
)

OWN_PREFIX = "{namespace}/{name}/"


class PolicyError(ValueError):
    """The policy file cannot be used: one line."""


class Rule(BaseModel):
    """What the ModelEndpoints of some namespaces may use. Lists of patterns: ``*`` any."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    namespaces: list[str] = Field(
        default_factory=list, description="Namespace names or globs (rules only)."
    )
    archive_buckets: list[str] = Field(
        default_factory=lambda: ["*"],
        alias="archiveBuckets",
        description="Buckets (globs) spec.artifacts.bucket may name.",
    )
    archive_prefixes: list[str] = Field(
        default_factory=lambda: [OWN_PREFIX],
        alias="archivePrefixes",
        description="Prefixes the archive prefix must start with; {namespace} and {name} are "
        "the ModelEndpoint's.",
    )
    s3_sources: list[str] = Field(
        default_factory=lambda: ["*"],
        alias="s3Sources",
        description="s3:// locations (s3://bucket/prefix, {namespace} and {name} filled in) "
        "sources must start with; ['*'] any.",
    )
    https_hosts: list[str] = Field(
        default_factory=lambda: ["*"],
        alias="httpsHosts",
        description="Host names (globs) https:// sources may name.",
    )
    file_roots: list[str] = Field(
        default_factory=lambda: ["*"],
        alias="fileRoots",
        description="Directories file:// sources must be under (besides MME_FILE_ROOTS).",
    )
    execution_role_arns: list[str] = Field(
        default_factory=list,
        alias="executionRoleArns",
        description="Execution roles (globs) spec.executionRoleArn may name; none: refused.",
    )
    images: list[str] = Field(
        default_factory=list,
        description="Images (globs) spec.image may name besides the SageMaker Triton image.",
    )
    allow_adoption: bool | None = Field(
        default=None,
        alias="allowAdoption",
        description="Whether an unmanaged endpoint may be adopted; null: "
        "MME_ALLOW_ENDPOINT_ADOPTION.",
    )


class TenancyPolicy(BaseModel):
    """The whole policy: a mode, the rules (first match wins) and the defaults."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    mode: Literal["restricted", "open"] = "restricted"
    defaults: Rule = Field(default_factory=Rule)
    rules: list[Rule] = Field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.mode == "open"

    def rule_for(self, namespace: str) -> Rule:
        for rule in self.rules:
            if _matches(namespace, rule.namespaces):
                return rule
        return self.defaults


@dataclass(frozen=True)
class ArchiveLocation:
    """Where one ModelEndpoint keeps its archives, and whether it holds that place yet."""

    uid: str
    created: str
    """``metadata.creationTimestamp`` (RFC 3339, so strings order as times; whole seconds)."""
    bucket: str
    prefix: str
    admitted: bool = False
    """Its status records this location: a pass went past the policy with it (it holds it)."""

    def nests_with(self, bucket: str, prefix: str) -> bool:
        return self.bucket == bucket and (
            prefix.startswith(self.prefix) or self.prefix.startswith(prefix)
        )

    def holds(self, bucket: str, key: str) -> bool:
        return self.bucket == bucket and key.startswith(self.prefix)

    def older_than(self, other: ArchiveLocation) -> bool:
        return (self.created, self.uid) < (other.created, other.uid)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass
class ArchiveClaims:
    """The archive locations this operator process admitted, in the order it did.

    Which of two nesting locations keeps its place must not depend on timing:
    ``creationTimestamp`` has whole seconds, so two ModelEndpoints applied in the same
    second tie, and a tie broken by uid can let a newcomer displace one already serving.
    So a location that was admitted (recorded in its status, or admitted by this process
    since) always precedes one that was not; only between two not yet admitted does age
    decide. Admission happens under one lock, so of two racing newcomers exactly one is
    admitted and the other is refused, and the admitted one is never refused later.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    _admitted: dict[str, tuple[str, str]] = field(default_factory=dict)

    def has_admitted(self, location: ArchiveLocation) -> bool:
        return self._admitted.get(location.uid) == (location.bucket, location.prefix)

    def admit(self, location: ArchiveLocation, present: Iterable[str]) -> None:
        """Record ``location``; forget the ModelEndpoints no longer ``present`` (deleted)."""
        keep = set(present) | {location.uid}
        for uid in [uid for uid in self._admitted if uid not in keep]:
            del self._admitted[uid]
        self._admitted[location.uid] = (location.bucket, location.prefix)


def _precedes(other: ArchiveLocation, me: ArchiveLocation, claims: ArchiveClaims | None) -> bool:
    """Whether ``other`` keeps its place over ``me`` where the two nest."""

    def admitted(location: ArchiveLocation) -> bool:
        return location.admitted or (claims is not None and claims.has_admitted(location))

    if admitted(other) != admitted(me):
        return admitted(other)
    return other.older_than(me)


def archive_location(body: object) -> ArchiveLocation | None:
    """The archive location a ModelEndpoint body declares (raw JSON), or None if unusable."""
    if not isinstance(body, Mapping):
        return None
    metadata, spec = body.get("metadata"), body.get("spec")
    if not isinstance(metadata, Mapping) or not isinstance(spec, Mapping):
        return None
    artifacts = spec.get("artifacts")
    if not isinstance(artifacts, Mapping) or not isinstance(artifacts.get("bucket"), str):
        return None
    prefix = artifacts.get("prefix") or f"{metadata.get('namespace')}/{metadata.get('name')}/"
    if not isinstance(prefix, str):
        return None
    status = body.get("status")
    recorded = status.get("artifactsLocation") if isinstance(status, Mapping) else None
    return ArchiveLocation(
        uid=str(metadata.get("uid") or ""),
        created=str(metadata.get("creationTimestamp") or ""),
        bucket=artifacts["bucket"],
        prefix=prefix,
        admitted=recorded == f"s3://{artifacts['bucket']}/{prefix}",
    )


def _matches(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _filled(pattern: str, resource: ModelEndpoint | tuple[str, str]) -> str:
    namespace, name = (
        resource
        if isinstance(resource, tuple)
        else (resource.metadata.namespace, resource.metadata.name)
    )
    return pattern.replace("{namespace}", namespace).replace("{name}", name)


def _sagemaker_triton_images(region: str) -> set[str]:
    return {
        default_image(region, version)
        for version in supported_triton_versions()
        if region in supported_regions(version)
    }


def _source_problem(
    resource: ModelEndpoint | tuple[str, str], rule: Rule, model: str, uri: str, where: str = ""
) -> str | None:
    where = where or f"spec.models[{model!r}].source"
    scheme = uri.partition("://")[0].lower()
    if scheme == "s3":
        if "*" in rule.s3_sources or any(
            uri.startswith(_filled(p, resource)) for p in rule.s3_sources
        ):
            return None
        return f"{where}: {uri} is not in an S3 location this namespace's sources may read"
    if scheme == "https":
        host = (urlsplit(uri).hostname or "").lower()
        if _matches(host, [pattern.lower() for pattern in rule.https_hosts]):
            return None
        return f"{where}: host {host} is not one this namespace's https sources may name"
    if scheme == "file":
        if "*" in rule.file_roots:
            return None
        try:
            # The reading's own rule (real paths, links resolved), on this namespace's roots.
            file_path(uri, [_filled(root, resource) for root in rule.file_roots])
        except InvalidSourceError:
            path = unquote(urlsplit(uri).path)
            return f"{where}: {path} is not under a directory this namespace's sources may read"
        return None
    return None


def policy_problems(
    resource: ModelEndpoint,
    policy: TenancyPolicy,
    others: Sequence[ArchiveLocation] = (),
    claims: ArchiveClaims | None = None,
) -> list[str]:
    """Why the policy refuses ``resource`` (one line each); empty when it is allowed.

    ``others`` are the archive locations of the ModelEndpoints the operator knows (this
    one's may be among them): one that precedes this one (see :class:`ArchiveClaims`) and
    nests with its location, and any of them holding an ``s3://`` source, refuse this one.
    With ``claims`` (the operator's), an allowed location is admitted there, atomically
    with the check. Messages never name the other ModelEndpoint.
    """
    if policy.open:
        return []
    spec = resource.spec
    namespace = resource.metadata.namespace
    rule = policy.rule_for(namespace)
    problems: list[str] = []
    bucket, prefix = spec.artifacts.bucket, resource.artifact_prefix
    if not _matches(bucket, rule.archive_buckets):
        problems.append(
            f"spec.artifacts.bucket: namespace {namespace} may not keep archives in {bucket}"
        )
    allowed = [_filled(p, resource) for p in rule.archive_prefixes]
    if not any(prefix.startswith(p) for p in allowed):
        problems.append(
            f"spec.artifacts.prefix: {prefix!r} is outside what namespace {namespace} may use "
            f"({', '.join(repr(p) for p in allowed) or 'nothing'})"
        )
    uid = resource.metadata.uid
    me = ArchiveLocation(
        uid,
        resource.metadata.creation_timestamp,
        bucket,
        prefix,
        admitted=any(
            o.uid == uid and o.admitted and o.url == f"s3://{bucket}/{prefix}" for o in others
        ),
    )
    if not _matches(spec.execution_role_arn, rule.execution_role_arns):
        problems.append(
            f"spec.executionRoleArn: {spec.execution_role_arn} is not an execution role the "
            "platform allows (the chart's tenancy.executionRoleArns)"
        )
    if (
        spec.image is not None
        and spec.image not in _sagemaker_triton_images(spec.region)
        and not _matches(spec.image, rule.images)
    ):
        problems.append(
            f"spec.image: {spec.image} is neither the SageMaker Triton image nor one the "
            "platform allows"
        )
    for model in spec.models:
        problem = _source_problem(resource, rule, model.name, model.source)
        if problem is not None:
            problems.append(problem)
            continue
        if model.source.lower().startswith("s3://"):
            src_bucket, _, key = model.source[5:].partition("/")
            if any(o.uid != me.uid and o.holds(src_bucket, key) for o in others):
                problems.append(
                    f"spec.models[{model.name!r}].source: {model.source} is inside another "
                    "ModelEndpoint's archive location"
                )
    with claims.lock if claims is not None else contextlib.nullcontext():
        if any(
            o.uid != me.uid and o.nests_with(bucket, prefix) and _precedes(o, me, claims)
            for o in others
        ):
            problems.append(
                f"spec.artifacts: s3://{bucket}/{prefix} nests with another ModelEndpoint's "
                "archive location; give this one a prefix of its own"
            )
        elif claims is not None and not problems:
            claims.admit(me, (o.uid for o in others))
    return problems


def model_source_problem(
    policy: TenancyPolicy,
    namespace: str,
    name: str,
    uri: str,
    others: Sequence[ArchiveLocation] = (),
) -> str | None:
    """Why the policy refuses a Model's source, or None: the rule of the Model's OWN
    namespace, never its endpoint's, so a tenant reaches no other team's sources (nor any
    ModelEndpoint's archive location) through a Model attached to a shared endpoint."""
    if policy.open:
        return None
    problem = _source_problem(
        (namespace, name), policy.rule_for(namespace), name, uri, "spec.source"
    )
    if problem is None and uri.lower().startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        if any(o.holds(bucket, key) for o in others):
            problem = f"spec.source: {uri} is inside a ModelEndpoint's archive location"
    return problem


def adoption_allowed(resource: ModelEndpoint, policy: TenancyPolicy, setting: bool) -> bool:
    """Whether ``resource``'s namespace may adopt an unmanaged endpoint."""
    if policy.open:
        return setting
    chosen = policy.rule_for(resource.metadata.namespace).allow_adoption
    return setting if chosen is None else chosen


@lru_cache(maxsize=8)
def load_policy(path: str | None, open_mode: bool = False) -> TenancyPolicy:
    """:func:`read_policy`, read once per process (the operator's: the pod rolls on change)."""
    return read_policy(path, open_mode)


def read_policy(path: str | None, open_mode: bool = False) -> TenancyPolicy:
    """The policy in the file at ``path`` (None: the built-in safe defaults).

    ``open_mode`` (MME_TENANCY_OPEN) makes any policy open. :class:`PolicyError` in one
    line when the file cannot be read or is not a policy.
    """
    if path is None:
        policy = TenancyPolicy()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
            documents = load_documents(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise PolicyError(f"tenancy policy {path}: {' '.join(str(exc).split())}") from None
        if len(documents) != 1 or not isinstance(documents[0], dict | None):
            raise PolicyError(f"tenancy policy {path}: must be one YAML mapping")
        try:
            policy = TenancyPolicy.model_validate(documents[0] or {})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top)"
            raise PolicyError(f"tenancy policy {path}: {where}: {first['msg']}") from None
    if open_mode and not policy.open:
        policy = policy.model_copy(update={"mode": "open"})
    return policy
