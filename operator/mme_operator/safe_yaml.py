"""YAML from users, loaded with limits: size, nesting depth, aliases and their expansion.

PyYAML's safe loader builds an alias as a shared reference, so a "billion laughs" document
costs little to load and everything to walk (validation, JSON encoding): nine aliases of
nine aliases of ... expand to 10^9 nodes. Here each node's expanded size is counted while
composing, so such a document is refused before anything walks it. The limits are far
above any real manifest: the API server refuses objects over about 1.5 MiB.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 1000
MAX_NODES = 1_000_000
"""Most nodes one document may hold once every alias is expanded."""


class YamlLimitError(yaml.YAMLError):
    """The document exceeds a limit; the message says which and where."""


class _LimitedLoader(yaml.SafeLoader):
    """The safe loader, counting depth, aliases and expanded nodes while it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        self._expanded: dict[int, int] = {}

    def compose_document(self) -> Any:
        self._depth = self._aliases = self._nodes = 0
        self._expanded = {}
        return super().compose_document()

    def _where(self) -> str:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        return f"line {mark.line + 1}, column {mark.column + 1}"

    def _count(self, nodes: int) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise YamlLimitError(
                f"at {self._where()}: more than {MAX_NODES} values once aliases are expanded "
                "(an alias bomb?)"
            )

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlLimitError(f"at {self._where()}: more than {MAX_ALIASES} aliases")
            anchor = self.peek_event().anchor  # type: ignore[no-untyped-call]
            anchored = self.anchors.get(anchor)
            if anchored is not None:
                if id(anchored) not in self._expanded:
                    # An alias inside its own anchor: a structure that contains itself.
                    raise YamlLimitError(f"at {self._where()}: alias *{anchor} refers to itself")
                self._count(self._expanded[id(anchored)])
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise YamlLimitError(f"at {self._where()}: nested deeper than {MAX_DEPTH} levels")
        self._depth += 1
        before = self._nodes
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._count(1)
        self._expanded[id(node)] = self._nodes - before
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # PyYAML keeps the last of two equal keys; Kubernetes' own YAML reader refuses them,
        # and a spec that silently loses one of them is not what its author reviewed.
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: the constructor reports it
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {str(key)[:60]!r} (first at line "
                        f"{first.start_mark.line + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> Any:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            # Python refuses to convert integers of more than 4300 digits (CVE-2020-10735).
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"an integer of {len(str(node.value))} characters is too large",
                node.start_mark,
            ) from None


_LimitedLoader.add_constructor("tag:yaml.org,2002:int", _LimitedLoader.construct_yaml_int)


def load_documents(text: str) -> list[Any]:
    """Every document of TEXT; raises ``yaml.YAMLError`` (a :class:`YamlLimitError` for limits)."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise YamlLimitError(f"{size} bytes; at most {MAX_BYTES} are read")
    loader = _LimitedLoader(text)
    try:
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
        return documents
    finally:
        loader.dispose()
