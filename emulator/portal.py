"""Billing portal: configurations, sessions (with flows and Stripe's validation), actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import engine
from emulator.catalog import get_price, get_product
from emulator.customers import get_customer
from emulator.errors import StripeError, invalid, missing, required
from emulator.ids import new_id
from emulator.listing import expand, paginate
from emulator.params import (
    apply_metadata,
    expand_list,
    get_bool,
    get_dict,
    get_list,
    get_str,
    one_of,
)
from emulator.spec import template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Obj = dict[str, Any]
Params = dict[str, Any]
PRORATIONS = ("always_invoice", "create_prorations", "none")
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


def _out(state: EmulatorState, obj: Obj, params: Params) -> Obj:
    """Response with expansion."""
    return expand(state, obj, expand_list(params)) if "expand" in params else obj


# -- configurations -------------------------------------------------------------------


def get_configuration(
    state: EmulatorState, bpc_id: str, param: str = "id", status: int = 404
) -> Obj:
    """A portal configuration or resource_missing."""
    cfg = state.db.portal_configurations.get(bpc_id)
    if cfg is None:
        raise missing("billing_portal.configuration", bpc_id, param=param, status=status)
    return cfg


def _default_features() -> Obj:
    """All features disabled."""
    return {
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
    }


def _apply_features(state: EmulatorState, features: Obj, params: Params) -> None:
    """Apply ``features[...]`` parameters."""
    raw = get_dict(params, "features")
    if "customer_update" in raw:
        cu = get_dict(raw, "customer_update")
        target = features["customer_update"]
        if "enabled" in cu:
            target["enabled"] = bool(get_bool(cu, "enabled"))
        if "allowed_updates" in cu:
            target["allowed_updates"] = [str(x) for x in get_list(cu, "allowed_updates")]
    for name in ("invoice_history", "payment_method_update"):
        if name in raw:
            sub = get_dict(raw, name)
            if "enabled" in sub:
                features[name]["enabled"] = bool(get_bool(sub, "enabled"))
    if "subscription_cancel" in raw:
        sc = get_dict(raw, "subscription_cancel")
        target = features["subscription_cancel"]
        if "enabled" in sc:
            target["enabled"] = bool(get_bool(sc, "enabled"))
        if "mode" in sc:
            target["mode"] = one_of(sc, "mode", ("at_period_end", "immediately"), None, _SC)
        if "proration_behavior" in sc:
            target["proration_behavior"] = one_of(sc, "proration_behavior", PRORATIONS, None, _SC)
        if "cancellation_reason" in sc:
            cr = get_dict(sc, "cancellation_reason")
            if "enabled" in cr:
                target["cancellation_reason"]["enabled"] = bool(get_bool(cr, "enabled"))
            if "options" in cr:
                target["cancellation_reason"]["options"] = [str(x) for x in get_list(cr, "options")]
    if "subscription_update" in raw:
        su = get_dict(raw, "subscription_update")
        target = features["subscription_update"]
        if "enabled" in su:
            target["enabled"] = bool(get_bool(su, "enabled"))
        if "default_allowed_updates" in su:
            target["default_allowed_updates"] = [
                str(x) for x in get_list(su, "default_allowed_updates")
            ]
        if "proration_behavior" in su:
            target["proration_behavior"] = one_of(su, "proration_behavior", PRORATIONS, None, _SU)
        if "billing_cycle_anchor" in su:
            target["billing_cycle_anchor"] = get_str(su, "billing_cycle_anchor") or None
        if "trial_update_behavior" in su:
            target["trial_update_behavior"] = get_str(su, "trial_update_behavior")
        if "products" in su:
            target["products"] = _products(state, get_list(su, "products"))
        if target["enabled"] and not target["products"]:
            raise invalid(
                "You must specify at least one product when subscription_update is enabled.",
                param="features[subscription_update][products]",
            )


def _products(state: EmulatorState, raw: list[Any]) -> list[Obj]:
    """Validate ``features[subscription_update][products]``."""
    out: list[Obj] = []
    for i, entry in enumerate(raw):
        param = f"features[subscription_update][products][{i}]"
        prod_id = get_str(entry, "product")
        if not prod_id:
            raise required(f"{param}[product]")
        get_product(state, prod_id, param=f"{param}[product]", status=400)
        prices = [str(p) for p in get_list(entry, "prices")]
        if not prices:
            raise required(f"{param}[prices]")
        for price_id in prices:
            price = get_price(state, price_id, param=f"{param}[prices]", status=400)
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
        aq = get_dict(entry, "adjustable_quantity")
        out.append(
            {
                "adjustable_quantity": {
                    "enabled": bool(get_bool(aq, "enabled", False)),
                    "maximum": int(aq["maximum"]) if aq.get("maximum") else None,
                    "minimum": int(aq.get("minimum") or 1),
                },
                "prices": prices,
                "product": prod_id,
            }
        )
    return out


def _apply_config(state: EmulatorState, cfg: Obj, params: Params) -> None:
    """Apply configuration parameters."""
    if "business_profile" in params:
        bp = get_dict(params, "business_profile")
        for key in ("headline", "privacy_policy_url", "terms_of_service_url"):
            if key in bp:
                cfg["business_profile"][key] = bp[key] or None
    if "default_return_url" in params:
        cfg["default_return_url"] = get_str(params, "default_return_url") or None
    if "active" in params:
        cfg["active"] = bool(get_bool(params, "active"))
    if "name" in params:
        cfg["name"] = get_str(params, "name") or None
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
    cfg = template("billing_portal.configuration")
    cfg.update(
        id=new_id("bpc_"),
        active=True,
        application=None,
        business_profile={
            "headline": None,
            "privacy_policy_url": None,
            "terms_of_service_url": None,
        },
        created=now,
        updated=now,
        default_return_url=None,
        features=_default_features(),
        is_default=False,
        livemode=False,
        login_page={"enabled": False, "url": None},
        metadata={},
        name=None,
    )
    _apply_config(state, cfg, params)
    state.db.portal_configurations[cfg["id"]] = cfg
    state.emit("billing_portal.configuration.created", cfg)
    return _out(state, cfg, params)


def configuration_retrieve(state: EmulatorState, params: Params, bpc_id: str) -> Obj:
    """GET /v1/billing_portal/configurations/{id}."""
    return _out(state, get_configuration(state, bpc_id), params)


def configuration_update(state: EmulatorState, params: Params, bpc_id: str) -> Obj:
    """POST /v1/billing_portal/configurations/{id}."""
    cfg = get_configuration(state, bpc_id)
    before = engine.snapshot(cfg)
    _apply_config(state, cfg, params)
    previous = engine.changed(before, cfg)
    if previous:
        cfg["updated"] = state.now()
        state.emit("billing_portal.configuration.updated", cfg, previous)
    return _out(state, cfg, params)


def configuration_list(state: EmulatorState, params: Params) -> Obj:
    """GET /v1/billing_portal/configurations with active, is_default."""
    items = list(state.db.portal_configurations.values())
    for key in ("active", "is_default"):
        value = get_bool(params, key)
        if value is not None:
            items = [c for c in items if c[key] == value]
    url = "/v1/billing_portal/configurations"
    return paginate(state, items, params, url, "billing_portal.configuration")


def set_default(state: EmulatorState, bpc_id: str | None) -> Obj | None:
    """Make a configuration the default, as saving it in the Dashboard does (None: no default)."""
    chosen = get_configuration(state, bpc_id) if bpc_id else None
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
    sub_id = get_str(data, "subscription")
    if not sub_id:
        raise required(param)
    sub = state.db.subscriptions.get(sub_id)
    if sub is None:
        raise missing("subscription", sub_id, param=param, status=400)
    if sub["customer"] != customer:
        raise invalid(
            f"The subscription `{sub_id}` does not belong to the customer `{customer}`.",
            param=param,
        )
    if sub["status"] in ("canceled", "incomplete_expired"):
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
            "retention": _retention(get_dict(data, "retention")),
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


def _retention(raw: Params) -> Obj | None:
    """``flow_data[subscription_cancel][retention]`` as the flow shows it (None when absent)."""
    if not raw:
        return None
    offer = get_dict(raw, "coupon_offer")
    return {"coupon_offer": {"coupon": str(offer.get("coupon"))}, "type": str(raw.get("type"))}


def _confirm_items(cfg: Obj, sub: Obj, raw: list[Any]) -> list[Obj]:
    """Validate ``flow_data[subscription_update_confirm][items]``."""
    base = "flow_data[subscription_update_confirm][items]"
    if not raw:
        raise required(base)
    own = {i["id"] for i in sub["items"]["data"]}
    prices = allowed_prices(cfg)
    out: list[Obj] = []
    for i, item in enumerate(raw):
        item_id = get_str(item, "id")
        if not item_id:
            raise required(f"{base}[{i}][id]")
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
        qty = item.get("quantity")
        entry: Obj = {"id": item_id, "price": price}
        if qty not in (None, ""):
            entry["quantity"] = int(qty)
        out.append(entry)
    return out


def session_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/billing_portal/sessions with Stripe's validation."""
    cus_id = get_str(params, "customer")
    if not cus_id:
        raise required("customer")
    get_customer(state, cus_id, param="customer", status=400)
    cfg_id = get_str(params, "configuration")
    if cfg_id:
        cfg = get_configuration(state, cfg_id, param="configuration", status=400)
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
    bps_id = new_id("bps_")
    sess = template("billing_portal.session")
    sess.update(
        id=bps_id,
        configuration=cfg["id"],
        created=state.now(),
        customer=cus_id,
        customer_account=None,
        flow=flow,
        livemode=False,
        locale=get_str(params, "locale") or None,
        on_behalf_of=get_str(params, "on_behalf_of") or None,
        return_url=return_url,
        url=f"{state.ctx.base_url}/p/session/{bps_id}",
    )
    state.db.portal_sessions[bps_id] = sess
    state.portal_state[bps_id] = {"opened_at": None, "flow_done": False, "message": None}
    state.emit("billing_portal.session.created", sess)
    return _out(state, sess, params)


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
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise StripeError("This subscription has been canceled.", status=400)
    return sub


def do_cancel(
    state: EmulatorState, cfg: Obj, sub: Obj, feedback: str | None, comment: str | None
) -> None:
    """Cancel as configured: at period end (updated) or immediately (deleted)."""
    feature = cfg["features"]["subscription_cancel"]
    if not feature["enabled"]:
        raise StripeError("Cancellation is not enabled in this portal.", status=400)
    if feedback and feedback not in FEEDBACK:
        raise StripeError(f"Unknown cancellation reason {feedback}.", status=400)
    if feature["mode"] == "immediately":
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
    """Undo a scheduled cancellation."""
    before = engine.snapshot(sub)
    engine.schedule_cancel(state, sub, False)
    engine.emit_updated(state, sub, before)


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
            change["price"] = get_price(state, price_id)
        if qty:
            change["quantity"] = qty
        parsed.append(change)
    return parsed


def preview_switch(state: EmulatorState, cfg: Obj, sub: Obj, changes: Switch) -> int:
    """The invoice preview total of a switch now, with the configured proration."""
    proration = cfg["features"]["subscription_update"]["proration_behavior"]
    return engine.preview_change(state, sub, _parse_switch(state, cfg, changes), proration)


def do_switch(state: EmulatorState, cfg: Obj, sub: Obj, changes: Switch) -> None:
    """Switch item prices with the configured proration."""
    parsed = _parse_switch(state, cfg, changes)
    before = engine.snapshot(sub)
    proration = cfg["features"]["subscription_update"]["proration_behavior"]
    invoice = engine.change_items(state, sub, parsed, proration)
    engine.emit_updated(state, sub, before)
    if invoice is not None:
        engine.settle(state, sub, invoice)


def do_update_payment_method(state: EmulatorState, sess: Obj, card: str | None) -> None:
    """Save a new card: good cards pay the customer's open invoices."""
    from emulator.checkout import DECLINED, FAILS_LATER

    number = "".join(ch for ch in (card or "") if ch.isdigit())
    if number in DECLINED:
        raise StripeError("Your card was declined.", status=402)
    cus_id = sess["customer"]
    if number == FAILS_LATER:
        state.failing_cards.add(cus_id)
        return
    state.failing_cards.discard(cus_id)
    engine.pay_open_invoices(state, cus_id)
