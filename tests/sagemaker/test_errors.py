"""Errors are classified once, from the error responses AWS sends."""

import botocore.exceptions
import pytest
import urllib3.exceptions
from botocore.config import Config
from mme_operator import __version__
from mme_operator.sagemaker import (
    ErrorClass,
    boto_config,
    classify,
    describe_error,
    is_already_exists,
)

RETRYABLE, TERMINAL, NOT_FOUND = ErrorClass.RETRYABLE, ErrorClass.TERMINAL, ErrorClass.NOT_FOUND


def client_error(
    code: str, message: str = "", status: int = 400, operation: str = "CreateModel"
) -> botocore.exceptions.ClientError:
    """A ClientError exactly as botocore builds it from an error response."""
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


CLIENT_ERRORS = [
    ("ThrottlingException", "Rate exceeded", 400, RETRYABLE),
    ("Throttling", "Rate exceeded", 400, RETRYABLE),
    ("RequestLimitExceeded", "", 503, RETRYABLE),
    ("TooManyRequestsException", "", 429, RETRYABLE),
    ("ProvisionedThroughputExceededException", "", 400, RETRYABLE),
    ("ServiceUnavailable", "", 503, RETRYABLE),
    ("InternalFailure", "", 500, RETRYABLE),
    ("InternalServerError", "", 500, RETRYABLE),
    ("SomethingNew", "", 502, RETRYABLE),
    ("ResourceInUse", "Resource in use", 400, RETRYABLE),
    ("ConcurrentUpdateException", "", 400, RETRYABLE),
    ("ValidationException", 'Cannot update in-progress endpoint "arn:..."', 400, RETRYABLE),
    ("ValidationException", "1 validation error detected: Value 'x'", 400, TERMINAL),
    ("ValidationException", 'Could not find model "arn:aws:sagemaker:...".', 400, NOT_FOUND),
    ("ValidationException", "Could not find endpoint configuration 'x'.", 400, NOT_FOUND),
    ("ValidationException", "No scaling policy found for service namespace", 400, NOT_FOUND),
    ("ValidationException", "Could not access model data at s3://b/p/.", 400, TERMINAL),
    ("AccessDenied", "", 403, TERMINAL),
    ("AccessDeniedException", "not authorized to perform: sagemaker:CreateModel", 400, TERMINAL),
    ("UnauthorizedOperation", "", 403, TERMINAL),
    ("ResourceLimitExceeded", "limit 'ml.g5.xlarge for endpoint usage' is 0", 400, TERMINAL),
    ("InvalidParameterValue", "", 400, TERMINAL),
    ("MissingParameter", "", 400, TERMINAL),
    ("KMS.NotFoundException", "Invalid keyId", 400, TERMINAL),
    ("KMSAccessDeniedException", "", 400, TERMINAL),
    ("NoSuchBucket", "The specified bucket does not exist", 404, TERMINAL),
    ("ResourceNotFound", "", 400, NOT_FOUND),
    ("ObjectNotFoundException", "", 400, NOT_FOUND),
    ("NoSuchKey", "", 404, NOT_FOUND),
    ("404", "Not Found", 404, NOT_FOUND),
    ("SomethingElse", "", 400, TERMINAL),
]


@pytest.mark.parametrize(("code", "message", "status", "expected"), CLIENT_ERRORS)
def test_client_errors(code: str, message: str, status: int, expected: ErrorClass) -> None:
    assert classify(client_error(code, message, status)) is expected


@pytest.mark.parametrize(
    "exc",
    [
        botocore.exceptions.EndpointConnectionError(endpoint_url="https://api.sagemaker"),
        botocore.exceptions.ConnectTimeoutError(endpoint_url="https://api.sagemaker"),
        botocore.exceptions.ReadTimeoutError(endpoint_url="https://api.sagemaker"),
        botocore.exceptions.ConnectionClosedError(endpoint_url="https://api.sagemaker"),
        urllib3.exceptions.ProtocolError("Connection aborted."),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_errors_are_retryable(exc: BaseException) -> None:
    assert classify(exc) is RETRYABLE
    assert "will retry" in describe_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        botocore.exceptions.NoCredentialsError(),
        botocore.exceptions.ParamValidationError(report="missing ModelName"),
        KeyError("bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_terminal(exc: BaseException) -> None:
    assert classify(exc) is TERMINAL


def test_already_exists_is_recognised() -> None:
    exc = client_error(
        "ValidationException", 'Cannot create already existing model "arn:aws:sagemaker:..."'
    )
    assert is_already_exists(exc)
    assert not is_already_exists(client_error("ValidationException", "Could not find model"))
    assert not is_already_exists(KeyError("x"))


def test_access_denied_names_the_missing_action() -> None:
    exc = client_error(
        "AccessDeniedException",
        "User: arn:aws:sts::123456789012:assumed-role/op/x is not authorized to perform: "
        "iam:PassRole on resource: arn:aws:iam::123456789012:role/sagemaker-mme",
    )
    assert describe_error(exc).startswith("the operator's IAM role lacks iam:PassRole: ")


def test_access_denied_without_an_action_falls_back_to_the_operation() -> None:
    exc = client_error("AccessDenied", "Access Denied", 403, operation="DeleteEndpoint")
    assert "lacks permission for DeleteEndpoint" in describe_error(exc)


def test_s3_access_denied_without_an_action_names_the_iam_action_of_the_operation() -> None:
    # S3 answers a bare "Access Denied"; listing needs s3:ListBucket, a HEAD s3:GetObject.
    listing = client_error("AccessDenied", "Access Denied", 403, operation="ListObjectsV2")
    head = client_error("AccessDenied", "Access Denied", 403, operation="HeadObject")
    assert describe_error(listing) == "the operator's IAM role lacks s3:ListBucket: Access Denied"
    assert describe_error(head) == "the operator's IAM role lacks s3:GetObject: Access Denied"


def test_quota_message_names_the_instance_type() -> None:
    exc = client_error(
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances, "
        "with current utilization of 0 Instances and a request delta of 1 Instances.",
        operation="CreateEndpoint",
    )
    assert describe_error(exc).startswith(
        "request a quota increase for ml.g5.xlarge endpoint usage"
    )


def test_messages_say_what_to_change() -> None:
    assert "spec.artifacts.kmsKeyId" in describe_error(client_error("KMS.DisabledException"))
    assert "spec.artifacts.bucket" in describe_error(client_error("NoSuchBucket", "", 404))
    assert "spec.executionRoleArn" in describe_error(
        client_error("ValidationException", "Could not access model data at s3://b/p/.")
    )
    assert "IRSA" in describe_error(botocore.exceptions.NoCredentialsError())
    assert "fix the spec" in describe_error(
        client_error("ValidationException", "Value 'ml.nope' failed to satisfy constraint")
    )


def test_boto_config_retries_in_standard_mode_and_says_who_calls() -> None:
    config = boto_config()
    assert isinstance(config, Config)
    assert config.retries == {"mode": "standard", "max_attempts": 5}
    assert config.connect_timeout == 10.0 and config.read_timeout == 60.0
    assert config.user_agent_extra == f"mme-operator/{__version__}"
