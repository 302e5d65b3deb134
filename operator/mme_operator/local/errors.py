"""AWS errors as the local SageMaker raises and serialises them."""

from __future__ import annotations

from typing import Any


class AwsError(Exception):
    """An error answered in AWS's JSON error shape.

    ``extra`` holds modelled members beyond the message (``OriginalStatusCode`` of
    sagemaker-runtime's ``ModelError``, for instance); botocore copies them into the
    parsed error response.
    """

    def __init__(self, code: str, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self, message_key: str = "message") -> dict[str, Any]:
        """The JSON body; SageMaker's control plane says ``message``, the runtime ``Message``."""
        return {"__type": self.code, message_key: self.message, **self.extra}


def validation(message: str) -> AwsError:
    """SageMaker's control-plane ``ValidationException`` (HTTP 400)."""
    return AwsError("ValidationException", message)


def throttling(message: str = "Rate exceeded") -> AwsError:
    """``ThrottlingException`` (HTTP 400), which botocore retries."""
    return AwsError("ThrottlingException", message)


SERVER_ERRORS: dict[str, int] = {
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalServerError": 500,
}
"""Server-side error codes the fault injector knows, with their HTTP status."""
