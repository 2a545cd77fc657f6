"""Billing portal: configurations, sessions (with flows and Stripe's validation), actions.

Configurations are retrieved and listed through the resource table (``emulator.resources``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import cards, coupons, customers, engine, resources, schedules
from emulator.errors import StripeError, invalid, required
from emulator.params import (
    apply_metadata,
    as_enum,
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
    positive_int,
)
from emulator.resources import respond
from emulator.shapes import Obj, Params
from emulator.spec import template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

PRORATIONS = ("always_invoice", "create_prorations", "none")
CONFIGURATION = "billing_portal.configuration"
_SC = "features[subscription_cancel]"
_SU = "features[subscription_update]"
FLOWS = (
    "payment_method_update",
    "subscription_cancel",
    "subscription_update",
    "subscription_update_confirm",
)
FEEDBACK = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)


# -- configurations -------------------------------------------------------------------


def _apply_features(state: EmulatorState, features: Obj, params: Params) -> None:
    """Apply ``features[...]`` parameters."""
    raw = get_dict(params, "features")
    cu = get_dict(raw, "customer_update")
    assign(features["customer_update"], cu, enabled=as_flag, allowed_updates=as_strings)
    for name in ("invoice_history", "payment_method_update"):
        assign(features[name], get_dict(raw, name), enabled=as_flag)
    sc = get_dict(raw, "subscription_cancel")
    modes = as_enum(("at_period_end", "immediately"), _SC)
    target = features["subscription_cancel"]
    assign(target, sc, enabled=as_flag, mode=modes, proration_behavior=as_enum(PRORATIONS, _SC))
    cr = get_dict(sc, "cancellation_reason")
    assign(target["cancellation_reason"], cr, enabled=as_flag, options=as_strings)
    if "subscription_update" in raw:
        target = features["subscription_update"]
        assign(
            target,
            get_dict(raw, "subscription_update"),
            enabled=as_flag,
            default_allowed_updates=as_strings,
            proration_behavior=as_enum(PRORATIONS, _SU),
            billing_cycle_anchor=as_text,
            trial_update_behavior=get_str,
            products=lambda su, key: _products(state, get_list(su, key)),
            schedule_at_period_end=_schedule_at_period_end,
        )
        if target["enabled"] and not target["products"]:
            raise invalid(
                "You must specify at least one product when subscription_update is enabled.",
                param="features[subscription_update][products]",
            )


def _schedule_at_period_end(raw: Params, key: str) -> Obj:
    """``schedule_at_period_end`` as Stripe returns it: its ``conditions`` ("" clears them)."""
    conditions = get_list(get_dict(raw, key), "conditions")
    return {"conditions": [{"type": str(c["type"])} for c in conditions if isinstance(c, dict)]}


def _products(state: EmulatorState, raw: list[Any]) -> list[Obj]:
    """Validate ``features[subscription_update][products]``."""
    out: list[Obj] = []
    for i, entry in enumerate(raw):
        param = f"features[subscription_update][products][{i}]"
        prod = resources.referenced(state, "product", entry, "product", f"{param}[product]")
        prod_id = prod["id"]
        prices = [str(p) for p in get_list(entry, "prices")]
        if not prices:
            raise required(f"{param}[prices]")
        for price_id in prices:
            price = resources.get(state, "price", price_id, param=f"{param}[prices]", status=400)
            if price["product"] != prod_id:
                raise invalid(
                    f"The price `{price_id}` does not belong to the product `{prod_id}`.",
                    param=f"{param}[prices]",
                )
            if price["type"] != "recurring":
                raise invalid(
                    f"The price `{price_id}` must be a recurring price.",
                    param=f"{param}[prices]",
                )
        out.append(
            {
                "adjustable_quantity": _adjustable_quantity(entry, f"{param}[adjustable_quantity]"),
                "prices": prices,
                "product": prod_id,
            }
        )
    return out


def _adjustable_quantity(entry: Params, param: str) -> Obj:
    """A product's ``adjustable_quantity`` as Stripe returns it: minimum 1 and maximum null
    unless given; a maximum below the minimum is a 400 naming the maximum."""
    aq = get_dict(entry, "adjustable_quantity")
    minimum = get_int(aq, "minimum", 1, f"{param}[minimum]")
    maximum = get_int(aq, "maximum", None, f"{param}[maximum]")
    if maximum is not None and maximum < minimum:
        raise invalid(
            f"The maximum quantity ({maximum}) must be greater than or equal to the minimum "
            f"quantity ({minimum}).",
            param=f"{param}[maximum]",
        )
    return {
        "enabled": bool(get_bool(aq, "enabled", False)),
        "maximum": maximum,
        "minimum": minimum,
    }


def _apply_config(state: EmulatorState, cfg: Obj, params: Params) -> None:
    """Apply configuration parameters."""
    profile = dict.fromkeys(("headline", "privacy_policy_url", "terms_of_service_url"), as_text)
    assign(cfg["business_profile"], get_dict(params, "business_profile"), **profile)
    assign(cfg, params, default_return_url=as_text, active=as_flag, name=as_text)
    if "login_page" in params:
        enabled = bool(get_bool(get_dict(params, "login_page"), "enabled", False))
        cfg["login_page"] = {
            "enabled": enabled,
            "url": f"{state.ctx.base_url}/p/login/{cfg['id']}" if enabled else None,
        }
    _apply_features(state, cfg["features"], params)
    apply_metadata(cfg, params)


def configuration_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/billing_portal/configurations (never the default: only the Dashboard's is)."""
    if "features" not in params:
        raise required("features")
    now = state.now()
    cfg = template(
        CONFIGURATION,
        id=resources.new_id(CONFIGURATION),
        created=now,
        updated=now,
    )
    _apply_config(state, cfg, params)
    return respond(state, resources.add(state, CONFIGURATION, cfg), params)


def configuration_update(state: EmulatorState, params: Params, bpc_id: str) -> Obj:
    """POST /v1/billing_portal/configurations/{id}."""
    cfg = resources.get(state, CONFIGURATION, bpc_id)
    before = engine.snapshot(cfg)
    _apply_config(state, cfg, params)
    state.emit_changes("billing_portal.configuration.updated", cfg, before, stamp=True)
    return respond(state, cfg, params)


def set_default(state: EmulatorState, bpc_id: str | None) -> Obj | None:
    """Make a configuration the default, as saving it in the Dashboard does (None: no default)."""
    chosen = resources.get(state, CONFIGURATION, bpc_id) if bpc_id else None
    for cfg in state.db.portal_configurations.values():
        if cfg["is_default"] != (cfg is chosen):
            cfg["is_default"] = cfg is chosen
            cfg["updated"] = state.now()
            state.emit(
                "billing_portal.configuration.updated", cfg, {"is_default": not cfg["is_default"]}
            )
    return chosen


# -- sessions -------------------------------------------------------------------------


def allowed_prices(cfg: Obj) -> list[str]:
    """Prices the configuration lets a customer switch to."""
    su = cfg["features"]["subscription_update"]
    if not su["enabled"]:
        return []
    return [p for prod in su.get("products") or [] for p in prod["prices"]]


def _flow_subscription(state: EmulatorState, flow: str, data: Params, customer: str) -> Obj:
    """The subscription a flow names, validated against the customer."""
    param = f"flow_data[{flow}][subscription]"
    sub = resources.referenced(state, "subscription", data, "subscription", param)
    sub_id = sub["id"]
    if sub["customer"] != customer:
        raise invalid(
            f"The subscription `{sub_id}` does not belong to the customer `{customer}`.",
            param=param,
        )
    if sub["status"] in resources.ENDED:
        raise invalid(
            f"The subscription `{sub_id}` has been canceled and can't be used in a `{flow}` flow.",
            param=param,
        )
    return sub


def _feature_off(flow: str, feature: str) -> StripeError:
    """A flow whose feature the configuration disables."""
    return invalid(
        f"Flow type `{flow}` cannot be used because the `{feature}` feature is disabled in "
        "the portal configuration.",
        param="flow_data[type]",
    )


def _build_flow(state: EmulatorState, cfg: Obj, customer: str, raw: Params) -> Obj:
    """Validate ``flow_data`` into the session's ``flow``."""
    kind = one_of(raw, "type", FLOWS, None, "flow_data")
    if kind is None:
        raise required("flow_data[type]")
    after_raw = get_dict(raw, "after_completion")
    after_type = one_of(
        after_raw,
        "type",
        ("hosted_confirmation", "portal_homepage", "redirect"),
        "portal_homepage",
        "flow_data[after_completion]",
    )
    after: Obj = {"hosted_confirmation": None, "redirect": None, "type": after_type}
    if after_type == "redirect":
        redirect = get_dict(after_raw, "redirect")
        if not redirect.get("return_url"):
            raise required("flow_data[after_completion][redirect][return_url]")
        after["redirect"] = {"return_url": str(redirect["return_url"])}
    elif after_type == "hosted_confirmation":
        hc = get_dict(after_raw, "hosted_confirmation")
        after["hosted_confirmation"] = {"custom_message": hc.get("custom_message") or None}
    flow: Obj = {
        "after_completion": after,
        "subscription_cancel": None,
        "subscription_update": None,
        "subscription_update_confirm": None,
        "type": kind,
    }
    features = cfg["features"]
    data = get_dict(raw, kind)
    if kind == "payment_method_update":
        if not features["payment_method_update"]["enabled"]:
            raise _feature_off(kind, "payment_method_update")
    elif kind == "subscription_cancel":
        if not features["subscription_cancel"]["enabled"]:
            raise _feature_off(kind, "subscription_cancel")
        sub = _flow_subscription(state, kind, data, customer)
        if sub["cancel_at_period_end"]:
            raise invalid(
                f"The subscription `{sub['id']}` is already set to be canceled at the end of "
                "the period.",
                param="flow_data[subscription_cancel][subscription]",
            )
        flow[kind] = {
            "retention": _retention(state, sub, get_dict(data, "retention")),
            "subscription": sub["id"],
        }
    else:
        if not allowed_prices(cfg):
            raise _feature_off(kind, "subscription_update")
        sub = _flow_subscription(state, kind, data, customer)
        if kind == "subscription_update":
            flow[kind] = {"subscription": sub["id"]}
        else:
            flow[kind] = {
                "discounts": [],
                "items": _confirm_items(cfg, sub, get_list(data, "items")),
                "subscription": sub["id"],
            }
    return flow


_RETENTION = "flow_data[subscription_cancel][retention]"


def _retention(state: EmulatorState, sub: Obj, raw: Params) -> Obj | None:
    """``flow_data[subscription_cancel][retention]`` as the flow shows it (None when absent).

    ``type`` must be ``coupon_offer``; ``coupon_offer[coupon]`` must name a stored coupon that
    can still be redeemed on the subscription (``coupons.offer_coupon``); a subscription that
    already has a discount cannot be offered one (400, ``param`` the retention hash).
    """
    if not raw:
        return None
    if one_of(raw, "type", ("coupon_offer",), None, _RETENTION) is None:
        raise required(f"{_RETENTION}[type]")
    offer = get_dict(raw, "coupon_offer")
    if not offer:
        raise required(f"{_RETENTION}[coupon_offer]")
    param = f"{_RETENTION}[coupon_offer][coupon]"
    coupon = coupons.offer_coupon(state, need_str(offer, "coupon", param), sub["currency"], param)
    if sub["discounts"]:
        raise invalid(
            f"The subscription `{sub['id']}` already has a discount, so it can't be offered a "
            "retention coupon.",
            param=_RETENTION,
        )
    return {"coupon_offer": {"coupon": coupon["id"]}, "type": "coupon_offer"}


def _confirm_items(cfg: Obj, sub: Obj, raw: list[Any]) -> list[Obj]:
    """Validate ``flow_data[subscription_update_confirm][items]``."""
    base = "flow_data[subscription_update_confirm][items]"
    if not raw:
        raise required(base)
    own = {i["id"] for i in sub["items"]["data"]}
    prices = allowed_prices(cfg)
    out: list[Obj] = []
    for i, item in enumerate(raw):
        item_id = need_str(item, "id", f"{base}[{i}][id]")
        if item_id not in own:
            raise invalid(
                f"The subscription item `{item_id}` does not belong to the subscription "
                f"`{sub['id']}`.",
                param=f"{base}[{i}][id]",
            )
        price = get_str(item, "price") or None
        if price is not None and price not in prices:
            raise invalid(
                f"The price `{price}` is not one of the prices allowed by the portal "
                "configuration's `subscription_update` feature.",
                param=f"{base}[{i}][price]",
            )
        entry: Obj = {"id": item_id, "price": price}
        qty = positive_int(item, "quantity", f"{base}[{i}][quantity]")
        if qty is not None:
            entry["quantity"] = qty
        out.append(entry)
    return out


def session_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/billing_portal/sessions with Stripe's validation."""
    cus_id = resources.referenced(state, "customer", params, "customer")["id"]
    cfg_id = get_str(params, "configuration")
    if cfg_id:
        cfg = resources.get(state, CONFIGURATION, cfg_id, "configuration", 400)
        if not cfg["active"]:
            raise invalid(f"The configuration `{cfg_id}` is not active.", param="configuration")
    else:
        found = next((c for c in state.db.portal_configurations.values() if c["is_default"]), None)
        if found is None:
            raise invalid(
                "You can't create a portal session in test mode until you save your customer "
                "portal settings in test mode at "
                "https://dashboard.stripe.com/test/settings/billing/portal."
            )
        cfg = found
    return_url = get_str(params, "return_url") or cfg["default_return_url"]
    flow = None
    if "flow_data" in params:
        flow = _build_flow(state, cfg, cus_id, get_dict(params, "flow_data"))
    bps_id = resources.new_id("billing_portal.session")
    sess = template(
        "billing_portal.session",
        id=bps_id,
        configuration=cfg["id"],
        created=state.now(),
        customer=cus_id,
        flow=flow,
        locale=get_str(params, "locale") or None,
        on_behalf_of=get_str(params, "on_behalf_of") or None,
        return_url=return_url,
        url=f"{state.ctx.base_url}/p/session/{bps_id}",
    )
    state.portal_state[bps_id] = {"opened_at": None, "flow_done": False, "message": None}
    return respond(state, resources.add(state, "billing_portal.session", sess), params)


# -- hosted portal actions ------------------------------------------------------------


def open_session(state: EmulatorState, bps_id: str) -> tuple[Obj, Obj]:
    """The session and its configuration, or 404/410 when unknown or expired."""
    sess = state.db.portal_sessions.get(bps_id)
    if sess is None:
        raise StripeError("This portal session does not exist.", status=404)
    info = state.portal_state[bps_id]
    now = state.now()
    if info["opened_at"] is None:
        if now > sess["created"] + state.config.portal_session_ttl:
            raise StripeError("This portal session has expired.", status=410)
        info["opened_at"] = now
    elif now > info["opened_at"] + 3600:
        raise StripeError("This portal session has expired.", status=410)
    return sess, state.db.portal_configurations[sess["configuration"]]


def own_subscription(state: EmulatorState, sess: Obj, sub_id: str) -> Obj:
    """A live subscription of the session's customer (403 otherwise)."""
    sub = state.db.subscriptions.get(sub_id)
    if sub is None or sub["customer"] != sess["customer"]:
        raise StripeError("This subscription does not belong to this customer.", status=403)
    if sub["status"] in resources.ENDED:
        raise StripeError("This subscription has been canceled.", status=400)
    return sub


def _check_cancel(cfg: Obj, feedback: str | None) -> None:
    """400s for a cancellation the configuration does not allow or an unknown reason."""
    if not cfg["features"]["subscription_cancel"]["enabled"]:
        raise StripeError("Cancellation is not enabled in this portal.", status=400)
    if feedback and feedback not in FEEDBACK:
        raise StripeError(f"Unknown cancellation reason {feedback}.", status=400)


def do_cancel(
    state: EmulatorState, cfg: Obj, sub: Obj, feedback: str | None, comment: str | None
) -> None:
    """Cancel as configured: at period end (updated) or immediately (deleted)."""
    _check_cancel(cfg, feedback)
    if cfg["features"]["subscription_cancel"]["mode"] == "immediately":
        engine.cancel_now(state, sub, feedback=feedback, comment=comment)
        return
    before = engine.snapshot(sub)
    engine.schedule_cancel(state, sub, True)
    if feedback:
        sub["cancellation_details"]["feedback"] = feedback
    if comment:
        sub["cancellation_details"]["comment"] = comment
    engine.emit_updated(state, sub, before)


def do_renew(state: EmulatorState, sub: Obj) -> None:
    """Undo a scheduled cancellation: ``cancel_at_period_end`` false, ``cancel_at`` and
    ``canceled_at`` null, ``cancellation_details`` all nulls; customer.subscription.updated
    with their previous values."""
    before = engine.snapshot(sub)
    engine.schedule_cancel(state, sub, False)
    engine.emit_updated(state, sub, before)


# -- the retention offer of a subscription_cancel flow --------------------------------


def _cancel_flow(state: EmulatorState, sess: Obj, sub: Obj) -> Obj | None:
    """The ``subscription_cancel`` hash of the session's flow when it is under way for ``sub``."""
    flow = sess["flow"]
    if not flow or flow["type"] != "subscription_cancel":
        return None
    if state.portal_state[sess["id"]]["flow_done"]:
        return None
    details: Obj = flow["subscription_cancel"]
    return details if details["subscription"] == sub["id"] else None


def retention_offer(state: EmulatorState, sess: Obj, sub: Obj) -> Obj | None:
    """The coupon the session's cancel flow offers before canceling ``sub``: the flow is under
    way for it, has a ``coupon_offer``, the subscription still has no discount nor a scheduled
    cancellation and the coupon can still be redeemed on it. None otherwise (the cancel form
    then cancels at once)."""
    details = _cancel_flow(state, sess, sub)
    retention = (details or {}).get("retention")
    if not retention or sub["discounts"] or sub["cancel_at"]:  # answered in another session
        return None
    coupon = state.db.coupons.get(str(retention["coupon_offer"]["coupon"]))
    if coupon is None or not coupons.redeemable(state, coupon, sub["currency"]):
        return None
    return coupon


def pending_offer(state: EmulatorState, sess: Obj) -> Obj | None:
    """``{"subscription", "feedback", "comment"}`` once the cancel form was sent and the
    retention offer awaits the customer's answer (kept in ``state.portal_state``)."""
    if state.portal_state[sess["id"]]["flow_done"]:
        return None
    pending: Obj | None = state.portal_state[sess["id"]].get("offer")
    return pending


def start_cancel(
    state: EmulatorState,
    cfg: Obj,
    sess: Obj,
    sub: Obj,
    feedback: str | None,
    comment: str | None,
) -> bool:
    """The cancel form: with a retention offer to make (``retention_offer``), keep the reason
    and comment for the offer step and cancel nothing (False); else cancel (``do_cancel``,
    True)."""
    if retention_offer(state, sess, sub) is None:
        do_cancel(state, cfg, sub, feedback, comment)
        return True
    _check_cancel(cfg, feedback)
    state.portal_state[sess["id"]]["offer"] = {
        "comment": comment,
        "feedback": feedback,
        "subscription": sub["id"],
    }
    return False


def _answering(state: EmulatorState, sess: Obj, sub: Obj) -> Obj:
    """The pending offer of ``sub`` (400 when there is none to answer)."""
    pending = pending_offer(state, sess)
    if (
        pending is None
        or pending["subscription"] != sub["id"]
        or not _cancel_flow(state, sess, sub)
    ):
        raise StripeError("There is no retention offer to answer.", status=400)
    return pending


def accept_offer(state: EmulatorState, sess: Obj, sub: Obj) -> Obj:
    """Accept the retention offer: the subscription gains a discount of the coupon
    (``customer.discount.created``, then customer.subscription.updated with the previous
    ``discounts``) and is not canceled. Returns the discount."""
    _answering(state, sess, sub)
    coupon = retention_offer(state, sess, sub)
    if coupon is None:
        raise StripeError("This offer is no longer available.", status=400)
    before = engine.snapshot(sub)
    disc = coupons.add_coupon(state, sub, coupon)
    engine.emit_updated(state, sub, before)
    state.portal_state[sess["id"]].pop("offer", None)
    return disc


def decline_offer(state: EmulatorState, cfg: Obj, sess: Obj, sub: Obj) -> None:
    """Decline the retention offer: cancel with the reason and comment of the cancel form."""
    pending = _answering(state, sess, sub)
    do_cancel(state, cfg, sub, pending.get("feedback"), pending.get("comment"))
    state.portal_state[sess["id"]].pop("offer", None)


Switch = list[tuple[str, str | None, int | None]]  # (item id, price id, quantity)


def _parse_switch(state: EmulatorState, cfg: Obj, changes: Switch) -> list[Obj]:
    """Item changes for the engine; prices must be offered by the configuration."""
    allowed = allowed_prices(cfg)
    parsed: list[Obj] = []
    for item_id, price_id, qty in changes:
        change: Obj = {"id": item_id}
        if price_id:
            if price_id not in allowed:
                raise StripeError("This plan is not available in this portal.", status=400)
            change["price"] = resources.get(state, "price", price_id)
        if qty:
            change["quantity"] = qty
        parsed.append(change)
    return parsed


def preview_switch(state: EmulatorState, cfg: Obj, sub: Obj, changes: Switch) -> engine.Preview:
    """The invoice preview (lines and total) of a switch now, with the configured proration
    (no lines for a switch scheduled at the period end: nothing is billed now)."""
    if scheduled_at(state, cfg, sub, changes) is not None:
        return engine.Preview(())
    proration = cfg["features"]["subscription_update"]["proration_behavior"]
    return engine.preview_change(state, sub, _parse_switch(state, cfg, changes), proration)


_INTERVAL_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def _after_switch(sub: Obj, parsed: list[Obj]) -> list[schedules.PhaseItem]:
    """(price, quantity) of each item of the subscription after a switch."""
    by_id = {c["id"]: c for c in parsed}
    out: list[schedules.PhaseItem] = []
    for item in sub["items"]["data"]:
        change = by_id.get(item["id"], {})
        qty = int(change.get("quantity") or item.get("quantity") or 1)
        out.append((change.get("price") or item["price"], qty))
    return out


def _per_period(items: list[schedules.PhaseItem]) -> int:
    """What items bill per period."""
    return sum(int(price.get("unit_amount") or 0) * qty for price, qty in items)


def _days(price: Obj) -> int:
    """A price's interval, in days (months of 30, years of 365)."""
    rec = price.get("recurring") or {}
    return _INTERVAL_DAYS.get(str(rec.get("interval")), 30) * int(rec.get("interval_count") or 1)


def scheduled_at(state: EmulatorState, cfg: Obj, sub: Obj, changes: Switch) -> int | None:
    """The period end when the configuration's ``schedule_at_period_end`` conditions make a
    switch wait for it (None: it applies now). ``decreasing_item_amount``: the new items bill
    less per period; ``shortening_interval``: a shorter interval (year to month). A trialing
    subscription switches at once."""
    su = cfg["features"]["subscription_update"]
    conditions = {c["type"] for c in (su.get("schedule_at_period_end") or {}).get("conditions", [])}
    if not conditions or sub["status"] == "trialing":
        return None
    old = [(i["price"], int(i.get("quantity") or 1)) for i in sub["items"]["data"]]
    new = _after_switch(sub, _parse_switch(state, cfg, changes))
    lower = "decreasing_item_amount" in conditions and _per_period(new) < _per_period(old)
    shorter = "shortening_interval" in conditions and _days(new[0][0]) < _days(old[0][0])
    return engine.period(sub)[1] if lower or shorter else None


def do_switch(state: EmulatorState, cfg: Obj, sub: Obj, changes: Switch) -> None:
    """Switch item prices and quantities with the configured proration.

    A change without a quantity keeps the item's quantity, as on Stripe. Fires
    customer.subscription.updated (``previous_attributes.items``) and settles the invoice the
    change raises, if any (see ``engine.change_items``). A change meeting a
    ``schedule_at_period_end`` condition waits for the period end in a subscription schedule
    (``schedules.change_at_period_end``); one applied now releases a schedule the
    subscription had (the scheduled change is dropped).
    """
    parsed = _parse_switch(state, cfg, changes)
    if scheduled_at(state, cfg, sub, changes) is not None:
        schedules.change_at_period_end(state, sub, _after_switch(sub, parsed))
        return
    pending = schedules.of_subscription(state, sub)
    if pending is not None:
        schedules.release(state, pending)
    before = engine.snapshot(sub)
    proration = cfg["features"]["subscription_update"]["proration_behavior"]
    invoice = engine.change_items(state, sub, parsed, proration)
    engine.emit_updated(state, sub, before)
    if invoice is not None:
        engine.settle(state, sub, invoice)


def seat_limits(cfg: Obj, item: Obj) -> Obj | None:
    """The ``adjustable_quantity`` of an item's product when the portal lets customers change
    its quantity: subscription updates enabled, ``quantity`` among ``default_allowed_updates``
    and the product listed with ``adjustable_quantity.enabled``; None otherwise."""
    su = cfg["features"]["subscription_update"]
    if not su["enabled"] or "quantity" not in (su.get("default_allowed_updates") or []):
        return None
    product = item["price"]["product"]
    for entry in su.get("products") or []:
        aq: Obj = entry.get("adjustable_quantity") or {}
        if entry["product"] == product and aq.get("enabled"):
            return aq
    return None


def do_update_quantity(
    state: EmulatorState, cfg: Obj, sub: Obj, item_id: str, raw: str | None
) -> None:
    """The portal's own quantity update: checked against the product's minimum and maximum,
    then applied as ``do_switch`` applies a change (configured proration, events)."""
    item = next((i for i in sub["items"]["data"] if i["id"] == item_id), None)
    if item is None:
        raise invalid(
            f"The subscription item `{item_id}` does not belong to the subscription `{sub['id']}`.",
            param="item",
        )
    limits = seat_limits(cfg, item)
    if limits is None:
        raise invalid(
            "Quantity updates are not enabled for this product in the portal configuration.",
            param="quantity",
        )
    qty = positive_int({"quantity": (raw or "").strip()}, "quantity", "quantity")
    if qty is None:
        raise required("quantity")
    minimum, maximum = int(limits.get("minimum") or 1), limits.get("maximum")
    if qty < minimum:
        raise invalid(f"The quantity must be at least {minimum}.", param="quantity")
    if maximum is not None and qty > int(maximum):
        raise invalid(f"The quantity must be at most {maximum}.", param="quantity")
    do_switch(state, cfg, sub, [(item_id, None, qty)])


def do_update_payment_method(state: EmulatorState, sess: Obj, card: str | None) -> None:
    """Save a new card as the customer's default (``cards.save_card``; declined: 402) and their
    live subscriptions' that have one: it pays the customer's open invoices at once and
    resumes subscriptions paused for want of one."""
    cus_id = sess["customer"]
    pm = cards.save_card(state, cus_id, card)
    if pm is None:
        raise cards.incomplete()
    for sub in state.db.subscriptions.values():  # those with their own default use it too
        if sub["customer"] == cus_id and sub["default_payment_method"]:
            if sub["status"] not in resources.ENDED:
                cards.set_subscription_default(state, sub, pm)
    engine.pay_open_invoices(state, cus_id)
    engine.resume_paused(state, cus_id, on_session=True)


_ADDRESS = ("line1", "line2", "city", "state", "postal_code", "country")


def do_update_customer(state: EmulatorState, cfg: Obj, sess: Obj, fields: dict[str, str]) -> None:
    """The portal's "Update information" form: the ``customer_update.allowed_updates`` among
    email, name, phone and address (``address_line1``...) change; fires customer.updated."""
    feature = cfg["features"]["customer_update"]
    if not feature["enabled"]:
        raise StripeError("Customer information updates are not enabled.", status=400)
    allowed = set(feature["allowed_updates"])
    params: Params = {
        name: fields[name].strip()
        for name in ("email", "name", "phone")
        if name in allowed and name in fields
    }
    if params.get("email") == "" or "@" not in params.get("email", "@"):
        raise invalid("Please enter a valid email address.", param="email")
    if "address" in allowed and any(f"address_{k}" in fields for k in _ADDRESS):
        params["address"] = {k: fields.get(f"address_{k}", "").strip() for k in _ADDRESS}
    customers.update(state, params, sess["customer"])
