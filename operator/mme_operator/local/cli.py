"""``mme-operator local-aws``: serve the local AWS in the foreground."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

MAX_PORT = 65535


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``local-aws`` subcommand to an ``add_subparsers()`` object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "local-aws",
        help="serve a local SageMaker (MME, Triton) + S3 for trying the operator without AWS",
        description=(
            "Serve SageMaker, sagemaker-runtime, S3, application-autoscaling and CloudWatch "
            "on one local HTTP endpoint, until Ctrl-C."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "--port", type=int, default=4566, help="port to bind (default 4566; 0: any free port)"
    )
    parser.add_argument(
        "--endpoint-delay",
        type=float,
        default=5.0,
        help="seconds an endpoint stays Creating / Updating / Deleting (default 5)",
    )
    parser.add_argument("--region", default="us-east-1", help="region in the exports")
    parser.add_argument(
        "--triton",
        choices=("auto", "on", "off"),
        default="auto",
        help="real tritonserver behind InvokeEndpoint: auto (when nvidia-pytriton is installed)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted, printing the environment to use once listening."""
    from mme_operator.local.server import (
        DUMMY_ACCESS_KEY,
        DUMMY_SECRET_KEY,
        LocalAWS,
        serve_forever,
    )
    from mme_operator.local.triton import TritonServer, python_backend_problem

    def announce(aws: LocalAWS) -> None:
        print(f"export AWS_ENDPOINT_URL={aws.endpoint_url}")
        print(f"export AWS_ACCESS_KEY_ID={DUMMY_ACCESS_KEY}")
        print(f"export AWS_SECRET_ACCESS_KEY={DUMMY_SECRET_KEY}")
        print(f"export AWS_DEFAULT_REGION={args.region}")
        if triton is not False and TritonServer.available():
            problem = python_backend_problem()
            if problem is not None:
                print(f"# {problem}")
        print(f"# serving local SageMaker + S3 on {aws.endpoint_url}; Ctrl-C stops", flush=True)

    if not 0 <= args.port <= MAX_PORT:
        print(
            f"error: --port {args.port}: a port is 0-{MAX_PORT} (0: any free port)", file=sys.stderr
        )
        return 2
    listening = False

    def on_started(aws: LocalAWS) -> None:
        nonlocal listening
        listening = True
        announce(aws)

    triton = {"auto": None, "on": True, "off": False}[getattr(args, "triton", "auto")]
    try:
        serve_forever(args.host, args.port, args.endpoint_delay, args.region, triton, on_started)
    except OSError as error:
        if listening:
            raise
        # Nothing was announced: a caller reading the exports never sees a dead endpoint.
        reason = os.strerror(error.errno) if error.errno else str(error)
        print(f"error: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    return 0
