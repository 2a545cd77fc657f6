"""Customers: create, retrieve (deleted ones too), update, delete (list: the resource table)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from emulator import resources
from emulator.engine import cancel_now
from emulator.params import (
    apply_metadata,
    as_strings,
    as_text,
    assign,
    get_dict,
    get_int,
    get_str,
)
from emulator.resources import respond
from emulator.shapes import Obj, Params
from emulator.spec import template

if TYPE_CHECKING:
    from emulator.state import EmulatorState


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
    assign(
        cus,
        params,
        preferred_locales=as_strings,
        balance=lambda p, k: get_int(p, k, 0),
        invoice_prefix=get_str,
    )
    settings = get_dict(params, "invoice_settings")
    assign(cus["invoice_settings"], settings, default_payment_method=as_text, footer=as_text)


def new_customer(state: EmulatorState, params: Params) -> Obj:
    """Create a customer and fire customer.created."""
    cus = template(
        "customer",
        id=resources.new_id("customer"),
        created=state.now(),
        invoice_prefix=secrets.token_hex(4).upper(),
    )
    _apply(state, cus, params)
    return resources.add(state, "customer", cus)


def update(state: EmulatorState, params: Params, cus_id: str) -> Obj:
    """POST /v1/customers/{id}."""
    cus = resources.get(state, "customer", cus_id)
    before = dict(cus)
    _apply(state, cus, params)
    state.emit_changes("customer.updated", cus, before)
    return respond(state, cus, params)


def delete(state: EmulatorState, params: Params, cus_id: str) -> Obj:
    """DELETE /v1/customers/{id}: cancels subscriptions, then customer.deleted."""

    def cancel_subscriptions(cus: Obj) -> None:
        for sub in list(state.db.subscriptions.values()):
            if sub["customer"] == cus_id and sub["status"] not in resources.ENDED:
                cancel_now(state, sub, reason="cancellation_requested")

    return resources.delete(state, "customer", cus_id, cancel_subscriptions)
