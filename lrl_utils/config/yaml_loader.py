"""YAML reading for params: PyYAML's safe loader (libyaml's parser where available), plus an error for a key
given twice in one mapping.

PyYAML keeps the last of two equal keys without a word, so a profile with `max_steps` twice in one section
would silently run with the second. `load` composes the document, walks every mapping (nested ones and those
inside lists too) and raises `DuplicateKey` (with the line, the key's dotted path and the first occurrence)
before constructing anything. YAML merge keys (`<<: *anchor`) may be overridden by explicit keys, as the YAML
merge spec allows; two explicit equal keys are an error.
"""

from __future__ import annotations

from typing import IO, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml's parser where PyYAML was built with it (the same documents, nodes and marks, about 5x faster: every
# notebook reads the registries when it starts); the pure-Python one otherwise
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKey(yaml.YAMLError):
    """A mapping holds the same key twice; `line` (1-based) is the second occurrence's."""

    def __init__(self, path: str, line: int, first_line: int):
        super().__init__(f"duplicate key `{path}` (first at line {first_line})")
        self.path, self.line, self.first_line = path, line, first_line


def load(stream: str | IO[str]) -> Any:
    """The document of `stream` as `yaml.safe_load` reads it; raises `DuplicateKey` or another `yaml.YAMLError`."""
    loader = _LOADER(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check(node, loader, "", set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _key(node: Node, loader: yaml.SafeLoader) -> Any:
    """A comparable form of a mapping key: its value for a scalar (`1` and `0x1` are equal keys), else the node."""
    if isinstance(node, ScalarNode):
        try:
            value = loader.construct_object(node, deep=True)
            hash(value)
            return ("value", value)
        except (yaml.YAMLError, TypeError):
            return ("text", node.tag, node.value)
    return ("node", id(node))


def _check(node: Node, loader: yaml.SafeLoader, path: str, seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias of a node already walked (or a recursive one)
        return
    seen_nodes.add(id(node))
    if isinstance(node, MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value) if isinstance(key_node, ScalarNode) else "<key>"
            child = f"{path}.{name}" if path else name
            if key_node.tag != MERGE_TAG:
                key = _key(key_node, loader)
                line = key_node.start_mark.line + 1
                if key in first:
                    raise DuplicateKey(child, line, first[key])
                first[key] = line
            _check(value_node, loader, child, seen_nodes)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _check(item, loader, f"{path}[{i}]", seen_nodes)
