"""Rendering of a model's Triton ``config.pbtxt`` from its :class:`~mme_operator.api.ModelSpec`."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import jinja2
from google.protobuf import text_format

from mme_operator.api import ModelSpec
from mme_operator.api.spec import ApiModel
from mme_operator.api.triton_schema import model_config_pb2
from mme_operator.triton.schema import (
    TritonConfigError,
    check_model_config,
    config_fragment,
    spec_message,
    typed_extras,
)

TEMPLATE_NAME = "config.pbtxt.j2"
_TEMPLATE_PACKAGE = "mme_operator.triton"

# Bytes with a short escape in protobuf text format; every other byte outside printable
# ASCII becomes a three-digit octal escape, as protobuf's own CEscape writes them.
_SHORT_ESCAPES = {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord('"'): '\\"',
    ord("'"): "\\'",
    ord("\\"): "\\\\",
}


def pbtxt_string(value: str) -> str:
    """``value`` as a double-quoted protobuf text-format string literal.

    Non-ASCII text is written as octal escapes of its UTF-8 bytes, so the file is plain
    ASCII and reads back the same in Triton's C++ parser and in Python's.
    """
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise TritonConfigError(f"{value!r} is not valid Unicode text: {error}") from error
    out = []
    for byte in data:
        if byte in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def pbtxt_list(values: Iterable[int]) -> str:
    """Integers as a text-format list: ``[ 1, 2 ]``; ``[ ]`` when empty."""
    items = ", ".join(str(int(v)) for v in values)
    return f"[ {items} ]" if items else "[ ]"


def pbtxt_bool(value: bool) -> str:
    """``true`` or ``false``, as text format spells them."""
    return "true" if value else "false"


def pbtxt_message(value: ApiModel, message_name: str, field: str, indent: int) -> str:
    """A typed spec value as the text of field ``field`` (a ``message_name`` message), indented."""
    message = spec_message(value, getattr(model_config_pb2, message_name)())
    body = str(text_format.MessageToString(message, indent=indent + 2))
    pad = " " * indent
    return f"{pad}{field} {{\n{body}{pad}}}"


def priority_levels(policies: dict[str, object]) -> list[str]:
    """Priority levels in numeric order ("2" before "10")."""
    return sorted(policies, key=int)


def typed_extras_text(model: ModelSpec) -> str:
    """The typed fields rendered through Triton's proto, in its text format ('' when none)."""
    return str(text_format.MessageToString(typed_extras(model)))


def fragment_text(model: ModelSpec) -> str:
    """The ``configPbtxt`` fragment as Triton's text format, after a comment ('' when unset)."""
    fragment = config_fragment(model)
    if not fragment.ListFields():
        return ""
    return "# from configPbtxt\n" + str(text_format.MessageToString(fragment))


@lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """The Jinja environment for Triton configs: templates from package resources, strict.

    Autoescape is off because the output is protobuf text, not HTML: escaping is the job
    of ``pbtxt_string``. StrictUndefined turns a misspelled field into an error instead
    of an empty value.
    """
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["pbtxt_string"] = pbtxt_string
    env.filters["pbtxt_list"] = pbtxt_list
    env.filters["pbtxt_bool"] = pbtxt_bool
    env.filters["pbtxt_message"] = pbtxt_message
    env.filters["priority_levels"] = priority_levels
    env.filters["typed_extras"] = typed_extras_text
    env.filters["config_fragment"] = fragment_text
    return env


def _load_template(name: str) -> str | None:
    # importlib.resources rather than a file path: the template must load from a wheel.
    resource = resources.files(_TEMPLATE_PACKAGE) / "templates" / name
    return resource.read_text(encoding="utf-8") if resource.is_file() else None


def render_model_config(model: ModelSpec) -> str:
    """The ``config.pbtxt`` text of ``model``, checked against Triton's schema.

    The text is parsed with ``model_config_pb2`` and compared with
    :func:`~mme_operator.triton.schema.expected_model_config`; a config that does not
    parse or says something else than the spec raises :class:`TritonConfigError`,
    because shipping it would only fail later, inside the endpoint.
    """
    template = template_environment().get_template(TEMPLATE_NAME)
    try:
        text = template.render(model=model)
    except jinja2.TemplateError as error:
        raise TritonConfigError(
            f"rendering config.pbtxt of model {model.name!r} failed: {error}"
        ) from error
    check_model_config(text, model)
    return text
