"""Templates and known parameters generated from Stripe's OpenAPI subset.

``emulator/data/spec_data.json`` is written by ``python -m emulator.tools.generate vendor/stripe``
(see ``emulator/tools/generate.py``); the templates already carry every default field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_DATA: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "spec_data.json").read_text(encoding="utf-8")
)
API_VERSION: str = _DATA["api_version"]
_TEMPLATES: dict[str, dict[str, Any]] = _DATA["templates"]
PARAMS: dict[str, dict[str, Any]] = _DATA["params"]
EXPANDABLE: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in _DATA["expandable"].items()}


def copy_json(value: Any) -> Any:
    """Deep-copy a JSON-like value (faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: copy_json(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) if isinstance(v, dict | list) else v for v in value]
    return value


def template(kind: str, **fields: Any) -> dict[str, Any]:
    """A fresh copy of the example object of a kind (spec fields, defaults set), with ``fields``."""
    result: dict[str, Any] = copy_json(_TEMPLATES[kind])
    result.update(fields)
    return result


def known_params(method: str, route: str) -> Any:
    """The parameter tree accepted by an endpoint, or None when the spec lacks it."""
    return PARAMS.get(route, {}).get(method)
