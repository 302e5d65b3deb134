"""`validate` and `render` on generated bad documents: exit 0 or 2, never a traceback.

Seeded hypothesis runs: good documents broken at random places (values of any YAML type,
non-string keys, dates, huge numbers, deleted and misspelt fields, `kind: List` wrappers) and
raw YAML-ish text. Every run goes through the CLI's `main`, the code a user's shell runs.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from mme_operator.cli import main

from tests.unit.api.documents import GOOD, MINIMAL

EXAMPLES = 1000
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**63 - 1, 2**63, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "KIND_GPU", "vllm", "aws:x", "ml.g5.12xlarge", "24.09", "a" * 300]),
    st.sampled_from(["\ud800", "x\udfff", "\x00", "\u2028", "\U0001f642"]),
    st.dates(),
    st.datetimes(),
    st.binary(max_size=8),
)
KEYS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a.b", "[0]", ""]),
    st.sampled_from(["spek", "nmae", "name", "spec", "metadata", "gpus", "items", "kind"]),
    st.integers(min_value=-5, max_value=5),
    st.booleans(),
    st.dates(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into NODE (dict keys and list indices), the root included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found += paths(child, (*prefix, i))
    return found


@st.composite
def broken_documents(draw: st.DrawFn) -> Any:
    doc: Any = yaml.safe_load(yaml.safe_dump(draw(st.sampled_from([GOOD, MINIMAL]))))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.sampled_from(paths(doc)))
        if not where:
            continue
        parent = doc
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent[where[-1]], dict):
            parent[where[-1]][draw(KEYS)] = draw(VALUES)
    wrap = draw(st.sampled_from(["plain", "list", "list-of-junk"]))
    if wrap == "list":
        return {"apiVersion": "v1", "kind": "List", "items": [doc]}
    if wrap == "list-of-junk":
        return {"apiVersion": "v1", "kind": "List", "items": draw(VALUES)}
    return doc


YAML_TEXT = st.lists(
    st.sampled_from(
        [
            "apiVersion: mme-operator.io/v1alpha1\n",
            "kind: ModelEndpoint\n",
            "kind: List\n",
            "items:\n",
            "- ",
            "  ",
            "metadata: {name: x}\n",
            "spec:\n",
            "&a ",
            "*a ",
            "!!binary ",
            "!!python/object ",
            "[",
            "]",
            "{",
            "}",
            ": ",
            "---\n",
            "2024-01-01: x\n",
            "? ",
            "'",
            '"',
            "\t",
            "models: [{name: m}]\n",
        ]
    ),
    max_size=30,
).map("".join)


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def check(path: Path, out: Path, text: str, *, render: bool = False) -> None:
    """Validate TEXT, and render it when it is valid (or when RENDER says so)."""
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for argv in (["validate", "-f", str(path)], ["render", "-f", str(path), "-o", str(out)]):
        if argv[0] == "render" and not render:
            break
        code, err = run(argv)
        render = render or code == 0
        assert code in (0, 2), (argv, text, err)
        assert "Traceback" not in err
        lines = err.splitlines()
        assert (code == 0) == (not [line for line in lines if not line.startswith("note: ")])
        # One problem per line, each naming a document or the file.
        assert all(line.split(": ", 1)[0] for line in lines), err


def test_generated_bad_documents_never_crash(tmp_path: Path) -> None:
    count = 0
    started = time.monotonic()

    @seed(20261125)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(doc=broken_documents())
    def documents(doc: Any) -> None:
        nonlocal count
        count += 1
        check(tmp_path / "in.yaml", tmp_path / "out", yaml.safe_dump(doc, allow_unicode=True))

    documents()
    assert count >= EXAMPLES
    assert time.monotonic() - started < 60


def test_generated_yaml_text_never_crashes(tmp_path: Path) -> None:
    @seed(20261126)
    @settings(max_examples=300, deadline=None, database=None)
    @given(text=YAML_TEXT)
    def texts(text: str) -> None:
        check(tmp_path / "in.yaml", tmp_path / "out", text, render=True)

    texts()


def test_the_reported_crashes_are_problems(tmp_path: Path) -> None:
    """The inputs that crashed before: each gets exit 2 and a line naming the field."""
    base = yaml.safe_load(yaml.safe_dump(GOOD))
    cases: list[tuple[Any, str]] = [
        ({**base, "metadata": {"name": 5}}, "metadata.name: must be a string"),
        ({**base, "metadata": {"name": "x", "namespace": ["a"]}}, "metadata.namespace: must be"),
        ({**base, "metadata": {"name": "x", "labels": {"a": 1}}}, "metadata.labels.a: value must"),
        (
            {**base, "metadata": {"name": "x", "annotations": "no"}},
            "metadata.annotations: expected",
        ),
        ({**base, "metadata": {"name": "x", "nmae": "y"}}, "metadata.nmae: unknown field (did you"),
        ({**base, "spek": base["spec"]}, "spek: unknown field (did you mean 'spec'?)"),
    ]
    dated = yaml.safe_load(yaml.safe_dump(GOOD))
    dated["spec"]["models"][1]["parameters"] = {datetime.date(2024, 1, 1): "x"}
    cases.append((dated, "spec.models[1].parameters: key 2024-01-01 is a date, not a string"))
    for doc, expected in cases:
        (tmp_path / "in.yaml").write_text(yaml.safe_dump(doc))
        code, err = run(["validate", "-f", str(tmp_path / "in.yaml")])
        assert code == 2 and expected in err, (expected, err)
    # A malformed status is ignored, as the API server ignores status on create and update.
    (tmp_path / "in.yaml").write_text(yaml.safe_dump({**base, "status": {"phase": 5}}))
    assert run(["validate", "-f", str(tmp_path / "in.yaml")]) == (0, "")


def test_a_list_from_kubectl_get_is_read(tmp_path: Path) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": [GOOD, MINIMAL]}
    (tmp_path / "in.yaml").write_text(yaml.safe_dump(items))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["validate", "-f", str(tmp_path / "in.yaml")]) == 0
    assert out.getvalue().splitlines() == ["ok: ml/small-llms", "ok: default/tiny"]


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """ "Billion laughs" inside a spec: 9 aliases of 9 aliases ... expand to 9^9 values."""
    text = "apiVersion: mme-operator.io/v1alpha1\nkind: ModelEndpoint\nmetadata: {name: x}\n"
    text += "spec:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in range(1, 10):
        prev, name = chr(96 + level), chr(97 + level)
        text += f"  {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    (tmp_path / "bomb.yaml").write_text(text)
    started = time.monotonic()
    code, err = run(["validate", "-f", str(tmp_path / "bomb.yaml")])
    assert time.monotonic() - started < 5
    assert code == 2
    assert "values once aliases are expanded" in err and len(err.splitlines()) == 1
