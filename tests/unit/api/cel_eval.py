"""Evaluate a CRD's ``x-kubernetes-validations`` rules with cel-python, as the API server would.

The API server applies schema defaults before it runs the rules, so ``self.maxBatchSize``
is present even when the user left it out; :func:`apply_defaults` does the same here.
Each rule runs at the node that carries it, with ``self`` bound to that node's value.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import celpy
from celpy.adapter import json_to_cel

Schema = dict[str, Any]


@dataclass(frozen=True)
class RuleSite:
    """One rule, where it ran (a field path like ``spec.models[1]``) and its ``self``."""

    path: str
    rule: dict[str, str]
    value: Any


def apply_defaults(schema: Schema, value: Any) -> Any:
    """A copy of VALUE with every schema ``default`` filled in where the field is absent."""
    value = copy.deepcopy(value)
    _default_in_place(schema, value)
    return value


def _default_in_place(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                _default_in_place(child, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                _default_in_place(extra, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default_in_place(schema["items"], item)


def rule_sites(schema: Schema, value: Any, path: str = "") -> Iterator[RuleSite]:
    """Every (rule, node value) pair of VALUE, walking schema and value together."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield RuleSite(path, rule, value)
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                yield from rule_sites(child, value[name], f"{path}.{name}" if path else name)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from rule_sites(schema["items"], item, f"{path}[{i}]")


@functools.cache
def compile_rule(rule: str) -> celpy.Runner:
    """The cel-python program of one rule (compiled once)."""
    env = celpy.Environment()
    return env.program(env.compile(rule))


def evaluate_rule(rule: str, self_value: Any) -> bool:
    """The rule's verdict on SELF_VALUE; an evaluation error fails loudly, as it would in the API server."""
    result = compile_rule(rule).evaluate({"self": json_to_cel(self_value)})
    if not isinstance(result, celpy.celtypes.BoolType):
        raise AssertionError(f"rule {rule!r} did not yield a bool on {self_value!r}: {result!r}")
    return bool(result)


def is_transition_rule(rule: dict[str, str]) -> bool:
    """A rule that reads ``oldSelf``: the API server runs it on updates only."""
    return "oldSelf" in rule["rule"]


def cel_violations(schema: Schema, doc: Any) -> list[str]:
    """``path: message`` for every rule DOC breaks on create, after defaulting; paths include
    fieldPath. Transition rules are skipped, as on create (tests/kube checks them for real)."""
    doc = apply_defaults(schema, doc)
    return [
        f"{site.path}{site.rule.get('fieldPath', '')}: {site.rule['message']}"
        for site in rule_sites(schema, doc)
        if not is_transition_rule(site.rule) and not evaluate_rule(site.rule["rule"], site.value)
    ]
