"""Load a spec file into models, reporting every error with file, line, column and field.

ruamel.yaml's round-trip loader keeps the position of every mapping key and sequence item;
pydantic reports each error with a location path. Joining the two gives positioned errors
for the whole file in one run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from provisioner.errors import PositionedError, SpecError
from provisioner.spec import fastyaml
from provisioner.spec.models import Spec
from provisioner.spec.semantics import check_semantics


def load_spec(path: Path | str) -> Spec:
    """Parse and validate the spec at ``path``; raise SpecError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(
            [PositionedError(str(path), None, None, "(file)", f"cannot read: {error.strerror}")]
        ) from error
    except UnicodeDecodeError as error:
        raise SpecError(
            [PositionedError(str(path), None, None, "(file)", f"not UTF-8 text: {error}")]
        ) from error
    return load_spec_text(text, str(path))


def load_spec_text(text: str, filename: str = "<spec>") -> Spec:
    fast = _load_fast(text, filename)
    if fast is not None:
        return fast

    # The spec is invalid: parse it again, keeping positions, to locate every error.
    document = _parse_yaml(text, filename)
    if not isinstance(document, CommentedMap):
        raise SpecError(
            [PositionedError(filename, 1, 1, "(document)", "the spec must be a YAML mapping")]
        )

    data = _plain(document)
    positioned: list[PositionedError] = []
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        items = _without_union_noise(error.errors())
        positioned = [_position(filename, document, item) for item in items]
        spec, index_maps = _partial_spec(data, error)
    else:
        index_maps = {}

    if spec is not None:
        spec.source = Path(filename)
        for loc, message in check_semantics(spec):
            loc = _original_loc(loc, index_maps)
            positioned.append(
                PositionedError(filename, *_locate(document, loc), _field(loc), message)
            )

    if positioned:
        positioned.sort(key=lambda e: (e.line or 0, e.column or 0))
        raise SpecError(positioned)
    assert spec is not None
    return spec


def _without_union_noise(items: list[Any]) -> list[Any]:
    """Drop the error of a union's plain-string branch when another branch explains more.

    For a field such as ``nameservers: [name | {name, addresses}]`` pydantic reports both
    branches; "Input should be a valid string" only distracts from the mapping's real error.
    """
    kept = []
    for item in items:
        loc = tuple(item["loc"])
        if item["type"] == "string_type" and loc and loc[-1] == "str":
            prefix = loc[:-1]
            if any(tuple(o["loc"])[: len(prefix)] == prefix and o is not item for o in items):
                continue
        kept.append(item)
    return kept


def _load_fast(text: str, filename: str) -> Spec | None:
    """Return the Spec when ``text`` is valid, else None; reads without positions, fast."""
    try:
        data = fastyaml.load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        spec = Spec.model_validate(data)
    except ValidationError:
        return None
    spec.source = Path(filename)
    if check_semantics(spec):
        return None
    return spec


# Sections whose items nothing else refers to: an invalid item can be left out, and the
# cross-section checks still run on the rest, so one run reports every error.
_LEAF_SECTIONS = ("mail_servers", "users")


def _partial_spec(
    data: dict[str, Any], error: ValidationError
) -> tuple[Spec | None, dict[str, list[int]]]:
    bad: dict[str, set[int]] = {section: set() for section in _LEAF_SECTIONS}
    for item in error.errors():
        loc = item["loc"]
        if len(loc) >= 2 and loc[0] in bad and isinstance(loc[1], int):
            bad[str(loc[0])].add(loc[1])
        else:
            return None, {}
    partial = dict(data)
    index_maps: dict[str, list[int]] = {}
    for section, indexes in bad.items():
        items = data.get(section)
        if not isinstance(items, list):
            continue
        kept = [i for i in range(len(items)) if i not in indexes]
        partial[section] = [items[i] for i in kept]
        index_maps[section] = kept
    try:
        return Spec.model_validate(partial), index_maps
    except ValidationError:
        return None, {}


def _original_loc(loc: tuple[Any, ...], index_maps: dict[str, list[int]]) -> tuple[Any, ...]:
    if len(loc) >= 2 and loc[0] in index_maps and isinstance(loc[1], int):
        return (loc[0], index_maps[loc[0]][loc[1]], *loc[2:])
    return loc


def _parse_yaml(text: str, filename: str) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        reason = error.problem or error.context or "invalid YAML"
        raise SpecError(
            [PositionedError(filename, line, column, "(yaml)", f"invalid YAML: {reason}")]
        ) from None
    except Exception as error:  # ruamel raises several unrelated types for bad input
        raise SpecError(
            [PositionedError(filename, None, None, "(yaml)", f"invalid YAML: {error}")]
        ) from None


def _plain(node: Any) -> Any:
    """Convert ruamel's commented containers to plain dicts and lists for pydantic."""
    if isinstance(node, CommentedMap):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(value) for value in node]
    if isinstance(node, str):
        return str(node)
    return node


def _field(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(document)"


def _locate(document: Any, loc: tuple[Any, ...]) -> tuple[int | None, int | None]:
    """Return the 1-based line and column of the deepest node of ``loc`` present in the file."""
    node = document
    line, column = 1, 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            key_line, key_column = node.lc.key(part)
            line, column = key_line + 1, key_column + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            item_line, item_column = node.lc.item(part)
            line, column = item_line + 1, item_column + 1
            node = node[part]
        else:
            break
    return line, column


def _position(filename: str, document: Any, item: Any) -> PositionedError:
    loc = _yaml_path(document, tuple(item["loc"]))
    line, column = _locate(document, loc)
    return PositionedError(filename, line, column, _field(loc), _message(item))


def _yaml_path(document: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the parts of a pydantic location that are not YAML keys.

    pydantic inserts union tags and validator names ("zonefile", "function-after[...]") into
    locations. A part is kept when the document has it at that point, or when it is the last
    part (a missing key is named by the error but absent from the file).
    """
    node = document
    kept: list[Any] = []
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if (
            isinstance(node, CommentedMap)
            and part in node
            or isinstance(node, CommentedSeq)
            and isinstance(part, int)
            and part < len(node)
        ):
            node = node[part]
            kept.append(part)
        elif last and not str(part).startswith(("function-", "tagged-union")):
            kept.append(part)
    return tuple(kept)


def _message(item: Any) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        return "unknown key; check the spelling against the schema (provisioner schema)"
    if kind == "missing":
        return "required key is missing"
    message = str(item["msg"])
    return message.removeprefix("Value error, ")
