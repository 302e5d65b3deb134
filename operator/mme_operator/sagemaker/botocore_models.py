"""The part of botocore's SageMaker service model the operator uses, and the shared session.

botocore decodes a service's whole JSON model into Python objects when the first client of
the service is made. SageMaker's model describes 434 operations and 3,260 shapes: 9 MiB of
the operator's memory (of 150 MiB at 100 endpoints), for the 14 operations it calls.
``botocore_data/sagemaker/<version>/service-2.json.gz`` holds those operations and every
shape they reach, copied unchanged from botocore's model by
``scripts/trim-botocore-models.py`` (which also records botocore's version in the model's
metadata). It is put first in the data loader's search path, the mechanism boto3 uses for
its own data, so everything else (endpoint rules, paginators, other services) still comes
from the installed botocore. A test checks that every SageMaker call in the code is in the
trimmed model and that each of its shapes still exists, member for member, in the
installed botocore.

One botocore session serves every region: its loader decodes each model once, where a
session per region decoded SageMaker's again for each (clients are made under a lock,
botocore sessions not being thread-safe).

Its responses' ISO 8601 timestamps are parsed by :func:`parse_timestamp`: botocore's own
parser (dateutil) cost a drift check 1 ms of its 5 ms of CPU for an S3 listing of ten keys.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import botocore.utils
from dateutil.tz import tzutc

from mme_operator.metrics import instrument_session

DATA_PATH = Path(__file__).with_name("botocore_data")

SAGEMAKER_OPERATIONS = (
    "AddTags",
    "CreateEndpoint",
    "CreateEndpointConfig",
    "CreateModel",
    "DeleteEndpoint",
    "DeleteEndpointConfig",
    "DeleteModel",
    "DescribeEndpoint",
    "DescribeEndpointConfig",
    "DescribeModel",
    "ListEndpointConfigs",
    "ListModels",
    "ListTags",
    "UpdateEndpoint",
)
"""Every SageMaker control-plane operation the operator calls (a test greps the code)."""

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_UTC = tzutc()


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parsing, with the stdlib's fast path for ISO 8601 in UTC.

    The same value as botocore's (a datetime in dateutil's UTC); anything else (epoch
    numbers, RFC 822 headers, other offsets) goes to botocore's parser.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None and not parsed.utcoffset():
                return parsed.replace(tzinfo=_UTC)
    result: datetime = botocore.utils.parse_timestamp(value)
    return result


def shared_session() -> boto3.session.Session:
    """The process's boto3 session, whose loader finds the trimmed SageMaker model first.

    Every call of a client made from it is counted in the operator's metrics
    (:func:`mme_operator.metrics.instrument_session`).
    """
    global _session
    with _lock:
        if _session is None:
            core = botocore.session.get_session()
            loader = core.get_component("data_loader")
            loader.search_paths.insert(0, str(DATA_PATH))
            parsers = core.get_component("response_parser_factory")
            parsers.set_parser_defaults(timestamp_parser=parse_timestamp)
            # Before any client exists: each client copies the session's handlers.
            _session = instrument_session(boto3.session.Session(botocore_session=core))
        return _session


def session_lock() -> threading.Lock:
    """Held while clients are made from :func:`shared_session` (sessions are not thread-safe)."""
    return _lock
