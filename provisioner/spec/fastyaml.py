"""A fast YAML 1.2 loader for large specs, on PyYAML's C parser (libyaml).

ruamel.yaml's round-trip loader keeps positions but is slow (minutes for a spec of 100,000
users); PyYAML's C loader is several times faster. The loader reads specs with it first and
falls back to ruamel.yaml only to position the errors of an invalid spec. The two must agree
on every value, so this loader resolves plain scalars by the YAML 1.2 core schema, as
ruamel.yaml does. So `yes`, `no`, `on` and `off` stay strings and `010` is decimal 10. `1:20` is
a string, not the sexagesimal 80 of YAML 1.1. Duplicate mapping keys are errors.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_LOADER_BASE: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKeyError(yaml.MarkedYAMLError):
    pass


class CoreSchemaLoader(_LOADER_BASE):  # type: ignore[misc, valid-type]
    """Safe loading with YAML 1.2 core-schema scalars and duplicate-key detection."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _resolver(tag: str, pattern: str, first: str) -> None:
    CoreSchemaLoader.add_implicit_resolver(tag, re.compile(pattern, re.X), list(first))


_resolver("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF")
_resolver(
    "tag:yaml.org,2002:int",
    r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$",
    "-+0123456789",
)
_resolver(
    "tag:yaml.org,2002:float",
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    "-+0123456789.",
)
_resolver("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""])  # type: ignore[arg-type]


def _construct_int(loader: CoreSchemaLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


CoreSchemaLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load(text: str) -> Any:
    """Parse ``text``; raise yaml.YAMLError (with a mark) on invalid YAML or a duplicate key."""
    return yaml.load(text, Loader=CoreSchemaLoader)  # noqa: S506 - a safe loader subclass
