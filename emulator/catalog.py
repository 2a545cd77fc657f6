"""Products and prices, with lookup keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.errors import StripeError, invalid, missing, required
from emulator.ids import new_id
from emulator.listing import created_filter, expand, paginate
from emulator.params import (
    apply_metadata,
    expand_list,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    need_str,
    one_of,
)
from emulator.spec import copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Obj = dict[str, Any]
Params = dict[str, Any]

INTERVALS = ("day", "week", "month", "year")


def _maybe_expand(state: EmulatorState, obj: Obj, params: Params) -> Obj:
    """Expand when asked."""
    return expand(state, obj, expand_list(params)) if "expand" in params else obj


# -- products -----------------------------------------------------------------


def get_product(state: EmulatorState, prod_id: str, param: str = "id", status: int = 404) -> Obj:
    """A product or resource_missing."""
    prod = state.db.products.get(prod_id)
    if prod is None:
        raise missing("product", prod_id, param=param, status=status)
    return prod


def _apply_product(prod: Obj, params: Params) -> None:
    """Apply product parameters."""
    for key in ("name", "description", "statement_descriptor", "unit_label", "url", "tax_code"):
        if key in params:
            value = get_str(params, key)
            if key == "name" and not value:
                raise required("name")
            prod[key] = value or None if key != "name" else value
    if "active" in params:
        prod["active"] = bool(get_bool(params, "active", True))
    if "shippable" in params:
        prod["shippable"] = get_bool(params, "shippable")
    if "images" in params:
        prod["images"] = [str(x) for x in get_list(params, "images")]
    if "marketing_features" in params:
        prod["marketing_features"] = [
            {"name": str(f.get("name"))} for f in get_list(params, "marketing_features")
        ]
    apply_metadata(prod, params)


def new_product(state: EmulatorState, params: Params) -> Obj:
    """Create a product (fires product.created)."""
    name = need_str(params, "name")
    prod_id = get_str(params, "id") or new_id("prod_", 14)
    if prod_id in state.db.products:
        raise invalid("Product already exists.", param="id", code="resource_already_exists")
    now = state.now()
    prod = template("product")
    prod.update(
        id=prod_id,
        name=name,
        created=now,
        updated=now,
        active=True,
        images=[],
        marketing_features=[],
        metadata={},
        shippable=None,
        statement_descriptor=None,
        tax_code=None,
        unit_label=None,
        url=None,
    )
    _apply_product(prod, params)
    state.db.products[prod_id] = prod
    state.emit("product.created", prod)
    dpd = get_dict(params, "default_price_data")
    if dpd:
        price = new_price(state, {**dpd, "product": prod_id})
        before = dict(prod)
        prod["default_price"] = price["id"]
        state.emit("product.updated", prod, {"default_price": before["default_price"]})
    return prod


def product_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/products."""
    return _maybe_expand(state, new_product(state, params), params)


def product_retrieve(state: EmulatorState, params: Params, prod_id: str) -> Obj:
    """GET /v1/products/{id}."""
    return _maybe_expand(state, get_product(state, prod_id), params)


def product_update(state: EmulatorState, params: Params, prod_id: str) -> Obj:
    """POST /v1/products/{id}."""
    prod = get_product(state, prod_id)
    before = dict(prod)
    _apply_product(prod, params)
    if "default_price" in params:
        price_id = get_str(params, "default_price") or None
        if price_id is not None:
            price = get_price(state, price_id, param="default_price", status=400)
            if price["product"] != prod_id:
                raise invalid("The price must belong to this product.", param="default_price")
        prod["default_price"] = price_id
    previous = {k: v for k, v in before.items() if prod.get(k) != v}
    if previous:
        prod["updated"] = state.now()
        state.emit("product.updated", prod, previous)
    return _maybe_expand(state, prod, params)


def product_delete(state: EmulatorState, params: Params, prod_id: str) -> Obj:
    """DELETE /v1/products/{id} (refused while it has prices)."""
    prod = get_product(state, prod_id)
    if any(p["product"] == prod_id for p in state.db.prices.values()):
        raise invalid(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    del state.db.products[prod_id]
    state.deleted_products.add(prod_id)
    state.emit("product.deleted", prod)
    out = template("deleted_product")
    out.update(id=prod_id, deleted=True)
    return out


def product_list(state: EmulatorState, params: Params) -> Obj:
    """GET /v1/products with ``active``, ``ids``, ``created``."""
    items = list(state.db.products.values())
    active = get_bool(params, "active")
    if active is not None:
        items = [p for p in items if p["active"] == active]
    ids = get_list(params, "ids")
    if ids:
        items = [p for p in items if p["id"] in ids]
    pred = created_filter(params)
    if pred:
        items = [p for p in items if pred(p)]
    return paginate(state, items, params, "/v1/products", "product")


# -- prices -------------------------------------------------------------------


def get_price(state: EmulatorState, price_id: str, param: str = "id", status: int = 404) -> Obj:
    """A price or resource_missing."""
    price = state.db.prices.get(price_id)
    if price is None:
        raise missing("price", price_id, param=param, status=status)
    return price


def _take_lookup_key(state: EmulatorState, price: Obj, key: str | None, transfer: bool) -> None:
    """Assign a lookup key, moving it from another price when ``transfer_lookup_key``."""
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
        get_product(state, product_id, param="product", status=400)
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
    price = template("price")
    price.update(
        id=new_id("price_"),
        active=bool(get_bool(params, "active", True)),
        billing_scheme=get_str(params, "billing_scheme") or "per_unit",
        created=state.now(),
        currency=currency,
        livemode=False,
        lookup_key=None,
        metadata={},
        nickname=get_str(params, "nickname") or None,
        product=product_id,
        recurring=recurring,
        tax_behavior=get_str(params, "tax_behavior") or "unspecified",
        type="recurring" if recurring else "one_time",
        unit_amount=amount,
        unit_amount_decimal=str(decimal or amount) if amount is not None else None,
    )
    apply_metadata(price, params)
    _take_lookup_key(
        state,
        price,
        get_str(params, "lookup_key"),
        bool(get_bool(params, "transfer_lookup_key", False)),
    )
    state.db.prices[price["id"]] = price
    state.emit("price.created", price)
    return price


def price_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/prices."""
    return _maybe_expand(state, new_price(state, params), params)


def price_retrieve(state: EmulatorState, params: Params, price_id: str) -> Obj:
    """GET /v1/prices/{id}."""
    return _maybe_expand(state, get_price(state, price_id), params)


def price_update(state: EmulatorState, params: Params, price_id: str) -> Obj:
    """POST /v1/prices/{id}: active, nickname, metadata, lookup_key, tax_behavior."""
    price = get_price(state, price_id)
    before = copy_json(price)
    if "active" in params:
        price["active"] = bool(get_bool(params, "active", True))
    if "nickname" in params:
        price["nickname"] = get_str(params, "nickname") or None
    if "tax_behavior" in params:
        price["tax_behavior"] = get_str(params, "tax_behavior") or "unspecified"
    apply_metadata(price, params)
    if "lookup_key" in params:
        _take_lookup_key(
            state,
            price,
            get_str(params, "lookup_key"),
            bool(get_bool(params, "transfer_lookup_key", False)),
        )
    previous = {k: v for k, v in before.items() if price.get(k) != v}
    if previous:
        state.emit("price.updated", price, previous)
        _refresh_subscription_prices(state, price)
    return _maybe_expand(state, price, params)


def _refresh_subscription_prices(state: EmulatorState, price: Obj) -> None:
    """Subscription items show the current price object."""
    for sub in state.db.subscriptions.values():
        for item in sub["items"]["data"]:
            if item["price"]["id"] == price["id"]:
                item["price"] = copy_json(price)


def price_list(state: EmulatorState, params: Params) -> Obj:
    """GET /v1/prices with lookup_keys, active, product, type, currency, recurring."""
    items = list(state.db.prices.values())
    keys = [str(k) for k in get_list(params, "lookup_keys")]
    if keys:
        items = [p for p in items if p.get("lookup_key") in keys]
    active = get_bool(params, "active")
    if active is not None:
        items = [p for p in items if p["active"] == active]
    product = get_str(params, "product")
    if product:
        items = [p for p in items if p["product"] == product]
    type_ = get_str(params, "type")
    if type_:
        items = [p for p in items if p["type"] == type_]
    currency = get_str(params, "currency")
    if currency:
        items = [p for p in items if p["currency"] == currency.lower()]
    rec = get_dict(params, "recurring")
    if rec.get("interval"):
        items = [p for p in items if (p["recurring"] or {}).get("interval") == rec["interval"]]
    pred = created_filter(params)
    if pred:
        items = [p for p in items if pred(p)]
    return paginate(state, items, params, "/v1/prices", "price")
