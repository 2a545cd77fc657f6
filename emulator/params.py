"""Coercion and checking of decoded request parameters."""

from __future__ import annotations

from typing import Any

from emulator.errors import StripeError, invalid, required, unknown_param

Params = dict[str, Any]


def check_known(params: Params, tree: Any, prefix: str = "") -> None:
    """Raise ``parameter_unknown`` for the first parameter the tree does not accept."""
    if not isinstance(tree, dict):
        return
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in tree:
            raise unknown_param(name)
        sub = tree[key]
        if isinstance(sub, dict):
            if isinstance(value, dict):
                check_known(value, sub, name)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        check_known(item, sub, f"{name}[{i}]")


def get_str(params: Params, name: str, default: str | None = None) -> str | None:
    """A string parameter ("" counts as given)."""
    value = params.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name}", param=name)
    return value


def need_str(params: Params, name: str) -> str:
    """A required non-empty string parameter."""
    value = get_str(params, name)
    if not value:
        raise required(name)
    return value


def get_int(params: Params, name: str, default: int | None = None) -> int | None:
    """An integer parameter ("" means unset)."""
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param=name) from None


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


def one_of(params: Params, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    """An enum parameter."""
    value = get_str(params, name, default)
    if value is not None and value not in allowed:
        raise StripeError(f"Invalid {name}: must be one of {', '.join(allowed)}", param=name)
    return value


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
