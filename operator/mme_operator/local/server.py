"""One local HTTP endpoint answering boto3 for SageMaker, sagemaker-runtime, S3 and more.

Routing: ``X-Amz-Target: SageMaker.<Op>`` goes to the local SageMaker control plane,
``POST /endpoints/<name>/invocations`` (signed for ``sagemaker``) to the MME data plane,
``/_local/...`` to the admin API (faults, call counts), everything else to moto (S3,
application-autoscaling, CloudWatch, ...).
"""

from __future__ import annotations

import functools
import json
import re
import signal
import socket
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import boto3
from botocore.config import Config
from moto.backends import list_of_moto_modules
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from mme_operator.local.control_plane import ACCOUNT_ID, SageMakerControlPlane
from mme_operator.local.data_plane import MultiModelRuntime
from mme_operator.local.errors import AwsError
from mme_operator.local.faults import AUTOSCALING, CallCounter, FaultController
from mme_operator.local.triton import TritonServer

DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations/?$")
_JSON_11 = "application/x-amz-json-1.1"


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, which finds a request's service from its host, with what it
    finds remembered per host. moto's own lists the folders of its package (an ``isdir``
    each) twice a request, under a lock all requests share: a fifth of this server's CPU
    with thousands of uploads."""

    _modules = frozenset(list_of_moto_modules())

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one dispatcher per server, kept for its life
    def get_backend_for_host(self, host: str | None) -> Any:
        if host is None:
            return None
        if host == "moto_api" or host in self._modules:
            return host
        for backend, pattern in self.backend_url_patterns:
            if pattern.match(f"http://{host}"):
                return backend
        return None


class _QuietRequestHandler(MotoRequestHandler):
    """Moto's request handler without a log line per request (tests make thousands)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _s3_backend() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["aws"]


def _bucket_exists(bucket: str) -> bool:
    return bucket in _s3_backend().buckets


def _scaling_registered(region: str, resource_id: str) -> bool:
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    backend = applicationautoscaling_backends[ACCOUNT_ID][region]
    return resource_id in backend.targets.get("sagemaker:variant:DesiredInstanceCount", {})


def _alarm_state(region: str, name: str) -> str | None:
    """A CloudWatch alarm's state in moto's backend (served on this same endpoint)."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = cloudwatch_backends[ACCOUNT_ID][region].alarms.get(name)
    return None if alarm is None else str(alarm.state_value)


def _put_metrics(region: str, namespace: str, data: list[dict[str, Any]]) -> None:
    """PutMetricData into moto's CloudWatch, in the process (what the endpoint publishes)."""
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[ACCOUNT_ID][region].put_metric_data(namespace, data)


def _read_object(bucket: str, key: str) -> bytes | None:
    from moto.s3.exceptions import MissingBucket, MissingKey

    try:
        found = _s3_backend().get_object(bucket, key)
    except (MissingBucket, MissingKey):
        return None
    return None if found is None else bytes(found.value)


class LocalAWS:
    """A local AWS for tests and the demo; a context manager.

    >>> with LocalAWS() as aws:
    ...     sm = aws.client("sagemaker")

    ``endpoint_delay``: seconds an endpoint stays Creating / Updating / Deleting.
    ``triton``: run InvokeEndpoint on a real tritonserver (CPU; started on the first
    InvokeEndpoint): None (default) when ``nvidia-pytriton`` is installed, True always
    (fails without it), False never; without one, InvokeEndpoint answers a JSON
    description of the loaded model.
    ``model_memory_bytes``: overrides the memory (GPU and host) of every instance, to test
    LRU eviction with small models. Each invocation puts MME's metrics to the local
    CloudWatch (:mod:`mme_operator.local.model_cache`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        endpoint_delay: float = 0.5,
        region: str = "us-east-1",
        *,
        triton: bool | None = None,
        model_memory_bytes: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.faults = FaultController()
        self._calls = CallCounter()
        self.sagemaker = SageMakerControlPlane(
            endpoint_delay,
            self.faults,
            _bucket_exists,
            scaling_registered=_scaling_registered,
            alarm_state=_alarm_state,
        )
        self._triton_mode = triton
        self._triton: TritonServer | None = None
        self._triton_failed = False
        self._triton_lock = threading.Lock()
        self.runtime = MultiModelRuntime(
            _read_object, self._triton_server, model_memory_bytes, publish=_put_metrics
        )
        self._moto = _Dispatcher(create_backend_app)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle.

    def start(self) -> str:
        """Start serving in a daemon thread; returns the endpoint URL."""
        if self._server is not None:
            return self.endpoint_url
        if self._triton_mode is True:
            self._triton_server()
        # Bound here, not by werkzeug: on a port in use werkzeug prints and exits the whole
        # process; an OSError lets the caller say so in one line (or pick another port).
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self.port), family=family, backlog=128)
        try:
            self._server = make_server(
                self.host,
                self.port,
                self,
                threaded=True,
                request_handler=_QuietRequestHandler,
                fd=listener.fileno(),
            )
        finally:
            listener.close()
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-aws", daemon=True
        )
        self._thread.start()
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving (and the tritonserver, if one was started)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._triton_lock:
            if self._triton is not None:
                self._triton.stop()
                self._triton = None

    def __enter__(self) -> LocalAWS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` to give boto3 as ``endpoint_url`` (or ``AWS_ENDPOINT_URL``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def triton_running(self) -> bool:
        """Whether InvokeEndpoint is served by a real tritonserver (started on first use)."""
        return self._triton is not None

    @property
    def calls(self) -> Counter[str]:
        """Calls received per operation of every service (S3's too), retries included."""
        return self._calls.snapshot()

    def calls_about(self, text: str) -> Counter[str]:
        """Calls per operation about one thing: a SageMaker call whose endpoint, config,
        model or ARN names contain ``text``, an S3 call whose path or prefix does."""
        return self._calls.about(text)

    def reset_calls(self) -> None:
        """Forget the calls counted so far."""
        self._calls.reset()

    def client(self, service_name: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service_name`` talking to this server.

        Dummy credentials, this server's region, path-style S3 and standard retries;
        ``kwargs`` go to ``boto3.client`` (a ``config`` given there is merged).
        """
        config = Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        if "config" in kwargs:
            config = config.merge(kwargs.pop("config"))
        options: dict[str, Any] = {
            "region_name": self.region,
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": DUMMY_ACCESS_KEY,
            "aws_secret_access_key": DUMMY_SECRET_KEY,
            "config": config,
        }
        options.update(kwargs)
        # boto3-stubs types client() per service name; this one takes any.
        return boto3.client(service_name, **options)  # type: ignore[call-overload]

    def loaded_models(self, endpoint_name: str, region: str | None = None) -> list[str]:
        """TargetModels now loaded on an endpoint, least recently used first."""
        return self.runtime.loaded_models(self._endpoint_arn(endpoint_name, region))

    def loaded_by_instance(self, endpoint_name: str, region: str | None = None) -> list[list[str]]:
        """Per instance of an endpoint, the TargetModels loaded there, least recently used first."""
        return self.runtime.loaded_by_instance(self._endpoint_arn(endpoint_name, region))

    def _endpoint_arn(self, endpoint_name: str, region: str | None) -> str:
        region = region or self.region
        return f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:endpoint/{endpoint_name.lower()}"

    def _triton_server(self) -> TritonServer | None:
        if self._triton_mode is False:
            return None
        with self._triton_lock:
            if self._triton is None and not self._triton_failed:
                if self._triton_mode is None and not TritonServer.available():
                    self._triton_failed = True
                    return None
                server = TritonServer()
                try:
                    server.start()
                except RuntimeError:
                    self._triton_failed = True
                    if self._triton_mode is True:
                        raise
                    return None
                self._triton = server
            return self._triton

    # WSGI.

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        target = request.headers.get("X-Amz-Target", "")
        invocation = _INVOCATIONS.match(path) if request.method == "POST" else None
        response: Response
        if path.startswith("/_local/"):
            response = self._admin(request)
        elif target.startswith("SageMaker."):
            response = self._sagemaker(request, target.split(".", 1)[1])
        elif invocation is not None and self._signed_for_sagemaker(request):
            response = self._invoke(request, urllib.parse.unquote(invocation[1]))
        elif self._signed_for("s3", request):
            # The body stays unread, so moto gets the whole request.
            return self._s3(request, environ, start_response)
        else:
            operation = self._moto_operation(request, target)
            self._calls.record(operation)
            error = (
                self.faults.error_for(operation, AUTOSCALING)
                if self._signed_for(AUTOSCALING, request)
                else None
            )
            if error is None:
                return self._moto(environ, start_response)  # type: ignore[no-any-return]
            # Application Auto Scaling speaks JSON 1.1 and says "Message" in its errors.
            response = _error_response(error, _JSON_11, str(uuid.uuid4()), "Message")
        return response(environ, start_response)

    def _moto_operation(self, request: Request, target: str) -> str:
        """The operation name of a request served by moto, for the call counts."""
        if target:
            return target.rsplit(".", 1)[-1]
        scope = self._scope(request)
        return f"{scope[1] if scope else 'unsigned'}:{request.method}"

    def _scope(self, request: Request) -> tuple[str, str] | None:
        match = _CREDENTIAL_SCOPE.search(request.headers.get("Authorization", ""))
        return (match[1], match[2]) if match else None

    def _signed_for_sagemaker(self, request: Request) -> bool:
        scope = self._scope(request)
        return scope is None or scope[1] == "sagemaker"

    def _signed_for(self, service: str, request: Request) -> bool:
        scope = self._scope(request)
        return scope is not None and scope[1] == service

    def _region_of(self, request: Request) -> str:
        scope = self._scope(request)
        return scope[0] if scope else self.region

    def _pre_call(self, operation: str, subject: str = "") -> None:
        """Count the call and apply the faults set for it."""
        self._calls.record(operation, subject)
        delay = self.faults.delay_for(operation)
        if delay:
            time.sleep(delay)
        error = self.faults.error_for(operation)
        if error is not None:
            raise error

    def _post_call(self, operation: str, service: str = "sagemaker") -> None:
        """Apply an after-the-effect fault: the call was served, its answer is lost."""
        fired = self.faults.fault_after(operation, service)
        if fired is not None:
            if fired.delay_seconds:
                time.sleep(fired.delay_seconds)
            raise fired.error

    def _s3(
        self, request: Request, environ: dict[str, Any], start_response: Any
    ) -> Iterable[bytes]:
        """S3 through moto, with the S3 faults set for this operation before or after it."""
        operation = s3_operation(request.method, request.path, request.args, request.headers)
        self._calls.record(operation, request.path + request.args.get("prefix", ""))
        request_id = str(uuid.uuid4())
        error = self.faults.error_for(operation, "s3")
        if error is None and not self.faults.has_after("s3", operation):
            return self._moto(environ, start_response)  # type: ignore[no-any-return]
        if error is None:
            # Serve it for real (the effect happens), then decide what the client hears.
            captured: list[Any] = []

            def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
                captured[:] = [status, headers]
                return lambda data: None

            body = b"".join(self._moto(environ, capture))
            try:
                self._post_call(operation, "s3")
            except AwsError as err:
                error = err
            else:
                start_response(*captured)
                return [body]
        return _s3_error_response(error, request_id)(environ, start_response)

    def _sagemaker(self, request: Request, operation: str) -> Response:
        request_id = str(uuid.uuid4())
        try:
            try:
                payload = json.loads(request.get_data() or b"{}")
            except ValueError:
                self._pre_call(operation)
                raise AwsError("SerializationException", "Malformed JSON request") from None
            self._pre_call(operation, _subject_of(payload))
            result = self.sagemaker.dispatch(self._region_of(request), operation, payload)
            if operation == "DeleteEndpoint":
                arn = f"arn:aws:sagemaker:{self._region_of(request)}:{ACCOUNT_ID}:endpoint/"
                self.runtime.forget(arn + payload["EndpointName"].lower())
            self._post_call(operation)
            return Response(
                json.dumps(result),
                200,
                {"Content-Type": _JSON_11, "x-amzn-RequestId": request_id},
            )
        except AwsError as err:
            return _error_response(err, _JSON_11, request_id, "message")

    def _invoke(self, request: Request, endpoint_name: str) -> Response:
        request_id = str(uuid.uuid4())
        try:
            self._pre_call("InvokeEndpoint", endpoint_name)
            region = self._region_of(request)
            found = self.sagemaker.find_endpoint(region, endpoint_name)
            if found is None:
                raise AwsError(
                    "ValidationError",
                    f"Endpoint {endpoint_name} of account {ACCOUNT_ID} not found.",
                )
            endpoint, models = found
            body, content_type, variant = self.runtime.invoke(
                region,
                endpoint,
                models,
                request.headers.get("X-Amzn-SageMaker-Target-Model"),
                request.get_data(),
                request.headers.get("Content-Type"),
            )
            return Response(
                body,
                200,
                {
                    "Content-Type": content_type,
                    "x-Amzn-Invoked-Production-Variant": variant,
                    "x-amzn-RequestId": request_id,
                },
            )
        except AwsError as err:
            return _error_response(err, "application/json", request_id, "Message")

    def _admin(self, request: Request) -> Response:
        path, method = request.path, request.method
        try:
            if path == "/_local/calls":
                if method == "DELETE":
                    self.reset_calls()
                return _json(dict(self.calls))
            if path == "/_local/faults":
                if method == "POST":
                    data = json.loads(request.get_data() or b"{}")
                    for item in data if isinstance(data, list) else [data]:
                        self.faults.apply(item)
                elif method == "DELETE":
                    self.faults.reset()
                return _json(self.faults.snapshot())
            if path == "/_local/health":
                return _json({"status": "ok"})
        except (ValueError, TypeError) as err:
            return _json({"error": str(err)}, 400)
        return _json({"error": f"no such admin resource: {method} {path}"}, 404)


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status, {"Content-Type": "application/json"})


def s3_operation(method: str, path: str, query: Mapping[str, str], headers: Any) -> str:
    """The S3 API operation a path-style request calls (``PutObject``, ``ListObjectsV2``, ...)."""
    parts = path.lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    if not parts[0]:
        return "ListBuckets"
    if has_key:
        if "tagging" in query:
            return {"GET": "GetObjectTagging", "PUT": "PutObjectTagging"}.get(
                method, "DeleteObjectTagging"
            )
        if method == "PUT":
            if "partNumber" in query:
                return "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart"
            return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
        if method == "POST":
            return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
        if method == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
        if method == "GET" and "uploadId" in query:
            return "ListParts"
        return {"GET": "GetObject", "HEAD": "HeadObject"}.get(method, method)
    if method == "GET":
        return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(
        method, method
    )


def _s3_error_response(err: AwsError, request_id: str) -> Response:
    """An error in S3's XML shape, which botocore's rest-xml parser reads."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        f"<Code>{err.code}</Code><Message>{xml_escape(err.message)}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return Response(
        body, err.status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}
    )


_SUBJECT_FIELDS = ("EndpointName", "EndpointConfigName", "ModelName", "ResourceArn", "NameContains")


def _subject_of(payload: Any) -> str:
    """What a SageMaker call is about, for the per-subject counts: the names it gives."""
    if not isinstance(payload, dict):
        return ""
    return " ".join(str(payload[f]) for f in _SUBJECT_FIELDS if isinstance(payload.get(f), str))


def _error_response(
    err: AwsError, content_type: str, request_id: str, message_key: str
) -> Response:
    return Response(
        json.dumps(err.body(message_key)),
        err.status,
        {
            "Content-Type": content_type,
            "x-amzn-ErrorType": err.code,
            "x-amzn-RequestId": request_id,
        },
    )


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 4566,
    endpoint_delay: float = 5.0,
    region: str = "us-east-1",
    triton: bool | None = None,
    on_started: Callable[[LocalAWS], None] | None = None,
) -> None:
    """Serve a LocalAWS in the foreground until interrupted (Ctrl-C or SIGTERM).

    ``on_started`` is called once the server listens (with port 0, its port is known then).
    """
    aws = LocalAWS(host, port, endpoint_delay, region, triton=triton)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    aws.start()
    try:
        if on_started is not None:
            on_started(aws)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        aws.stop()
