"""Customers: create, retrieve, update, delete, list."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from emulator.errors import missing
from emulator.ids import new_id
from emulator.listing import created_filter, expand, paginate
from emulator.params import apply_metadata, expand_list, get_dict, get_int, get_list, get_str
from emulator.spec import template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Obj = dict[str, Any]
Params = dict[str, Any]

_SIMPLE = ("email", "name", "description", "phone", "tax_exempt", "business_name")
_ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")


def _address(value: Params) -> Obj:
    """A full address hash."""
    return {k: value.get(k) or None for k in _ADDRESS_KEYS}


def _apply(state: EmulatorState, cus: Obj, params: Params) -> None:
    """Apply create/update parameters."""
    for key in _SIMPLE:
        if key in params and key in cus:
            cus[key] = get_str(params, key) or None
    if "tax_exempt" in params:
        cus["tax_exempt"] = get_str(params, "tax_exempt") or "none"
    apply_metadata(cus, params)
    if "address" in params:
        addr = get_dict(params, "address")
        cus["address"] = _address(addr) if addr else None
    if "shipping" in params:
        ship = get_dict(params, "shipping")
        cus["shipping"] = (
            {
                "address": _address(get_dict(ship, "address")),
                "name": ship.get("name"),
                "phone": ship.get("phone") or None,
            }
            if ship
            else None
        )
    if "preferred_locales" in params:
        cus["preferred_locales"] = [str(x) for x in get_list(params, "preferred_locales")]
    if "balance" in params:
        cus["balance"] = get_int(params, "balance", 0)
    if "invoice_settings" in params:
        inv = get_dict(params, "invoice_settings")
        if "default_payment_method" in inv:
            cus["invoice_settings"]["default_payment_method"] = (
                inv["default_payment_method"] or None
            )
        if "footer" in inv:
            cus["invoice_settings"]["footer"] = inv["footer"] or None
    if "invoice_prefix" in params:
        cus["invoice_prefix"] = get_str(params, "invoice_prefix")


def get_customer(state: EmulatorState, cus_id: str, param: str = "id", status: int = 404) -> Obj:
    """A live customer or resource_missing."""
    cus = state.db.customers.get(cus_id)
    if cus is None:
        raise missing("customer", cus_id, param=param, status=status)
    return cus


def new_customer(state: EmulatorState, params: Params) -> Obj:
    """Create a customer and fire customer.created."""
    cus = template("customer")
    cus.update(
        id=new_id("cus_", 14),
        created=state.now(),
        email=None,
        name=None,
        description=None,
        phone=None,
        address=None,
        metadata={},
        invoice_prefix=secrets.token_hex(4).upper(),
        next_invoice_sequence=1,
        balance=0,
        delinquent=False,
    )
    _apply(state, cus, params)
    state.db.customers[cus["id"]] = cus
    state.emit("customer.created", cus)
    return cus


def create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/customers."""
    cus = new_customer(state, params)
    return expand(state, cus, expand_list(params)) if "expand" in params else cus


def retrieve(state: EmulatorState, params: Params, cus_id: str) -> Obj:
    """GET /v1/customers/{id} (a deleted customer answers with deleted: true)."""
    cus = state.db.customers.get(cus_id)
    if cus is None:
        if cus_id in state.deleted_customers:
            deleted: Obj = template("deleted_customer")
            deleted.update(id=cus_id, deleted=True)
            return deleted
        raise missing("customer", cus_id)
    return expand(state, cus, expand_list(params)) if "expand" in params else cus


def update(state: EmulatorState, params: Params, cus_id: str) -> Obj:
    """POST /v1/customers/{id}."""
    cus = get_customer(state, cus_id)
    before = dict(cus)
    _apply(state, cus, params)
    previous = {k: v for k, v in before.items() if cus.get(k) != v}
    if previous:
        state.emit("customer.updated", cus, previous)
    return expand(state, cus, expand_list(params)) if "expand" in params else cus


def delete(state: EmulatorState, params: Params, cus_id: str) -> Obj:
    """DELETE /v1/customers/{id}: cancels subscriptions, then customer.deleted."""
    from emulator.engine import cancel_now

    cus = get_customer(state, cus_id)
    for sub in list(state.db.subscriptions.values()):
        if sub["customer"] == cus_id and sub["status"] not in ("canceled", "incomplete_expired"):
            cancel_now(state, sub, reason="cancellation_requested")
    del state.db.customers[cus_id]
    state.deleted_customers.add(cus_id)
    state.emit("customer.deleted", cus)
    deleted: Obj = template("deleted_customer")
    deleted.update(id=cus_id, deleted=True)
    return deleted


def list_(state: EmulatorState, params: Params) -> Obj:
    """GET /v1/customers with ``email`` and ``created`` filters."""
    items = list(state.db.customers.values())
    email = get_str(params, "email")
    if email is not None:
        items = [c for c in items if c.get("email") == email]
    pred = created_filter(params)
    if pred:
        items = [c for c in items if pred(c)]
    return paginate(state, items, params, "/v1/customers", "customer")
