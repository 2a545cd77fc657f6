"""Stripe's form encoding: nested ``a[b][0][c]=v`` keys to dicts and back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from emulator.shapes import Params


def _split(key: str) -> list[str]:
    """Split ``a[b][0][]`` into ``["a", "b", "0", ""]``."""
    i = key.find("[")
    if i <= 0 or not key.endswith("]"):
        return [key]
    parts = [key[:i]]
    parts.extend(key[i + 1 : -1].split("]["))
    return parts


def _listify(node: Any) -> Any:
    """Turn dicts keyed by indexes into lists, recursively."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, dict):
                node[k] = _listify(v)
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def decode_form(items: Iterable[tuple[str, str]]) -> Params:
    """Decode (key, value) pairs with nested keys into a nested dict of strings."""
    out: Params = {}
    nested = False
    for key, value in items:
        parts = _split(key)
        if len(parts) == 1:
            out[key] = value
            continue
        nested = True
        node: Any = out
        for j in range(len(parts) - 1):
            part = parts[j]
            nxt = node.get(part) if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
            if parts[j + 1] == "":
                parts[j + 1] = str(len(node))
        node[parts[-1]] = value
    return _listify(out) if nested else out


def decode_body(body: bytes) -> Params:
    """Decode an ``application/x-www-form-urlencoded`` body."""
    if not body:
        return {}
    return decode_form(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def decode_query(query: str) -> Params:
    """Decode a query string."""
    if not query:
        return {}
    return decode_form(parse_qsl(query, keep_blank_values=True))


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    """Append the form pairs of one value."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}[{k}]" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    elif value is None:
        out.append((prefix, ""))
    else:
        out.append((prefix, str(value)))


def encode_pairs(params: Params) -> list[tuple[str, str]]:
    """Flatten a nested dict into Stripe's form pairs."""
    out: list[tuple[str, str]] = []
    _flatten("", params, out)
    return out


def encode_form(params: Params) -> str:
    """Encode a nested dict as a form body."""
    return urlencode(encode_pairs(params))
