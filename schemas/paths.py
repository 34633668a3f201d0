"""The request paths of the catalog: where an endpoint keeps its prompt and images, read and written.

A path is dotted names, each optionally followed by selectors:

    input.prompt                          the value of a field
    input.images                          a field holding a list (its items are the images)
    input.messages[0].content[text]       [0]: an item of a list; [text]: the `text` of every
                                          item of a list that has one

so one function reads (or builds) the body of any endpoint, and no code branches on which
endpoint it is.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

_STEP = re.compile(r"([^.\[\]]+)((?:\[[^\]]+\])*)")
_SELECTOR = re.compile(r"\[([^\]]+)\]")


@lru_cache(maxsize=256)  # a catalog has a handful of paths, read on every request
def _steps(path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(_SELECTOR.findall(selectors))) for name, selectors in _STEP.findall(path))


def values_at(body: Any, path: str) -> list[Any]:
    """Every value at `path` (none when something on the way is missing or of another type)."""
    nodes = [body]
    for name, selectors in _steps(path):
        nodes = [node[name] for node in nodes if isinstance(node, dict) and name in node]
        for selector in selectors:
            if selector.isdigit():
                index = int(selector)
                nodes = [node[index] for node in nodes if isinstance(node, list) and index < len(node)]
            else:
                nodes = [item[selector] for node in nodes if isinstance(node, list)
                         for item in node if isinstance(item, dict) and selector in item]
    return nodes


def items_at(body: Any, path: str) -> list[Any]:
    """The items a path names: each value of a trailing [key] selector, or the elements of the list
    a plain path points at (`input.images`)."""
    found = values_at(body, path)
    if not path.endswith("]") and len(found) == 1 and isinstance(found[0], list):
        return list(found[0])
    return found


def get_path(body: Any, dotted: str) -> Any:
    """The value at a plain dotted path ("parameters.size") of a request body, or None."""
    found = values_at(body, dotted)
    return found[0] if found else None


def is_field(path: str) -> bool:
    """A plain field (one value of its own), not values picked out of a list."""
    return "[" not in path


def _container(body: dict[str, Any], path: str) -> tuple[Any, str, tuple[str, ...]]:
    """The object holding the last step of `path` (made on the way where missing), its name and selectors."""
    steps = _steps(path)
    node: Any = body
    for name, selectors in steps[:-1]:
        node = node.setdefault(name, {} if not selectors else [])
        for selector in selectors:
            node = node[int(selector)]
    name, selectors = steps[-1]
    return node, name, selectors


def put_at(body: dict[str, Any], path: str, values: list[Any]) -> None:
    """Write `values` at `path`: a plain field gets the one value, or all of them if it already
    holds a list (the endpoint's template has `"images": []`); a trailing [key] selector appends
    {key: value} items to the list."""
    node, name, selectors = _container(body, path)
    if not selectors:
        node[name] = values[0] if len(values) == 1 and not isinstance(node.get(name), list) else list(values)
        return
    target: Any = node.setdefault(name, [])
    for selector in selectors[:-1]:
        target = target[int(selector)]
    target.extend({selectors[-1]: value} for value in values)


def remove_at(body: dict[str, Any], path: str) -> None:
    """Delete what `path` names (a field, or the items with that key)."""
    node, name, selectors = _container(body, path)
    if not selectors:
        node.pop(name, None)
        return
    target: Any = node.get(name, [])
    for selector in selectors[:-1]:
        target = target[int(selector)]
    target[:] = [item for item in target if not (isinstance(item, dict) and selectors[-1] in item)]


def build(template: dict[str, Any], fields: list[tuple[str | None, list[Any]]]) -> dict[str, Any]:
    """A body from an endpoint's template and (path, values) pairs, written in order."""
    body = copy.deepcopy(template)
    for path, values in fields:
        if path and values:
            put_at(body, path, values)
    return body


def schema_at(path: str, count: tuple[int, int], item: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema holding what `path` names (items_at) to `count` (min, max) of them, each
    valid against `item`: for a trailing [key] selector, the list's items that have the key (their
    values checked); for a plain path, the list it points at. A [0] selector constrains every item
    of its list, which is the same where the list holds one item (the request schemas allow one)."""
    steps = _steps(path)
    name, selectors = steps[-1]
    low, high = count
    node: dict[str, Any]
    if selectors and not selectors[-1].isdigit():
        key, selectors = selectors[-1], selectors[:-1]
        node = ({"items": {"properties": {key: False}}} if high == 0 else
                {"contains": {"required": [key]}, "minContains": low, "maxContains": high, "items": {"properties": {key: item}}})
    else:
        node = {"minItems": low, "maxItems": high, "items": item}
    for step_name, step_selectors in [*steps[:-1], (name, selectors)][::-1]:
        for _ in step_selectors:
            node = {"items": node}
        node = {"properties": {step_name: node}}
    return node
