"""Operator configuration: one settings object, read from ``MME_*`` environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

import pydantic_settings
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Parallel HEAD requests of one artifact listing (the AWS connection pools are sized to it).
S3_HEAD_CONCURRENCY = 16


class Settings(BaseSettings):
    """Every knob of the operator. Each field is the env var ``MME_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="MME_", extra="ignore")

    aws_endpoint_url: str | None = Field(
        default=None,
        description="Send every AWS call here (the local SageMaker); unset for real AWS.",
    )
    aws_max_attempts: int = Field(
        default=10,
        ge=1,
        description="Retries per AWS call (botocore: exponential backoff with full jitter); a "
        "SageMaker call still throttled after them is tried again as often, with jitter.",
    )
    aws_retry_mode: Literal["adaptive", "standard"] = Field(
        default="standard",
        description="botocore retry mode: standard (backoff with jitter) or adaptive (also "
        "slows the client's sending rate while AWS throttles; measured slower here).",
    )
    aws_read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Seconds to wait for an AWS answer before retrying."
    )
    drift_check_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often a Ready endpoint is re-observed for drift."
    )
    metrics_interval_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How often the MME cache metrics of a Ready endpoint are read from "
        "CloudWatch (one GetMetricData per endpoint, counted apart from the drift checks) "
        "for status.cache and the CacheHealthy condition; 0 turns the reading off.",
    )
    metrics_window_seconds: float = Field(
        default=900.0,
        ge=60,
        description="How far back each metrics read looks (CloudWatch's MME metrics have "
        "1-minute resolution); a new endpoint config starts a new window.",
    )
    poll_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Delay before looking again at an endpoint that is Creating/Updating.",
    )
    retry_delay_seconds: float = Field(
        default=15.0, gt=0, description="Delay after a retryable AWS error."
    )
    load_check: bool = Field(
        default=True,
        description="Invoke every new TargetModel once, so that Ready means every model "
        "loaded (and a model Triton cannot load is LoadFailed); false skips it for very large "
        "fleets (one InvokeEndpoint per new TargetModel), leaving only warmup: true models "
        "invoked.",
    )
    load_check_concurrency: int = Field(
        default=8,
        ge=1,
        description="Load checks of one pass run side by side, this many at a time (a cold "
        "load takes seconds to minutes; one after the other they would add up).",
    )
    upload_workers: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Archives one pass packages and uploads side by side (a shared endpoint's "
        "first pass has one per attached Model); each holds one archive's scratch file on "
        "disk while it runs.",
    )
    max_source_bytes: int = Field(
        default=8 * 1024**3,
        gt=0,
        description="Largest model source accepted (bytes). Packaging one holds the source "
        "and its archive in the work dir at once, beside archives of file:// weights waiting "
        "for their upload (at most half of this), so keep it under 40% of the work dir's "
        "size (the chart's default work volume is 20 GiB).",
    )
    max_expansion_ratio: float = Field(
        default=100.0,
        gt=1,
        description="How many times its compressed size a .tar.gz source may expand to "
        "(model weights barely compress; decompression bombs expand ~1000x).",
    )
    https_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Read deadline of https:// sources: the most seconds without an answer "
        "(TLS handshake, headers, each part of the body).",
    )
    https_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Connect deadline of https:// sources (seconds)."
    )
    https_deadline_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="The most seconds one https:// source download may take in all.",
    )
    https_allowed_networks: str = Field(
        default="",
        description="CIDRs and host names, comma-separated, that https:// sources may reach "
        "though they are loopback, link-local (169.254.169.254, fd00:ec2::254), private, "
        "multicast, reserved or unspecified; everything else of that kind is refused after "
        "DNS resolution and at every redirect. Empty: public addresses only.",
    )
    namespace_fair_share: bool = Field(
        default=True,
        description="Share the reconcile workers fairly between namespaces: a namespace may "
        "hold at most max_concurrent_reconciles / (active namespaces + 1) of them (at least "
        "1), so one namespace's hanging sources cannot hold up another's endpoints.",
    )
    archive_grace_period_seconds: int = Field(
        default=3600,
        ge=0,
        le=7 * 86400,
        description="Default of spec.artifacts.gracePeriodSeconds: how long a superseded "
        "model archive stays in S3 for clients still sending its TargetModel; 0 deletes it at once.",
    )
    upload_concurrency: int = Field(default=8, ge=1, description="Parallel multipart upload parts.")
    max_concurrent_reconciles: int = Field(
        default=8,
        ge=1,
        le=256,
        description="ModelEndpoints reconciled at once (kopf's handler threads). Independent "
        "of the node's CPUs: the work is waiting on AWS. Each AWS client's connection pool is "
        "sized to it (see aws_max_pool_connections).",
    )
    drift_check_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Drift checks run at once, in workers of their own (one DescribeEndpoint "
        "and one S3 listing each, mostly waiting on AWS): they neither wait behind the "
        "reconcile passes nor take their workers. 1,000 endpoints at a 10 s interval are "
        "100 checks a second.",
    )
    malloc_arena_max: int = Field(
        default=2,
        ge=0,
        le=64,
        description="glibc malloc arenas the operator process may use (M_ARENA_MAX), set at "
        "start of `run`: glibc's default of 8 per CPU lets each handler and upload thread hold "
        "its own half-empty heap (+12 MiB at 100 endpoints). 0 keeps glibc's default; an "
        "explicit MALLOC_ARENA_MAX in the environment wins.",
    )
    multipart_chunk_bytes: int = Field(
        default=64 * 1024**2, ge=5 * 1024**2, description="Multipart part size."
    )
    work_dir: str | None = Field(
        default=None,
        description="Scratch directory for packaging, and where the digests of file:// "
        "weights are kept across restarts; default a temp dir (digests kept in memory only).",
    )
    metrics_port: int = Field(
        default=8080, ge=0, description="Prometheus metrics port; 0 disables."
    )
    metrics_address: str = Field(
        default="0.0.0.0",
        description="IP address the metrics server binds: 0.0.0.0 every IPv4 address, :: IPv6 "
        "and IPv4, 127.0.0.1 only from inside the pod (kubectl port-forward).",
    )
    health_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="Port of kopf's liveness endpoint (/healthz) unless `run --liveness` says "
        "otherwise; 0 disables.",
    )
    readiness_port: int = Field(
        default=8082,
        ge=0,
        le=65535,
        description="Port of /readyz: 200 while the API server answers the operator; 0 disables.",
    )
    health_address: str = Field(
        default="0.0.0.0",
        description="IP address kopf's liveness endpoint binds (unless `run --liveness` says "
        "otherwise); :: for IPv6 and IPv4.",
    )
    readiness_address: str = Field(
        default="0.0.0.0", description="IP address /readyz binds; :: for IPv6 and IPv4."
    )
    log_format: str = Field(
        default="text", pattern="^(text|json)$", description="Log format: text or json."
    )
    file_roots: str = Field(
        default="",
        description="Directories file:// model sources may be read from, separated by ':' "
        "(mounted model volumes); file:// is refused when empty.",
    )
    allow_endpoint_adoption: bool = Field(
        default=False,
        description="Whether a ModelEndpoint may adopt an existing SageMaker endpoint that no "
        "ModelEndpoint owns (no mme-operator.io/ tag) with the annotation "
        "mme-operator.io/adopt-endpoint: <name>. Off: such an endpoint is NotOwned. An "
        "endpoint another ModelEndpoint owns is never adopted, whatever this says. The "
        "IAM policy's SageMakerAdoptUnmanagedEndpoint statement is needed only when on.",
    )
    namespace: str | None = Field(
        default=None, description="Watch only this namespace; all when unset."
    )
    tenancy_policy_file: str | None = Field(
        default=None,
        description="YAML file of the tenancy policy (what each namespace's ModelEndpoints "
        "may use; the chart renders it from its tenancy values into a ConfigMap in the "
        "operator's namespace). Unset: the safe defaults (archives only under "
        "<namespace>/<name>/, no nesting, only the SageMaker Triton image, no execution role "
        "allowed). Read once at start; a bad file stops `run` (exit 2).",
    )
    tenancy_open: bool = Field(
        default=False,
        description="Turn the tenancy policy off (a single-team install): any archive "
        "location, source, execution role and image the IAM policy allows.",
    )

    instance_catalogue_file: str | None = Field(
        default=None,
        description="JSON or YAML file with instance types to add and fields or prices to "
        "override (same shape as sizing/instance_types.json); AWS adds MME types, users get "
        "discounts.",
    )
    price_factor: float = Field(
        default=1.0,
        gt=0,
        description="Multiplier on every catalogue price (0.8 for a 20% enterprise discount).",
    )

    @field_validator("metrics_address", "health_address", "readiness_address")
    @classmethod
    def _an_ip_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip("[]")))
        except ValueError:
            raise ValueError(
                "must be an IP address to listen on, e.g. 0.0.0.0 (IPv4) or :: (IPv6 and IPv4)"
            ) from None

    def listen_url(self, address: str, port: int) -> str:
        """``host:port`` for a listen address, an IPv6 one in brackets."""
        return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

    @property
    def aws_max_pool_connections(self) -> int:
        """Connections each AWS client may keep: every concurrent reconcile at its widest.

        One reconcile holds at most ``S3_HEAD_CONCURRENCY`` HEADs or ``upload_concurrency``
        upload parts in flight at once, a drift check one call; a smaller pool discards
        connections ("Connection pool is full") and pays a new TLS handshake for each.
        """
        per_reconcile = max(S3_HEAD_CONCURRENCY, self.upload_concurrency)
        return self.max_concurrent_reconciles * per_reconcile + self.drift_check_concurrency

    @property
    def file_root_list(self) -> list[str]:
        return [root for root in self.file_roots.split(":") if root]


class SettingsError(ValueError):
    """An ``MME_*`` variable holds a value the operator cannot use: one line per variable."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("; ".join(lines))


def _settings_problems(error: ValidationError) -> list[str]:
    lines = []
    for err in error.errors(include_url=False):
        name = "MME_" + "_".join(str(part) for part in err["loc"]).upper()
        shown = f"={err['input']!r}" if isinstance(err.get("input"), str) else ""
        lines.append(f"{name}{shown}: {err['msg']}")
    return lines


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once); :class:`SettingsError` when a variable is wrong."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(_settings_problems(error)) from None
    except pydantic_settings.SettingsError as error:
        raise SettingsError([" ".join(str(error).split())]) from None
