"""Validate Stripe-shaped JSON objects and form requests against Stripe's OpenAPI spec (stdlib).

The spec (``openapi-subset.json``) and Stripe's example objects (``fixtures3.json``) are
Stripe's (MIT, see ``vendor/stripe/LICENSE``) and live in ``vendor/stripe`` in this
repository; set ``STRIPE_SPEC_DIR`` to point elsewhere.

Spec conventions honoured here:

* ``$ref`` always points into ``#/components/schemas``; OpenAPI 3.0 ignores siblings of a
  ``$ref``, so Stripe wraps nullable references as ``{"anyOf": [{"$ref": ...}], "nullable": true}``.
* Expandable fields (listed in ``x-expandableFields``) are spelled out as
  ``anyOf: [{"type": "string"}, {"$ref": <resource>}, ...]``; so an id string or the expanded
  object both validate. Fields listed there whose schema is a bare ``$ref`` (e.g.
  ``subscription_item.price``) are always returned expanded by Stripe and must be objects.
* Objects with ``properties`` are closed (unknown keys are reported) unless
  ``additionalProperties`` says otherwise; ``{"type": "object"}`` alone is free-form;
  ``additionalProperties: <schema>`` (metadata) checks values only.
* ``event.data.object`` is free-form in the spec; it is additionally validated against the
  schema named by its ``object`` tag (``deleted_<tag>`` if ``deleted``) when the spec has one.
* Request params arrive form-encoded, so in request mode every scalar is compared as a string
  ("true"/"false", "42"); names, enums, required keys and ``maxLength`` stay strict.
  ``{"enum": [""]}`` branches (Stripe's "unset" value) are just enums.
* ``format`` (unix-time, currency, decimal) and ``x-stripeBypassValidation`` are not enforced;
  enums are checked strictly even where Stripe bypasses validation.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FIXTURE_KNOWN_DRIFT",
    "decode_form",
    "encode_form",
    "fixture",
    "known_params",
    "load_fixtures",
    "load_spec",
    "match_path",
    "schema_for_response",
    "spec_dir",
    "validate_fixture",
    "validate_object",
    "validate_request",
    "validate_response",
]

Schema = dict[str, Any]

_REF_PREFIX = "#/components/schemas/"
_INT_RE = re.compile(r"-?\d+")
_NUM_RE = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_KEY_RE = re.compile(r"\[([^\[\]]*)\]")

# Fields of Stripe's example fixtures (fixtures3.json) that disagree with the spec version
# shipped next to them. Keys are fixture kinds, values map a reported location to the reason.
# validate_fixture() drops exactly these problems; anything else is still reported.
_LEGACY = "legacy field in fixtures3.json, absent from spec 2026-05-27.dahlia"
FIXTURE_KNOWN_DRIFT: dict[str, dict[str, str]] = {
    "product": {"product.type": _LEGACY + " (good/service)"},
    "price": {"price.recurring.trial_period_days": _LEGACY + " (legacy plan field)"},
    "subscription_item": {
        "subscription_item.plan": _LEGACY + " (items expose only `price` now)",
        "subscription_item.price.recurring.trial_period_days": _LEGACY,
    },
    "subscription": {
        "subscription.invoice_settings.custom_fields": _LEGACY,
        "subscription.invoice_settings.description": _LEGACY,
        "subscription.invoice_settings.footer": _LEGACY,
        "subscription.items.data[0].plan": _LEGACY,
        "subscription.items.data[0].price.recurring.trial_period_days": _LEGACY,
    },
    "invoice": {
        "invoice.subscription": _LEGACY + " (moved to parent.subscription_details.subscription)",
        "invoice.amount_paid_off_stripe": "required by the spec, newer than the fixture",
    },
}


def spec_dir() -> Path:
    """Directory holding openapi-subset.json and fixtures3.json (STRIPE_SPEC_DIR overrides)."""
    env = os.environ.get("STRIPE_SPEC_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "vendor" / "stripe"


@functools.cache
def _load_json(path: str) -> dict[str, Any]:
    """Parse a JSON file once per path."""
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def load_spec() -> dict[str, Any]:
    """Return the parsed OpenAPI spec (cached; do not mutate)."""
    return _load_json(str(spec_dir() / "openapi-subset.json"))


def load_fixtures() -> dict[str, Any]:
    """Return the parsed fixtures3.json ({"resources": {...}}; cached; do not mutate)."""
    return _load_json(str(spec_dir() / "fixtures3.json"))


def fixture(kind: str) -> dict[str, Any]:
    """Return Stripe's example object for a resource kind such as "customer" (do not mutate)."""
    obj: dict[str, Any] = load_fixtures()["resources"][kind]
    return obj


def _schemas() -> dict[str, Schema]:
    """Return components/schemas."""
    schemas: dict[str, Schema] = load_spec()["components"]["schemas"]
    return schemas


def _resolve(schema: Schema) -> Schema:
    """Follow $ref chains into components/schemas."""
    while "$ref" in schema:
        ref: str = schema["$ref"]
        if not ref.startswith(_REF_PREFIX):
            raise ValueError(f"unsupported $ref {ref!r}")
        schema = _schemas()[ref[len(_REF_PREFIX) :]]
    return schema


# --------------------------------------------------------------------------- core validator


def _sub(where: str, key: str | int, req: bool) -> str:
    """Location of a child: `a.b[0]` for objects, `a[b][0]` for form params."""
    if isinstance(key, int) or req:
        return f"{where}[{key}]" if where else str(key)
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    """JSON type name of a Python value (bool is not an integer)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _form_str(value: Any) -> str:
    """Render a scalar the way it travels in a form body."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_ok(typ: str | None, value: Any, req: bool) -> bool:
    """Whether value has JSON type typ (form strings coerce in request mode)."""
    if typ is None:
        return True
    if req and isinstance(value, str | int | float | bool) and typ != "string":
        text = _form_str(value)
        if typ == "integer":
            return _INT_RE.fullmatch(text) is not None
        if typ == "number":
            return _NUM_RE.fullmatch(text) is not None
        if typ == "boolean":
            return text in ("true", "false")
    if req and typ == "string" and isinstance(value, int | float | bool):
        return True
    kind = _kind(value)
    return kind == typ or (typ == "number" and kind == "integer")


def _describe(schema: Schema) -> str:
    """Short human name of a schema branch."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "enum" in schema:
        return f"enum {schema['enum']!r}"
    if "anyOf" in schema:
        return " | ".join(_describe(s) for s in schema["anyOf"])
    return str(schema.get("type", "any"))


def _object_tag(schema: Schema) -> list[Any]:
    """Allowed values of the `object` discriminator of an object schema, if any."""
    prop = (schema.get("properties") or {}).get("object")
    if isinstance(prop, dict):
        return list(_resolve(prop).get("enum") or [])
    return []


def _check(schema: Schema, value: Any, where: str, req: bool) -> list[str]:
    """Validate value against schema; return problems prefixed by their location."""
    schema = _resolve(schema)
    label = where or "(root)"
    if value is None and not req:
        if schema.get("nullable") or any(
            _resolve(b).get("nullable") for b in schema.get("anyOf", ())
        ):
            return []
        return [f"{label}: null is not allowed (not nullable, expected {_describe(schema)})"]
    if "anyOf" in schema:
        return _check_any_of(schema["anyOf"], value, where, req)
    typ = schema.get("type")
    if not _type_ok(typ, value, req):
        return [f"{label}: expected {typ}, got {_kind(value)} {value!r:.60}"]
    if "enum" in schema:
        allowed = schema["enum"]
        ok = _form_str(value) in {_form_str(e) for e in allowed} if req else value in allowed
        if not ok:
            return [f"{label}: {value!r} is not one of enum {allowed!r}"]
    if isinstance(value, str):
        max_len = schema.get("maxLength")
        if max_len is not None and len(value) > max_len:
            return [f"{label}: string longer than maxLength {max_len}"]
        pattern = schema.get("pattern")
        if pattern and re.search(pattern, value) is None:
            return [f"{label}: {value!r} does not match pattern {pattern!r}"]
    if typ == "array" and isinstance(value, list):
        items = schema.get("items") or {}
        return [e for i, v in enumerate(value) for e in _check(items, v, _sub(where, i, req), req)]
    if isinstance(value, dict) and typ in ("object", None):
        return _check_object(schema, value, where, req)
    return []


def _check_object(schema: Schema, value: dict[str, Any], where: str, req: bool) -> list[str]:
    """Validate required, known and additional properties of an object."""
    props: dict[str, Schema] | None = schema.get("properties")
    extra = schema.get("additionalProperties")
    if schema is _schemas().get("notification_event_data"):
        problems = _check_event_payload(value.get("object"), _sub(where, "object", req))
    else:
        problems = []
    problems += [
        f"{_sub(where, name, req)}: missing required {'parameter' if req else 'field'}"
        for name in schema.get("required", ())
        if name not in value
    ]
    for key, item in value.items():
        if props is not None and key in props:
            problems += _check(props[key], item, _sub(where, key, req), req)
        elif isinstance(extra, dict):
            problems += _check(extra, item, _sub(where, key, req), req)
        elif extra is True or (props is None and extra is None):
            continue  # free-form object such as event.data.object
        elif req:
            problems.append(f"Received unknown parameter: {_sub(where, key, req)}")
        else:
            problems.append(f"{_sub(where, key, req)}: unknown field (not in schema)")
    return problems


def _check_event_payload(obj: Any, where: str) -> list[str]:
    """Validate an event's data.object against its own resource schema when the spec has it."""
    if not isinstance(obj, dict) or not isinstance(obj.get("object"), str):
        return []
    name = ("deleted_" if obj.get("deleted") is True else "") + obj["object"]
    schema = _schemas().get(name)
    return [] if schema is None else _check(schema, obj, where, req=False)


def _check_any_of(branches: list[Schema], value: Any, where: str, req: bool) -> list[str]:
    """Valid if any branch is; otherwise report the closest branch's problems."""
    candidates = [b for b in branches if _type_ok(_resolve(b).get("type"), value, req)]
    if isinstance(value, dict) and "object" in value:  # Stripe's discriminators: object, deleted
        tagged = [b for b in candidates if value["object"] in _object_tag(_resolve(b))]
        deleted = value.get("deleted") is True
        same = [b for b in tagged if ("deleted" in _resolve(b).get("properties", {})) == deleted]
        candidates = same or tagged or candidates
    if not candidates:
        alts = ", ".join(_describe(b) for b in branches)
        return [f"{where or '(root)'}: expected one of [{alts}], got {_kind(value)} {value!r:.60}"]
    best: list[str] | None = None
    for branch in candidates:
        problems = _check(branch, value, where, req)
        if not problems:
            return []
        if best is None or len(problems) < len(best):
            best = problems
    return best or []


# --------------------------------------------------------------------------- objects


def validate_object(schema_name: str, obj: Any) -> list[str]:
    """Validate a response-style JSON object against components/schemas[schema_name]."""
    schemas = _schemas()
    if schema_name not in schemas:
        raise KeyError(f"no schema named {schema_name!r} in the Stripe spec")
    return _check(schemas[schema_name], obj, schema_name, req=False)


def validate_fixture(kind: str) -> list[str]:
    """Validate Stripe's fixture for kind, minus the documented FIXTURE_KNOWN_DRIFT entries."""
    drift = FIXTURE_KNOWN_DRIFT.get(kind, {})
    return [p for p in validate_object(kind, fixture(kind)) if p.split(":", 1)[0] not in drift]


# --------------------------------------------------------------------------- paths


@functools.cache
def _templates() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Spec path templates split into segments, most literal segments first."""
    split = [(t, tuple(t.strip("/").split("/"))) for t in load_spec()["paths"]]
    return tuple(sorted(split, key=lambda ts: -sum(not s.startswith("{") for s in ts[1])))


def match_path(path: str) -> tuple[str, dict[str, str]]:
    """Find the spec template for a concrete path; return (template, path params)."""
    segs = tuple(path.split("?", 1)[0].strip("/").split("/"))
    for template, tsegs in _templates():
        if len(tsegs) != len(segs):
            continue
        params: dict[str, str] = {}
        for t, s in zip(tsegs, segs, strict=True):
            if t.startswith("{") and t.endswith("}") and s:
                params[t[1:-1]] = s
            elif t != s:
                break
        else:
            return template, params
    raise KeyError(f"no path in the Stripe spec matches {path!r}")


def _operation(method: str, path: str) -> dict[str, Any]:
    """Return the spec operation object for method + concrete path."""
    template, _ = match_path(path)
    op: dict[str, Any] | None = load_spec()["paths"][template].get(method.lower())
    if op is None:
        raise KeyError(f"{method.upper()} {template} is not in the Stripe spec")
    return op


def schema_for_response(method: str, path: str, status: int = 200) -> Schema:
    """Return the application/json response schema for method + path + status (or default)."""
    responses: dict[str, Any] = _operation(method, path)["responses"]
    resp = responses.get(str(status))
    if resp is None and 200 <= status < 300:
        resp = responses.get("200")
    if resp is None:
        resp = responses.get("default")
    if resp is None:
        raise KeyError(f"no {status} response for {method.upper()} {path}")
    schema: Schema = resp["content"]["application/json"]["schema"]
    return schema


def validate_response(method: str, path: str, status: int, body: Any) -> list[str]:
    """Validate a response body for a concrete request (non-2xx bodies use the error schema)."""
    schema = schema_for_response(method, path, status)
    label = _describe(schema) if "$ref" in schema else "response"
    return _check(schema, body, label, req=False)


# --------------------------------------------------------------------------- requests


def _request_schema(method: str, path: str) -> tuple[Schema, dict[str, Schema], set[str]]:
    """Return (form body schema, query param schemas, required query params) of an operation."""
    op = _operation(method, path)
    content = (op.get("requestBody") or {}).get("content") or {}
    body: Schema = (content.get("application/x-www-form-urlencoded") or {}).get("schema") or {}
    query: dict[str, Schema] = {}
    required: set[str] = set()
    for param in op.get("parameters", ()):
        if param.get("in") == "query":
            query[param["name"]] = param.get("schema") or {}
            if param.get("required"):
                required.add(param["name"])
    return body, query, required


def known_params(method: str, path: str) -> set[str]:
    """Top-level parameter names accepted by an operation (form body + query)."""
    body, query, _ = _request_schema(method, path)
    return set(body.get("properties") or {}) | set(query)


def validate_request(method: str, path: str, params: Mapping[str, Any]) -> list[str]:
    """Validate decoded form/query params (string scalars) against the operation's spec."""
    body, query, required = _request_schema(method, path)
    merged: Schema = {
        "type": "object",
        "properties": {**query, **(body.get("properties") or {})},
        "required": sorted(required | set(body.get("required") or ())),
    }
    return _check(merged, dict(params), "", req=True)


# --------------------------------------------------------------------------- form encoding


def _split_key(key: str) -> list[str]:
    """Split `a[b][0][]` into ["a", "b", "0", ""]."""
    head, bracket, _ = key.partition("[")
    if not bracket:
        return [key]
    return [head, *_KEY_RE.findall(key[len(head) :])]


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all integers into lists ordered by index."""
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(isinstance(k, int) for k in node):
            return [node[k] for k in sorted(node)]
        return node
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def decode_form(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode Stripe-style nested keys (`a[b][0][c]`, `expand[]`) into nested dicts/lists."""
    root: dict[Any, Any] = {}
    for key, value in items:
        parts = _split_key(key)
        node: dict[Any, Any] = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            slot: Any = part
            if part == "":  # `[]`: append, or fill the last element if the key is new there
                ints = [k for k in node if isinstance(k, int)]
                slot = max(ints, default=-1) + 1
                nxt = parts[i + 1] if not last else None
                prev = node.get(slot - 1)
                if nxt is not None and isinstance(prev, dict) and nxt not in prev:
                    slot -= 1
            elif part.isdigit() and i > 0:
                slot = int(part)
            if last:
                node[slot] = value
            else:
                child = node.get(slot)
                if not isinstance(child, dict):
                    child = node[slot] = {}
                node = child
    decoded: dict[str, Any] = _listify(root)
    return decoded


def encode_form(params: Mapping[Any, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Encode nested params as Stripe form pairs (`a[b][0]`); bools become "true"/"false"."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs += encode_form(value, name) if value else [(name, "")]
        elif isinstance(value, list | tuple):
            if not value:
                pairs.append((name, ""))
            for i, item in enumerate(value):
                pairs += encode_form({i: item}, name)
        else:
            pairs.append((name, "" if value is None else _form_str(value)))
    return pairs
