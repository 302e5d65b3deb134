"""Local stand-ins for AWS and Kubernetes: tests, the demo, and ``mme-operator local-aws``.

``LocalAWS`` is one HTTP endpoint that boto3 can use for SageMaker (implemented here,
with the real endpoint lifecycle and Triton MME data plane), S3, application-autoscaling
and CloudWatch (moto), with fault injection and call counting for tests.
"""

from mme_operator.local.faults import CallCounter, FaultController
from mme_operator.local.server import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAWS, serve_forever
from mme_operator.local.triton import TritonServer, find_triton

__all__ = [
    "DUMMY_ACCESS_KEY",
    "DUMMY_SECRET_KEY",
    "CallCounter",
    "FaultController",
    "LocalAWS",
    "TritonServer",
    "find_triton",
    "serve_forever",
]
