"""AWS errors, classified once: retry later, stop and say what to change, or "not there".

Every AWS call of the operator goes through botocore, whose own retries (``boto_config``)
absorb short blips; what still reaches the reconcile is classified here and nowhere else.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

import botocore.exceptions
import urllib3.exceptions
from botocore.config import Config

from mme_operator import __version__


class ErrorClass(StrEnum):
    """What the reconcile does about an error."""

    RETRYABLE = "Retryable"
    """Transient (throttling, 5xx, a resource busy, the network): try again later."""
    TERMINAL = "Terminal"
    """The spec, permissions or quotas are wrong: stop and tell the user what to change."""
    NOT_FOUND = "NotFound"
    """The resource is not there: for a describe, "absent"; for a delete, done."""


THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
    }
)

RETRYABLE_CODES = THROTTLING_CODES | frozenset(
    {
        "ProvisionedThroughputExceeded",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "InternalServiceError",
        "ResourceInUse",
        "ResourceInUseException",
        "ConcurrentUpdateException",
        "ConflictException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        # Refreshable credentials (IRSA, Pod Identity) are renewed by botocore; a later call
        # picks up the new ones.
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
    }
)

NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFound",
        "ResourceNotFoundException",
        "ObjectNotFoundException",
        "NoSuchKey",
        "NotFound",
        "404",
    }
)

ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "AuthorizationError",
        "FailedResourceAccessException",
    }
)

CREDENTIALS_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "MissingAuthenticationToken",
        "InvalidSignatureException",
    }
)

QUOTA_CODES = frozenset({"ResourceLimitExceeded", "LimitExceededException"})

VALIDATION_CODES = frozenset({"ValidationException", "ValidationError"})

# ValidationException is also how SageMaker (and moto's Application Auto Scaling) say
# "no such resource" and "busy"; these messages tell those apart from a wrong request.
_NOT_FOUND_MESSAGE = re.compile(
    r"\bCould not find\b|\bNo scaling policy found\b|\bNo scalable target found\b"
)
_BUSY_MESSAGE = re.compile(r"\bin-progress\b|\bcurrently (being )?(updat|creat|delet)", re.I)
_ALREADY_EXISTS_MESSAGE = re.compile(r"\bCannot create already existing\b|\balready exists?\b")
_PERFORM_ACTION = re.compile(r"perform: ([\w-]+:[\w*-]+)")
# S3 operations of the operator whose IAM action has another name (or that S3 answers with a
# bare "Access Denied", naming no action): the action to grant.
_S3_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
}
_INSTANCE_TYPE = re.compile(r"\b(ml\.[a-z0-9-]+\.[a-z0-9]+)\b")

_RETRYABLE_TRANSPORT: tuple[type[BaseException], ...] = (
    botocore.exceptions.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ...
    botocore.exceptions.HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ...
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.CredentialRetrievalError,  # STS / IMDS briefly unreachable
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
)


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ``ClientError`` (``ValidationException``, ...), else None."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def error_message(exc: BaseException) -> str:
    """The AWS error message of a ``ClientError``, else ``str(exc)``."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Message") or exc)
    return str(exc)


def _http_status(exc: botocore.exceptions.ClientError) -> int:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status else 0


def _is_kms(code: str) -> bool:
    return code.startswith("KMS") or code.startswith("Kms")


def is_already_exists(exc: BaseException) -> bool:
    """True for SageMaker's "Cannot create already existing ..." (a create that was done)."""
    code = error_code(exc)
    if code is None:
        return False
    if code.endswith(("AlreadyExists", "AlreadyExistsException")):
        return True
    return code in VALIDATION_CODES and bool(_ALREADY_EXISTS_MESSAGE.search(error_message(exc)))


def is_throttling(exc: BaseException) -> bool:
    """True when AWS said "slow down" (as opposed to a 5xx or a busy resource)."""
    return error_code(exc) in THROTTLING_CODES


def is_missing_bucket(exc: BaseException) -> bool:
    """True for S3's ``NoSuchBucket``: terminal for one call, but the user can create the bucket."""
    return error_code(exc) == "NoSuchBucket"


def classify(exc: BaseException) -> ErrorClass:
    """RETRYABLE, TERMINAL or NOT_FOUND for any exception an AWS call may raise.

    A create's "already exists" is TERMINAL here; callers that treat it as a read check
    :func:`is_already_exists` first. Exceptions that are not AWS's are TERMINAL: a bug does
    not fix itself by retrying.
    """
    if isinstance(exc, botocore.exceptions.ClientError):
        return _classify_client_error(exc)
    if isinstance(exc, _RETRYABLE_TRANSPORT):
        return ErrorClass.RETRYABLE
    return ErrorClass.TERMINAL


def _classify_client_error(exc: botocore.exceptions.ClientError) -> ErrorClass:
    code = error_code(exc) or ""
    message = error_message(exc)
    if code in VALIDATION_CODES:
        if _NOT_FOUND_MESSAGE.search(message):
            return ErrorClass.NOT_FOUND
        if _BUSY_MESSAGE.search(message):
            return ErrorClass.RETRYABLE
        return ErrorClass.TERMINAL
    if code in RETRYABLE_CODES:
        return ErrorClass.RETRYABLE
    if code in NOT_FOUND_CODES:
        return ErrorClass.NOT_FOUND
    if (
        code in ACCESS_DENIED_CODES
        or code in CREDENTIALS_CODES
        or code in QUOTA_CODES
        or code.startswith(("Missing", "Invalid", "NoSuch"))
        or _is_kms(code)
    ):
        # NoSuchBucket is here, not NOT_FOUND: the operator never creates the bucket.
        return ErrorClass.TERMINAL
    status = _http_status(exc)
    if status >= 500 or status == 429:
        return ErrorClass.RETRYABLE
    if status == 404:
        return ErrorClass.NOT_FOUND
    return ErrorClass.TERMINAL


def describe_error(exc: BaseException) -> str:
    """A one-line message for the user: what went wrong and, where it is known, what to change."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return _describe_client_error(exc)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return (
            "the operator has no AWS credentials: give its service account an IAM role "
            "(IRSA or EKS Pod Identity) or set AWS credentials in its environment"
        )
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return "no AWS region is set: set spec.region"
    if isinstance(exc, _RETRYABLE_TRANSPORT):
        return f"could not reach AWS ({type(exc).__name__}: {exc}); will retry"
    return f"{type(exc).__name__}: {exc}"


def _describe_client_error(exc: botocore.exceptions.ClientError) -> str:
    code = error_code(exc) or "Unknown"
    message = error_message(exc)
    operation = exc.operation_name
    if code in ACCESS_DENIED_CODES:
        found = _PERFORM_ACTION.search(message)
        action = (
            found.group(1) if found else _S3_ACTIONS.get(operation, f"permission for {operation}")
        )
        return f"the operator's IAM role lacks {action}: {message}"
    if code in CREDENTIALS_CODES:
        return f"the operator's AWS credentials were refused ({code}): {message}"
    if code in QUOTA_CODES:
        found = _INSTANCE_TYPE.search(message)
        instance_type = found.group(1) if found else "the instance type"
        return (
            f"request a quota increase for {instance_type} endpoint usage (AWS Service Quotas, "
            f"Amazon SageMaker) or choose another spec.instanceType: {message}"
        )
    if _is_kms(code) or (code in VALIDATION_CODES and "KMS" in message):
        return (
            f"the KMS key cannot be used ({code}): check spec.artifacts.kmsKeyId, the key's "
            f"state, and that the key policy grants the operator and the execution role: {message}"
        )
    if code == "NoSuchBucket":
        return f"the S3 bucket does not exist: create it or fix spec.artifacts.bucket ({message})"
    if is_already_exists(exc):
        return f"{operation}: {message}"
    cls = classify(exc)
    if cls is ErrorClass.RETRYABLE:
        return f"AWS answered {code} to {operation}; will retry: {message}"
    if cls is ErrorClass.NOT_FOUND:
        return f"{operation}: not found: {message}"
    if code in VALIDATION_CODES and "Could not access model data" in message:
        return (
            "SageMaker could not read the model archives with spec.executionRoleArn: the role "
            "must trust sagemaker.amazonaws.com and allow s3:GetObject on spec.artifacts "
            f"(and the bucket must be in spec.region): {message}"
        )
    return f"SageMaker refused {operation} ({code}); fix the spec: {message}"


def boto_config(
    *,
    max_attempts: int = 5,
    mode: Literal["adaptive", "standard"] = "standard",
    connect_timeout_seconds: float = 10.0,
    read_timeout_seconds: float = 60.0,
) -> Config:
    """The botocore client config of every AWS client the operator makes.

    ``standard`` retries back off exponentially with full jitter on throttling and 5xx;
    ``adaptive`` adds a client-side sending rate that drops while AWS throttles. Measured with
    10 endpoints at 70% throttling (benchmarks/faults.py --heavy-throttle), standard brought all
    to Ready in 157 s and adaptive none in 330 s: one client per region serves every endpoint,
    and its rate fell to botocore's floor (0.5 calls/s), starving every reconcile. The
    timeouts keep a hung connection from blocking a handler.
    """
    return Config(
        retries={"mode": mode, "max_attempts": max_attempts},
        connect_timeout=connect_timeout_seconds,
        read_timeout=read_timeout_seconds,
        user_agent_extra=f"mme-operator/{__version__}",
    )
