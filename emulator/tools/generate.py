"""Generate emulator/data/spec_data.json from Stripe's OpenAPI subset and example fixtures.

Run from the repository root: ``python -m emulator.tools.generate vendor/stripe`` (the default:
``vendor/stripe`` of this repository, Stripe's MIT-licensed spec subset and fixtures).
The emulator itself only reads the small generated file, never the 2 MB spec.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

Json = Any
DEFAULT_SPEC_DIR = Path(__file__).resolve().parents[2] / "vendor" / "stripe"
DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "spec_data.json"

# Kinds whose templates the emulator needs, each its schema's and its fixture's name. A kind whose
# schema the spec subset lacks (deleted_product_feature, the entitlement summary) keeps its
# fixture's fields as they are (with its OVERRIDES) and has no expandable fields.
KINDS = (
    "customer",
    "deleted_customer",
    "product",
    "deleted_product",
    "price",
    "checkout.session",
    "item",
    "billing_portal.configuration",
    "billing_portal.session",
    "subscription",
    "subscription_item",
    "invoice",
    "line_item",
    "event",
    "webhook_endpoint",
    "deleted_webhook_endpoint",
    "entitlements.feature",
    "product_feature",
    "deleted_product_feature",
    "entitlements.active_entitlement",
    "entitlements.active_entitlement_summary",
    "payment_intent",
    "invoice_payment",
    "coupon",
    "promotion_code",
    "discount",
    "subscription_schedule",
    "payment_method",
)

# Realistic defaults replacing the fixtures' placeholder values (applied after pruning).
OVERRIDES: dict[str, dict[str, Json]] = {
    "customer": {
        "address": None,
        "currency": None,
        "discount": None,
        "shipping": None,
        "invoice_prefix": "EMU0001",
        "preferred_locales": [],
    },
    "product": {
        "default_price": None,
        "description": None,
        "package_dimensions": None,
        "name": "",
    },
    "price": {
        "custom_unit_amount": None,
        "transform_quantity": None,
        "lookup_key": None,
    },
    "checkout.session": {
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "currency_conversion": None,
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer_details": None,
        "invoice_creation": None,
        "managed_payments": None,
        "mode": "subscription",
        "payment_intent": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "permissions": None,
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": None,
            "payment_method_save": None,
        },
        "shipping_address_collection": None,
        "shipping_cost": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "wallet_options": None,
    },
    "billing_portal.configuration": {  # every feature off, never the default
        "business_profile": {
            "headline": None,
            "privacy_policy_url": None,
            "terms_of_service_url": None,
        },
        "features": {
            "customer_update": {"allowed_updates": [], "enabled": False},
            "invoice_history": {"enabled": False},
            "payment_method_update": {"enabled": False, "payment_method_configuration": None},
            "subscription_cancel": {
                "cancellation_reason": {"enabled": False, "options": []},
                "enabled": False,
                "mode": "at_period_end",
                "proration_behavior": "none",
            },
            "subscription_update": {
                "billing_cycle_anchor": None,
                "default_allowed_updates": [],
                "enabled": False,
                "products": [],
                "proration_behavior": "none",
                "schedule_at_period_end": {"conditions": []},
                "trial_update_behavior": "end_trial",
            },
        },
        "is_default": False,
        "livemode": False,
        "metadata": {},
    },
    "billing_portal.session": {"livemode": False, "flow": None},
    "subscription": {
        "billing_cycle_anchor_config": None,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "next_pending_invoice_item_invoice": None,
        "pause_collection": None,
        "pending_invoice_item_interval": None,
        "pending_update": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_start": None,
        "cancel_at_period_end": False,
        "billing_thresholds": None,
        "managed_payments": None,
        "billing_schedules": [],
        "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "billing_mode": {"type": "classic"},
        "items": {"data": [], "has_more": False, "object": "list", "url": ""},
    },
    "item": {"adjustable_quantity": None, "metadata": {}},
    "subscription_item": {"billing_thresholds": None},
    "invoice": {
        "account_name": "Emulator",
        "auto_advance": True,
        "customer_shipping": None,
        "due_date": None,
        "effective_at": None,
        "from_invoice": None,
        "last_finalization_error": None,
        "next_payment_attempt": None,
        "shipping_cost": None,
        "shipping_details": None,
        "webhooks_delivered_at": None,
        "amount_overpaid": 0,
        "amount_paid_off_stripe": 0,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "lines": {"data": [], "has_more": False, "object": "list", "url": ""},
        "parent": None,
        "total_taxes": [],
        "total_pretax_credit_amounts": [],
    },
    "line_item": {"parent": None, "pretax_credit_amounts": [], "taxes": []},
    "event": {},
    "webhook_endpoint": {"description": None},
    "entitlements.feature": {"active": True, "livemode": False, "metadata": {}},
    "product_feature": {"livemode": False},
    "entitlements.active_entitlement": {"livemode": False},
    "payment_intent": {
        "automatic_payment_methods": None,
        "canceled_at": None,
        "capture_method": "automatic",
        "client_secret": None,
        "confirmation_method": "automatic",
        "description": None,
        "last_payment_error": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_action": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "processing": None,
        "shipping": None,
        "status": "requires_payment_method",
        "transfer_data": None,
    },
    "invoice_payment": {
        "amount_paid": None,
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent"},
        "status": "open",
    },
    "payment_method": {
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": None,
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": "visa",
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": "visa",
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": None,
            "funding": "credit",
            "generated_from": None,
            "last4": "4242",
            "networks": {"available": ["visa"], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "metadata": {},
    },
    "entitlements.active_entitlement_summary": {
        "customer": "",
        "entitlements": {
            "data": [],
            "has_more": False,
            "object": "list",
            "url": "/v1/entitlements/active_entitlements",
        },
        "livemode": False,
    },
}


class Pruner:
    """Prune example objects to exactly the properties the spec declares."""

    def __init__(self, schemas: dict[str, Json]) -> None:
        """Keep the component schemas."""
        self.schemas = schemas
        self.problems: list[str] = []

    def resolve(self, schema: Json) -> Json:
        """Follow $ref links."""
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def variant(self, schema: Json, value: Json) -> Json:
        """Choose the anyOf variant matching a value."""
        schema = self.resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf")
        if not options:
            return schema
        resolved = [self.resolve(o) for o in options]
        if isinstance(value, dict):
            objs = [o for o in resolved if "properties" in o]
            if not objs:
                return resolved[0]
            kind = value.get("object")

            def score(o: Json) -> int:
                props = o["properties"]
                bonus = 0
                obj_enum = props.get("object", {}).get("enum")
                if kind is not None and obj_enum and kind in obj_enum:
                    bonus = 1000
                return bonus + len(set(props) & set(value))

            return max(objs, key=score)
        return resolved[0]

    def prune(self, schema: Json, value: Json, where: str) -> Json:
        """Return value restricted to the schema."""
        schema = self.variant(schema, value)
        if value is None:
            return None
        if isinstance(value, dict) and "properties" in schema:
            props = schema["properties"]
            out = {
                k: self.prune(props[k], v, f"{where}.{k}") for k, v in value.items() if k in props
            }
            for req in schema.get("required", []):
                if req not in out:
                    sub = self.resolve(props[req])
                    if sub.get("nullable"):
                        out[req] = None
                    else:
                        self.problems.append(f"{where}.{req} missing")
            return out
        if isinstance(value, list) and "items" in schema:
            return [self.prune(schema["items"], v, f"{where}[]") for v in value]
        return value

    def check(self, schema: Json, value: Json, where: str) -> None:
        """Report values whose type, nullability or enum disagree with the schema."""
        raw = self.resolve(schema)
        if value is None:
            opts = raw.get("anyOf") or []
            if not raw.get("nullable") and not any(self.resolve(o).get("nullable") for o in opts):
                self.problems.append(f"{where} is null")
            return
        schema = self.variant(schema, value)
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            self.problems.append(f"{where}={value!r} not in {enum}")
        kind = schema.get("type")
        types = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}
        if kind in types and not isinstance(value, types[kind]):
            self.problems.append(f"{where} is not {kind}")
        if isinstance(value, dict) and "properties" in schema:
            for k, v in value.items():
                self.check(schema["properties"][k], v, f"{where}.{k}")
        if isinstance(value, list) and "items" in schema:
            for v in value:
                self.check(schema["items"], v, f"{where}[]")


def param_node(pruner: Pruner, schema: Json, depth: int = 0) -> Json:
    """Compact request schema: ``t`` types, ``e`` enum, ``m`` maxLength, ``p`` properties,
    ``r`` required, ``i`` array items, ``a`` free-form object values; {} accepts anything."""
    schema = pruner.resolve(schema)
    if depth > 8:
        return {}
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return merge_nodes([param_node(pruner, o, depth + 1) for o in options])
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind is None and "enum" in schema:
        kind = "string"
    if kind == "array":
        return {"t": ["array"], "i": param_node(pruner, schema.get("items", {}), depth + 1)}
    if kind == "object":
        return _object_node(pruner, schema, depth)
    if kind not in ("string", "integer", "number", "boolean"):
        return {}
    node: dict[str, Json] = {"t": [kind]}
    if kind == "string" and "enum" in schema:
        node["e"] = list(schema["enum"])
    elif kind == "string" and "maxLength" in schema:
        node["m"] = schema["maxLength"]
    return node


def _object_node(pruner: Pruner, schema: Json, depth: int) -> Json:
    """The node of an object schema: closed with properties, or free-form."""
    node: dict[str, Json] = {"t": ["object"]}
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    if props and extra in (None, False):
        node["p"] = {k: param_node(pruner, v, depth + 1) for k, v in props.items()}
        if schema.get("required"):
            node["r"] = list(schema["required"])
    elif isinstance(extra, dict):
        node["a"] = param_node(pruner, extra, depth + 1)
    return node


def merge_nodes(nodes: list[Json]) -> Json:
    """The node accepting what any of ``nodes`` accepts (an anyOf)."""
    if any(not n for n in nodes):
        return {}
    out: dict[str, Json] = {"t": list(dict.fromkeys(t for n in nodes for t in n["t"]))}
    strings = [n for n in nodes if "string" in n["t"]]
    free = [n for n in strings if "e" not in n]
    if free:
        if all("m" in n for n in free):
            out["m"] = max(n["m"] for n in free)
    elif strings:
        out["e"] = list(dict.fromkeys(v for n in strings for v in n["e"]))
    objects = [n for n in nodes if "object" in n["t"]]
    if objects and all("p" in n for n in objects):
        keys = dict.fromkeys(k for n in objects for k in n["p"])
        out["p"] = {k: merge_nodes([n["p"][k] for n in objects if k in n["p"]]) for k in keys}
        required = set.intersection(*(set(n.get("r", ())) for n in objects))
        if required:
            out["r"] = sorted(required)
    elif objects:
        values = [n["a"] for n in objects if "a" in n]
        if values:
            out["a"] = merge_nodes(values)
    arrays = [n["i"] for n in nodes if "array" in n["t"]]
    if arrays:
        out["i"] = merge_nodes(arrays)
    return out


def _template(pruner: Pruner, raw: Json, kind: str) -> Json:
    """The example object pruned to its schema (as it is when the spec subset lacks it)."""
    if kind not in pruner.schemas:
        return raw
    schema = {"$ref": f"#/components/schemas/{kind}"}
    obj = pruner.prune(schema, raw, kind)
    pruner.check(schema, obj, kind)
    return obj


def build(spec_dir: Path) -> dict[str, Json]:
    """Build the data document."""
    spec = json.loads((spec_dir / "openapi-subset.json").read_text())
    fixtures = json.loads((spec_dir / "fixtures3.json").read_text())["resources"]
    pruner = Pruner(spec["components"]["schemas"])
    templates: dict[str, Json] = {}
    for kind in KINDS:
        raw = dict(fixtures[kind])
        raw.update(OVERRIDES.get(kind, {}))
        templates[kind] = _template(pruner, raw, kind)
    params: dict[str, dict[str, Json]] = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            node: dict[str, Json] = {"t": ["object"], "p": {}}
            required: list[str] = []
            for p in op.get("parameters", []):
                if p.get("in") == "query":
                    node["p"][p["name"]] = param_node(pruner, p.get("schema", {}))
                    if p.get("required"):
                        required.append(p["name"])
            body = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/x-www-form-urlencoded", {})
                .get("schema")
            )
            if body:
                body_node = param_node(pruner, body)
                node["p"].update(body_node.get("p", {}))
                required.extend(body_node.get("r", ()))
            if required:
                node["r"] = required
            params.setdefault(path, {})[method.upper()] = node
    expandable: dict[str, list[str]] = {}
    for kind in KINDS:
        expandable[kind] = sorted(pruner.schemas.get(kind, {}).get("x-expandableFields", []))
    if pruner.problems:
        print("\n".join(pruner.problems), file=sys.stderr)
    return {
        "api_version": re.sub(r"\s", "", str(spec.get("info", {}).get("version", ""))),
        "templates": templates,
        "params": params,
        "expandable": expandable,
    }


def main() -> None:
    """Write the data file."""
    spec_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC_DIR
    DATA_FILE.write_text(json.dumps(build(spec_dir), sort_keys=True, separators=(",", ":")))
    print(f"wrote {DATA_FILE} ({DATA_FILE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
