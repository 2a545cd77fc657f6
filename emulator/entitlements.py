"""Active entitlements: derived from subscriptions and product features, never stored by hand.

A customer is entitled to every active feature attached to a product of a price of an item of
their subscriptions that are ``active``, ``trialing`` or ``past_due``. ``state.entitlements``
remembers the set each customer was last told about; ``sync`` compares the customers whose
entitlements may have changed (``state.touched``) with it and fires
``entitlements.active_entitlement_summary.updated`` for each one that differs.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable
from typing import TYPE_CHECKING

from emulator.errors import missing
from emulator.params import need_str
from emulator.resources import paginate, respond
from emulator.shapes import Obj, Params
from emulator.spec import copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

GRANTING = ("active", "trialing", "past_due")
KIND = "entitlements.active_entitlement"
URL = "/v1/entitlements/active_entitlements"
EVENT = "entitlements.active_entitlement_summary.updated"
_BASE62 = string.digits + string.ascii_letters


def entitlement_id(customer: str, feature: str) -> str:
    """``ent_test_...``: the same for the same customer and feature."""
    number = int.from_bytes(hashlib.sha256(f"{customer}:{feature}".encode()).digest(), "big")
    chars = []
    for _ in range(32):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "ent_test_" + "".join(chars)


def _granting_products(state: EmulatorState, customer: str) -> set[str]:
    """The products of the customer's subscriptions that grant their features."""
    return {
        item["price"]["product"]
        for sub in state.db.subscriptions.values()
        if sub["customer"] == customer and sub["status"] in GRANTING
        for item in sub["items"]["data"]
    }


def derive(state: EmulatorState, customer: str) -> list[Obj]:
    """The customer's active entitlements, one per feature, in the features' creation order."""
    granted = {
        feat
        for prod in _granting_products(state, customer)
        for feat in state.product_features.get(prod, {}).values()
    }
    if not granted:
        return []
    return [
        template(
            KIND,
            id=entitlement_id(customer, feat["id"]),
            feature=feat["id"],
            lookup_key=feat["lookup_key"],
        )
        for feat in state.db.features.values()
        if feat["id"] in granted and feat["active"]
    ]


# -- what may have changed ------------------------------------------------------------


def touch_products(state: EmulatorState, products: Iterable[str]) -> None:
    """Note the customers of live subscriptions to any of ``products``."""
    wanted = set(products)
    if not wanted:
        return
    for sub in state.db.subscriptions.values():
        if sub["status"] in GRANTING and any(
            item["price"]["product"] in wanted for item in sub["items"]["data"]
        ):
            state.touched.add(sub["customer"])


def touch_feature(state: EmulatorState, feature: str) -> None:
    """Note the customers of every product the feature is attached to."""
    products = [p for p, attached in state.product_features.items() if feature in attached.values()]
    touch_products(state, products)


def _page(state: EmulatorState, items: list[Obj]) -> Obj:
    """The list envelope of the first page (10), as ``GET /v1/entitlements/active_entitlements``."""
    return paginate(state, copy_json(items), {}, URL, KIND)


def sync(state: EmulatorState) -> None:
    """Fire the summary event for each touched customer whose entitlements changed."""
    if not state.touched:  # nothing that may change entitlements happened: no work
        return
    touched, state.touched = state.touched, set()
    for customer in sorted(touched):
        now = derive(state, customer)
        before = state.entitlements.get(customer, [])
        if now == before:
            continue
        if now:
            state.entitlements[customer] = now
        else:
            state.entitlements.pop(customer, None)
        summary = template(
            "entitlements.active_entitlement_summary",
            customer=customer,
            entitlements=_page(state, now),
        )
        state.emit(EVENT, summary, {"entitlements": _page(state, before)})


# -- the endpoints ----------------------------------------------------------------------


def list_active(state: EmulatorState, params: Params) -> Obj:
    """GET /v1/entitlements/active_entitlements?customer=cus_..."""
    customer = need_str(params, "customer")
    if customer not in state.db.customers:
        raise missing("customer", customer, param="customer")
    return paginate(state, derive(state, customer), params, URL, KIND)


def retrieve(state: EmulatorState, params: Params, ent_id: str) -> Obj:
    """GET /v1/entitlements/active_entitlements/{id} (the sets last told are current: ``sync``
    runs after every change)."""
    for seen in state.entitlements.values():
        found = next((e for e in seen if e["id"] == ent_id), None)
        if found is not None:
            return respond(state, found, params)
    raise missing(KIND, ent_id)
