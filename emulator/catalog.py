"""Products and prices, with lookup keys (retrieve and list: the resource table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator import resources
from emulator.errors import StripeError, invalid, required
from emulator.params import (
    apply_metadata,
    as_flag,
    as_strings,
    as_text,
    assign,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    need_str,
    one_of,
)
from emulator.resources import respond
from emulator.shapes import Obj, Params
from emulator.spec import copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState


INTERVALS = ("day", "week", "month", "year")


# -- products -----------------------------------------------------------------


def _apply_product(prod: Obj, params: Params) -> None:
    """Apply product parameters."""
    if "name" in params:
        prod["name"] = need_str(params, "name")
    texts = ("description", "statement_descriptor", "unit_label", "url", "tax_code")
    assign(
        prod,
        params,
        **dict.fromkeys(texts, as_text),
        active=as_flag,
        shippable=get_bool,
        images=as_strings,
        marketing_features=lambda p, k: [{"name": str(f.get("name"))} for f in get_list(p, k)],
    )
    apply_metadata(prod, params)


def new_product(state: EmulatorState, params: Params) -> Obj:
    """Create a product (fires product.created)."""
    name = need_str(params, "name")
    prod_id = get_str(params, "id") or resources.new_id("product")
    if prod_id in state.db.products:
        raise invalid("Product already exists.", param="id", code="resource_already_exists")
    now = state.now()
    prod = template("product", id=prod_id, name=name, created=now, updated=now)
    _apply_product(prod, params)
    resources.add(state, "product", prod)
    dpd = get_dict(params, "default_price_data")
    if dpd:
        price = new_price(state, {**dpd, "product": prod_id})
        before = dict(prod)
        prod["default_price"] = price["id"]
        state.emit("product.updated", prod, {"default_price": before["default_price"]})
    return prod


def product_update(state: EmulatorState, params: Params, prod_id: str) -> Obj:
    """POST /v1/products/{id}."""
    prod = resources.get(state, "product", prod_id)
    before = dict(prod)
    _apply_product(prod, params)
    if "default_price" in params:
        price_id = get_str(params, "default_price") or None
        if price_id is not None:
            price = resources.get(state, "price", price_id, param="default_price", status=400)
            if price["product"] != prod_id:
                raise invalid("The price must belong to this product.", param="default_price")
        prod["default_price"] = price_id
    state.emit_changes("product.updated", prod, before, stamp=True)
    return respond(state, prod, params)


def product_delete(state: EmulatorState, params: Params, prod_id: str) -> Obj:
    """DELETE /v1/products/{id} (refused while it has prices; its feature links go)."""

    def refuse_with_prices(prod: Obj) -> None:
        if any(p["product"] == prod_id for p in state.db.prices.values()):
            raise invalid(
                "This product cannot be deleted because it has one or more user-created prices."
            )
        state.product_features.pop(prod_id, None)  # no subscription can use it: no prices

    return resources.delete(state, "product", prod_id, refuse_with_prices)


# -- prices -------------------------------------------------------------------


def _take_lookup_key(state: EmulatorState, price: Obj, params: Params) -> None:
    """Assign ``lookup_key``, moving it from another price when ``transfer_lookup_key``."""
    key = get_str(params, "lookup_key")
    transfer = bool(get_bool(params, "transfer_lookup_key", False))
    if key == price.get("lookup_key"):
        return
    if key:
        owner = state.lookup_keys.get(key)
        if owner and owner != price["id"]:
            if not transfer:
                raise StripeError(
                    f"A price (`{owner}`) already uses that lookup key.",
                    param="lookup_key",
                )
            other = state.db.prices[owner]
            other["lookup_key"] = None
            state.emit("price.updated", other, {"lookup_key": key})
    old = price.get("lookup_key")
    if old and state.lookup_keys.get(old) == price["id"]:
        del state.lookup_keys[old]
    price["lookup_key"] = key or None
    if key:
        state.lookup_keys[key] = price["id"]


def new_price(state: EmulatorState, params: Params) -> Obj:
    """Create a price (fires price.created)."""
    currency = need_str(params, "currency").lower()
    product_id = get_str(params, "product")
    if product_id:
        resources.get(state, "product", product_id, param="product", status=400)
    else:
        data = get_dict(params, "product_data")
        if not data:
            raise required("product")
        product_id = new_product(state, data)["id"]
    amount = get_int(params, "unit_amount")
    decimal = get_str(params, "unit_amount_decimal")
    if amount is None and decimal:
        amount = int(float(decimal))
    if amount is None and get_str(params, "billing_scheme") != "tiered":
        if not get_dict(params, "custom_unit_amount"):
            raise required("unit_amount")
    if amount is not None and amount < 0:
        raise invalid("Invalid non-negative integer", param="unit_amount")
    recurring_in = get_dict(params, "recurring")
    recurring: Obj | None = None
    if recurring_in:
        interval = one_of(recurring_in, "interval", INTERVALS, None, "recurring")
        if interval is None:
            raise required("recurring[interval]")
        recurring = {
            "interval": interval,
            "interval_count": get_int(recurring_in, "interval_count", 1) or 1,
            "meter": recurring_in.get("meter") or None,
            "usage_type": one_of(
                recurring_in, "usage_type", ("licensed", "metered"), "licensed", "recurring"
            ),
        }
    price = template(
        "price",
        id=resources.new_id("price"),
        active=bool(get_bool(params, "active", True)),
        billing_scheme=get_str(params, "billing_scheme") or "per_unit",
        created=state.now(),
        currency=currency,
        nickname=get_str(params, "nickname") or None,
        product=product_id,
        recurring=recurring,
        tax_behavior=get_str(params, "tax_behavior") or "unspecified",
        type="recurring" if recurring else "one_time",
        unit_amount=amount,
        unit_amount_decimal=str(decimal or amount) if amount is not None else None,
    )
    apply_metadata(price, params)
    _take_lookup_key(state, price, params)
    return resources.add(state, "price", price)


def price_update(state: EmulatorState, params: Params, price_id: str) -> Obj:
    """POST /v1/prices/{id}: active, nickname, metadata, lookup_key, tax_behavior."""
    price = resources.get(state, "price", price_id)
    before = copy_json(price)
    assign(price, params, active=as_flag, nickname=as_text)
    if "tax_behavior" in params:
        price["tax_behavior"] = get_str(params, "tax_behavior") or "unspecified"
    apply_metadata(price, params)
    if "lookup_key" in params:
        _take_lookup_key(state, price, params)
    if state.emit_changes("price.updated", price, before):
        _refresh_subscription_prices(state, price)
    return respond(state, price, params)


def _refresh_subscription_prices(state: EmulatorState, price: Obj) -> None:
    """Subscription items show the current price object."""
    for sub in state.db.subscriptions.values():
        for item in sub["items"]["data"]:
            if item["price"]["id"] == price["id"]:
                item["price"] = copy_json(price)
