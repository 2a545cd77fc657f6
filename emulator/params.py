"""Coercion and checking of decoded request parameters."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, overload

from emulator.errors import (
    StripeError,
    empty_string,
    invalid,
    one_of_error,
    required,
    unknown_param,
)
from emulator.shapes import Params

Node = dict[str, Any]


def check_params(params: Params, node: Node) -> None:
    """Raise Stripe's 400 for the first parameter the spec node rejects."""
    _check_object(params, node, "")


def _child(prefix: str, key: str | int) -> str:
    """``a`` + ``b`` -> ``a[b]`` (just ``b`` at the top level)."""
    return f"{prefix}[{key}]" if prefix else str(key)


def _check_value(value: Any, node: Node, name: str) -> None:
    """Check one value (names, types, enums, lengths, required keys) against its node."""
    types = node.get("t")
    if not types:
        return
    if isinstance(value, dict):
        if "object" not in types:
            raise _wrong_type(node, json.dumps(value), name)
        _check_object(value, node, name)
    elif isinstance(value, list):
        if "array" not in types:
            raise _wrong_type(node, json.dumps(value), name)
        items = node.get("i") or {}
        for i, item in enumerate(value):
            _check_value(item, items, _child(name, i))
    else:
        _check_scalar(str(value), node, name)


def _check_object(value: Params, node: Node, name: str) -> None:
    """Check a hash: unknown keys, each value, required keys."""
    props: Node | None = node.get("p")
    if props is None:
        values = node.get("a")
        if values:
            for key, item in value.items():
                _check_value(item, values, _child(name, key))
        return
    for key, item in value.items():
        sub = props.get(key)
        if sub is None:
            raise unknown_param(_child(name, key))
        _check_value(item, sub, _child(name, key))
        if key == "metadata" and isinstance(item, dict):
            _check_metadata(item, _child(name, key))
    for key in node.get("r", ()):
        if key not in value:
            raise required(_child(name, key))


METADATA_KEYS = 50
METADATA_KEY_LENGTH = 40
METADATA_VALUE_LENGTH = 500


def _check_metadata(value: Params, name: str) -> None:
    """Stripe's metadata limits: up to 50 keys, keys up to 40 characters, values up to 500."""
    for key, item in value.items():
        if len(key) > METADATA_KEY_LENGTH:
            raise invalid(
                f"Metadata keys can have up to {METADATA_KEY_LENGTH} characters, but you passed "
                f"in a key that is {len(key)} characters. Invalid key: {key}",
                _child(name, key),
            )
        if isinstance(item, str) and len(item) > METADATA_VALUE_LENGTH:
            raise invalid(
                f"Metadata values can have up to {METADATA_VALUE_LENGTH} characters, but you "
                f"passed in a value that is {len(item)} characters. Invalid value: {item}",
                _child(name, key),
            )
    _check_metadata_count(value, name)


def _check_metadata_count(value: Params, name: str) -> None:
    """At most 50 metadata keys set ("" unsets a key)."""
    count = sum(1 for item in value.values() if item != "")
    if count > METADATA_KEYS:
        raise invalid(
            f"Metadata can have up to {METADATA_KEYS} keys, but you've set {count}. Email us at "
            "support+metadata@stripe.com for more information.",
            name,
        )


def check_metadata_update(current: Params, params: Params) -> None:
    """The 50-key limit on the metadata an update leaves (current keys merged with new ones)."""
    update = params.get("metadata")
    if isinstance(update, dict):
        _check_metadata_count({**current, **update}, "metadata")


_SCALARS: dict[str, Callable[[str], object]] = {
    "integer": re.compile(r"-?\d+").fullmatch,
    "number": re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?").fullmatch,
    "boolean": ("true", "false").__contains__,
}


def _check_scalar(text: str, node: Node, name: str) -> None:
    """Check a form value against the node's scalar types."""
    enum: list[str] | None = node.get("e")
    types: list[str] = node["t"]
    if text == "":
        if (enum is None and "string" in types) or (enum is not None and "" in enum):
            return
        raise empty_string(name)
    for kind in types:
        if kind == "string":
            if enum is None and len(text) <= node.get("m", len(text)):
                return
            if enum is not None and text in enum:
                return
        elif kind in _SCALARS and _SCALARS[kind](text):
            return
    raise _wrong_type(node, text, name)


def _wrong_type(node: Node, text: str, name: str) -> StripeError:
    """Stripe's message for a value of the wrong type, enum or length."""
    types: list[str] = node["t"]
    enum = [v for v in node.get("e", ()) if v != ""]
    if "string" in types and enum:
        return one_of_error(name, enum)
    if "string" in types and len(text) > node.get("m", len(text)):
        shown = text if len(text) <= 40 else text[:40] + "..."
        return invalid(f"Invalid string: {shown}; must be at most {node['m']} characters", name)
    unset_only = "e" in node and not enum  # ``anyOf: [..., {"enum": [""]}]``
    kind = next((t for t in types if t != "string"), "string") if unset_only else types[0]
    if kind in ("object", "array"):
        return invalid("Invalid hash" if kind == "object" else "Invalid array", name)
    return invalid(f"Invalid {'decimal' if kind == 'number' else kind}: {text}", name)


def get_str(params: Params, name: str, default: str | None = None) -> str | None:
    """A string parameter ("" counts as given)."""
    value = params.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name}", param=name)
    return value


def need_str(params: Params, name: str, param: str | None = None) -> str:
    """A required non-empty string parameter (``param``: its full name in the error)."""
    value = get_str(params, name)
    if not value:
        raise required(param or name)
    return value


@overload
def get_int(params: Params, name: str, default: int, param: str | None = None) -> int: ...
@overload
def get_int(
    params: Params, name: str, default: None = None, param: str | None = None
) -> int | None: ...
def get_int(
    params: Params, name: str, default: int | None = None, param: str | None = None
) -> int | None:
    """An integer parameter ("" means unset; ``param``: its full name in the error)."""
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param=param or name) from None


def positive_int(params: Params, name: str, param: str | None = None) -> int | None:
    """An integer parameter of at least 1 (None when absent), as Stripe checks a quantity.

    Below 1: Stripe's 400 ``parameter_invalid_integer`` "This value must be greater than or
    equal to 1.", ``param`` naming it (e.g. ``line_items[0][quantity]``).
    """
    value = get_int(params, name, None, param)
    if value is not None and value < 1:
        raise invalid(
            "This value must be greater than or equal to 1.",
            param=param or name,
            code="parameter_invalid_integer",
        )
    return value


def get_bool(params: Params, name: str, default: bool | None = None) -> bool | None:
    """A boolean parameter: ``true``/``false``."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid(f"Invalid boolean: {value}", param=name)


def get_dict(params: Params, name: str) -> Params:
    """A hash parameter, {} when absent or empty."""
    value = params.get(name)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {name}", param=name)
    return value


def get_list(params: Params, name: str) -> list[Any]:
    """An array parameter, [] when absent or empty."""
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return list(value.values())
    if not isinstance(value, list):
        return [value]
    return value


def one_of(
    params: Params, name: str, allowed: tuple[str, ...], default: str | None, prefix: str = ""
) -> str | None:
    """An enum parameter; ``prefix`` is the bracketed name of the hash holding it."""
    value = get_str(params, name, default)
    if value is not None and value not in allowed:
        raise one_of_error(_child(prefix, name), allowed)
    return value


Reader = Callable[[Params, str], Any]


def as_text(params: Params, name: str) -> str | None:
    """A string parameter, None when empty."""
    return get_str(params, name) or None


def as_flag(params: Params, name: str) -> bool:
    """A boolean parameter."""
    return bool(get_bool(params, name))


def as_strings(params: Params, name: str) -> list[str]:
    """An array parameter, as strings."""
    return [str(x) for x in get_list(params, name)]


def as_enum(allowed: tuple[str, ...], prefix: str = "") -> Reader:
    """A reader of an enum parameter of the hash ``prefix``."""
    return lambda params, name: one_of(params, name, allowed, None, prefix)


def assign(target: Params, params: Params, **readers: Reader) -> None:
    """Set each parameter given in ``params`` on ``target``, as its reader reads it."""
    for name, read in readers.items():
        if name in params:
            target[name] = read(params, name)


def apply_metadata(target: dict[str, Any], params: Params, name: str = "metadata") -> None:
    """Merge ``metadata`` like Stripe: "" clears everything, an empty value removes a key."""
    if name not in params:
        return
    value = params[name]
    current = target.get(name) or {}
    if value == "":
        target[name] = {}
        return
    if not isinstance(value, dict):
        raise invalid("Invalid hash: metadata", param=name)
    merged = dict(current)
    for k, v in value.items():
        if v == "":
            merged.pop(k, None)
        else:
            merged[k] = str(v)
    target[name] = merged


def expand_list(params: Params) -> list[str]:
    """The ``expand[]`` parameter as a list of paths."""
    return [str(x) for x in get_list(params, "expand")]
