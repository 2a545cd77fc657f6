"""Hosted pages: Checkout (/c/pay/...), the billing portal (/p/session/...), invoices (/i/...)."""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from emulator import checkout, engine, portal
from emulator.errors import StripeError
from emulator.forms import decode_body
from emulator.html import date, form, link, money, page, text_input
from emulator.state import EmulatorState

Obj = dict[str, Any]


def _state(request: Request) -> EmulatorState:
    """The emulator state, with the base URL of this request."""
    state: EmulatorState = request.app.state.emulator
    host = request.headers.get("host", request.url.netloc)
    state.ctx.base_url = f"{request.url.scheme}://{host}"
    state.ctx.request_id = None
    state.ctx.idempotency_key = None
    return state


def _error(err: StripeError, extra: str = "") -> HTMLResponse:
    """An error page with the error's status (``extra``: e.g. a link back)."""
    body = f"<p class='error' id='error'>{escape(err.message)}</p>{extra}"
    return HTMLResponse(page("Something went wrong", body), status_code=err.status)


async def _fields(request: Request) -> dict[str, str]:
    """Submitted form fields."""
    return {k: str(v) for k, v in decode_body(await request.body()).items()}


# -- checkout ---------------------------------------------------------------------------


async def checkout_page(request: Request) -> Response:
    """The payment page with ``form#pay`` and ``form#cancel``."""
    state = _state(request)
    cs_id = request.path_params["cs"]
    try:
        cs = checkout.get_session(state, cs_id)
        checkout.check_open(state, cs)
    except StripeError as err:
        return _error(err)
    rows = "".join(
        f"<tr><td>{escape(str(i['description']))}</td><td>{i['quantity']}</td>"
        f"<td>{money(i['amount_total'], i['currency'])}"
        f"{' / ' + i['price']['recurring']['interval'] if i['price']['recurring'] else ''}"
        "</td></tr>"
        for i in state.line_items.get(cs_id, [])
    )
    trial = state.checkout_internal.get(cs_id, {}).get("trial_days")
    trial_note = f"<p id='trial'>{trial}-day free trial</p>" if trial else ""
    cus = state.db.customers.get(cs["customer"] or "")
    if cus is not None and cus.get("email"):
        fields = _paying_as(cus)
    else:  # as on Stripe: Checkout asks for the email a customer lacks, and saves it
        fields = _paying_as(cus or {}) + text_input(
            "email", cs.get("customer_email") or "", "Email", "email"
        )
    fields += text_input("card", "4242 4242 4242 4242", "Card number")
    base = f"/c/pay/{cs_id}"
    body = (
        f"<table id='line-items'><tr><th>Item</th><th>Qty</th><th>Price</th></tr>{rows}</table>"
        f"<p>Total due today: <b id='total'>{money(cs['amount_total'], cs['currency'])}</b></p>"
        f"{trial_note}<div class='box'>"
        + form(
            "pay",
            f"{base}/pay",
            "Subscribe" if cs["mode"] == "subscription" else "Pay",
            visible=fields,
        )
        + "</div>"
        + form("cancel", f"{base}/cancel", "Back", secondary=True)
    )
    return HTMLResponse(page("Checkout", body))


def _paying_as(cus: Obj) -> str:
    """Who pays: the customer's email, else their name (never the ``cus_`` id)."""
    shown = cus.get("email") or cus.get("name")
    return f"<p id='customer'>Paying as <b>{escape(shown)}</b></p>" if shown else ""


async def checkout_pay(request: Request) -> Response:
    """Pay: complete the session and redirect to success_url (declined: a link back)."""
    state = _state(request)
    fields = await _fields(request)
    cs_id = request.path_params["cs"]
    try:
        cs = checkout.get_session(state, cs_id)
        target = checkout.pay(state, cs, fields.get("email"), fields.get("card"))
    except StripeError as err:
        back = link("back", f"/c/pay/{cs_id}", "Try another card") if err.status == 402 else ""
        return _error(err, back)
    if not target:
        return HTMLResponse(page("Thanks!", "<p id='success'>Payment complete.</p>"))
    return RedirectResponse(target, status_code=303)


async def checkout_cancel(request: Request) -> Response:
    """Cancel: redirect to cancel_url."""
    state = _state(request)
    try:
        cs = checkout.get_session(state, request.path_params["cs"])
    except StripeError as err:
        return _error(err)
    target = checkout.cancel(state, cs)
    if not target:
        return HTMLResponse(page("Checkout canceled", "<p id='canceled'>Canceled.</p>"))
    return RedirectResponse(target, status_code=303)


# -- portal -----------------------------------------------------------------------------


def _subs(state: EmulatorState, customer: str) -> list[Obj]:
    """The customer's live subscriptions, newest first."""
    subs = [
        s
        for s in state.db.subscriptions.values()
        if s["customer"] == customer and s["status"] not in ("canceled", "incomplete_expired")
    ]
    subs.reverse()
    return subs


def _plan(state: EmulatorState, price: Obj) -> str:
    """``Pro — 20.00 USD / month``."""
    prod = state.db.products.get(price["product"]) or {}
    rec = price.get("recurring") or {}
    amount = money(price.get("unit_amount"), price["currency"])
    return f"{prod.get('name', price['product'])} — {amount} / {rec.get('interval', 'once')}"


def _switch_forms(state: EmulatorState, base: str, cfg: Obj, sub: Obj, suffix: str) -> str:
    """One ``form#switch-{price}`` per configured price other than the current one."""
    current = sub["items"]["data"][0]
    out = []
    for price_id in portal.allowed_prices(cfg):
        if price_id == current["price"]["id"] or price_id not in state.db.prices:
            continue
        price = state.db.prices[price_id]
        out.append(
            f"<div class='box'><p>{escape(_plan(state, price))}</p>"
            + form(
                f"switch-{price_id}{suffix}",
                f"{base}/switch",
                "Select",
                {"subscription": sub["id"], "item": current["id"], "price": price_id},
            )
            + "</div>"
        )
    return "".join(out)


def _cancel_form(base: str, cfg: Obj, sub: Obj, form_id: str, label: str) -> str:
    """The cancel form (with a reason select when configured)."""
    reason = cfg["features"]["subscription_cancel"]["cancellation_reason"]
    visible = ""
    if reason["enabled"]:
        opts = "".join(
            f"<option value='{escape(o)}'>{escape(o)}</option>" for o in reason["options"]
        )
        visible = (
            f"<p><label>Reason <select name='feedback'><option value=''></option>{opts}"
            "</select></label></p>" + text_input("comment", "", "Comment")
        )
    return form(form_id, f"{base}/cancel", label, {"subscription": sub["id"]}, visible)


def _home(state: EmulatorState, sess: Obj, cfg: Obj, message: str | None) -> str:
    """The portal home page body."""
    base = f"/p/session/{sess['id']}"
    features = cfg["features"]
    parts: list[str] = []
    if message:
        parts.append(f"<p class='banner' id='message'>{escape(message)}</p>")
    if cfg["business_profile"].get("headline"):
        parts.append(f"<p id='headline'>{escape(cfg['business_profile']['headline'])}</p>")
    subs = _subs(state, sess["customer"])
    if not subs:
        parts.append("<p id='no-subscription'>No active subscription.</p>")
    for n, sub in enumerate(subs):
        suffix = "" if n == 0 else f"-{sub['id']}"
        item = sub["items"]["data"][0]
        _start, end = engine.period(sub)
        status = sub["status"]
        note = (
            f"<p id='cancel-note{suffix}'>Cancels on {date(sub['cancel_at'])}</p>"
            if sub["cancel_at"]
            else f"<p>Renews on {date(end)}</p>"
        )
        if status == "trialing":
            note += f"<p id='trial-note{suffix}'>Trial ends {date(sub['trial_end'])}</p>"
        block = (
            f"<div class='box' id='subscription{suffix}' data-subscription='{sub['id']}'>"
            f"<h2>Current plan</h2><p id='current-plan{suffix}' data-price='{item['price']['id']}'>"
            f"{escape(_plan(state, item['price']))}</p><p>Status: <b>{status}</b></p>{note}"
        )
        if features["subscription_cancel"]["enabled"]:
            if sub["cancel_at_period_end"] or sub["cancel_at"]:
                block += form(
                    f"renew{suffix}", f"{base}/renew", "Renew plan", {"subscription": sub["id"]}
                )
            else:
                block += _cancel_form(base, cfg, sub, f"cancel{suffix}", "Cancel plan")
        block += "</div>"
        parts.append(block)
        if portal.allowed_prices(cfg):
            parts.append(f"<h3>Switch plan</h3>{_switch_forms(state, base, cfg, sub, suffix)}")
    if features["payment_method_update"]["enabled"]:
        parts.append(
            "<div class='box'><h2>Payment method</h2>"
            + form(
                "update-payment-method",
                f"{base}/payment-method",
                "Save card",
                visible=text_input("card", "4242 4242 4242 4242", "Card number"),
            )
            + "</div>"
        )
    if features["invoice_history"]["enabled"]:
        invoices = [i for i in state.db.invoices.values() if i["customer"] == sess["customer"]]
        invoices.reverse()
        rows = "".join(
            f"<tr data-invoice='{i['id']}'><td>{date(i['created'])}</td>"
            f"<td>{money(i['total'], i['currency'])}</td><td>{i['status']}</td>"
            f"<td><a href='/i/{i['id']}'>{escape(i['number'] or i['id'])}</a></td></tr>"
            for i in invoices
        )
        parts.append(
            "<h2>Invoice history</h2><table id='invoices'><tr><th>Date</th><th>Amount</th>"
            f"<th>Status</th><th>Invoice</th></tr>{rows}</table>"
        )
    if sess["return_url"]:
        parts.append(link("return", sess["return_url"], "Return to the site"))
    return "".join(parts)


def _flow_page(state: EmulatorState, sess: Obj, cfg: Obj) -> str:
    """The page of a flow session."""
    flow = sess["flow"]
    base = f"/p/session/{sess['id']}"
    kind = flow["type"]
    back = link("return", sess["return_url"], "Back") if sess["return_url"] else ""
    if kind == "payment_method_update":
        return (
            "<h2>Update payment method</h2>"
            + form(
                "update-payment-method",
                f"{base}/payment-method",
                "Save card",
                visible=text_input("card", "4242 4242 4242 4242", "Card number"),
            )
            + back
        )
    sub = state.db.subscriptions[flow[kind]["subscription"]]
    current = sub["items"]["data"][0]
    head = (
        f"<p id='current-plan' data-price='{current['price']['id']}'>"
        f"{escape(_plan(state, current['price']))}</p>"
    )
    if kind == "subscription_cancel":
        end = engine.period(sub)[1]
        mode = cfg["features"]["subscription_cancel"]["mode"]
        when = "now" if mode == "immediately" else f"on {date(end)}"
        return (
            f"<h2>Cancel your plan</h2>{head}<p>Your plan will be canceled {when}.</p>"
            + _cancel_form(base, cfg, sub, "confirm", "Cancel plan")
            + back
        )
    if kind == "subscription_update":
        return f"<h2>Update your plan</h2>{head}" + _switch_forms(state, base, cfg, sub, "") + back
    return _confirm_page(state, cfg, sub, flow, base) + back


def confirm_changes(flow: Obj) -> portal.Switch:
    """The (item, price, quantity) changes of a ``subscription_update_confirm`` flow."""
    return [
        (i["id"], i.get("price"), i.get("quantity"))
        for i in flow["subscription_update_confirm"]["items"]
    ]


TIMES = "\u00d7"


def _plan_rows(state: EmulatorState, items: list[tuple[Obj, int]]) -> str:
    """``<li>`` per (price, quantity): product name and price."""
    return "".join(
        f"<li data-price='{escape(price['id'])}'>{escape(_plan(state, price))}"
        f"{f' {TIMES} {qty}' if qty != 1 else ''}</li>"
        for price, qty in items
    )


def _confirm_page(state: EmulatorState, cfg: Obj, sub: Obj, flow: Obj, base: str) -> str:
    """Current plan, new plan and the amount due today (Stripe's invoice preview)."""
    changes = {item_id: (price, qty) for item_id, price, qty in confirm_changes(flow)}
    current: list[tuple[Obj, int]] = []
    new: list[tuple[Obj, int]] = []
    for item in sub["items"]["data"]:
        qty = int(item.get("quantity") or 1)
        price_id, new_qty = changes.get(item["id"], (None, None))
        current.append((item["price"], qty))
        new.append((state.db.prices.get(price_id or "", item["price"]), new_qty or qty))
    total = portal.preview_switch(state, cfg, sub, confirm_changes(flow))
    due = max(0, total)
    credit = (
        f"<p id='credit'>Credit to your balance: {money(-total, sub['currency'])}</p>"
        if total < 0
        else ""
    )
    return (
        "<h2>Confirm your new plan</h2>"
        f"<div class='box'><h3>Current plan</h3><ul id='current-plan'>{_plan_rows(state, current)}"
        f"</ul></div><div class='box'><h3>New plan</h3><ul id='new-plan'>"
        f"{_plan_rows(state, new)}</ul></div>"
        f"<p>Amount due today: <b id='amount-due' data-amount='{due}'>"
        f"{money(due, sub['currency'])}</b></p>{credit}"
        + form("confirm", f"{base}/confirm", "Confirm", {"subscription": sub["id"]})
    )


async def portal_page(request: Request) -> Response:
    """The portal home, or the page of the session's flow."""
    state = _state(request)
    try:
        sess, cfg = portal.open_session(state, request.path_params["bps"])
        info = state.portal_state[sess["id"]]
        if sess["flow"] and not info["flow_done"]:
            return HTMLResponse(page("Manage your subscription", _flow_page(state, sess, cfg)))
    except StripeError as err:
        return _error(err)
    message = info.pop("message", None)
    info["message"] = None
    return HTMLResponse(page("Manage your subscription", _home(state, sess, cfg, message)))


def _after(state: EmulatorState, sess: Obj) -> str:
    """Where to go after an action: the flow's redirect, or the portal home."""
    info = state.portal_state[sess["id"]]
    flow = sess["flow"]
    if flow and not info["flow_done"]:
        info["flow_done"] = True
        after = flow["after_completion"]
        if after["type"] == "redirect":
            target: str = after["redirect"]["return_url"]
            return target
        if after["type"] == "hosted_confirmation":
            custom = (after.get("hosted_confirmation") or {}).get("custom_message")
            info["message"] = custom or "Your changes have been saved."
    return f"/p/session/{sess['id']}"


async def portal_action(request: Request) -> Response:
    """POST actions: cancel, renew, switch, confirm, payment-method."""
    state = _state(request)
    action = request.path_params["action"]
    fields = await _fields(request)
    try:
        sess, cfg = portal.open_session(state, request.path_params["bps"])
        flow = sess["flow"]
        if action == "payment-method":
            if not cfg["features"]["payment_method_update"]["enabled"]:
                raise StripeError("Payment method updates are not enabled.", status=400)
            portal.do_update_payment_method(state, sess, fields.get("card"))
        else:
            sub = portal.own_subscription(state, sess, fields.get("subscription", ""))
            if action == "cancel":
                portal.do_cancel(
                    state, cfg, sub, fields.get("feedback") or None, fields.get("comment") or None
                )
            elif action == "renew":
                portal.do_renew(state, sub)
            elif action == "switch":
                item = fields.get("item") or sub["items"]["data"][0]["id"]
                portal.do_switch(state, cfg, sub, [(item, fields.get("price"), None)])
            elif action == "confirm" and flow and flow["type"] == "subscription_update_confirm":
                portal.do_switch(state, cfg, sub, confirm_changes(flow))
            else:
                raise StripeError("Unknown portal action.", status=404)
    except StripeError as err:
        return _error(err)
    return RedirectResponse(_after(state, sess), status_code=303)


# -- invoices ---------------------------------------------------------------------------


async def invoice_page(request: Request) -> Response:
    """A hosted invoice page."""
    state = _state(request)
    inv = state.db.invoices.get(request.path_params["inv"])
    if inv is None:
        return _error(StripeError("No such invoice.", status=404))
    rows = "".join(
        f"<tr><td>{escape(str(line['description']))}</td>"
        f"<td>{money(line['amount'], line['currency'])}</td></tr>"
        for line in inv["lines"]["data"]
    )
    body = (
        f"<p>Invoice <b id='number'>{escape(inv['number'] or inv['id'])}</b> · "
        f"<span id='status'>{inv['status']}</span></p><table>{rows}</table>"
        f"<p>Total: <b>{money(inv['total'], inv['currency'])}</b></p>"
    )
    return HTMLResponse(page("Invoice", body))


ROUTES = [
    Route("/c/pay/{cs}", checkout_page, methods=["GET"]),
    Route("/c/pay/{cs}/pay", checkout_pay, methods=["POST"]),
    Route("/c/pay/{cs}/cancel", checkout_cancel, methods=["POST"]),
    Route("/p/session/{bps}", portal_page, methods=["GET"]),
    Route("/p/session/{bps}/{action}", portal_action, methods=["POST"]),
    Route("/i/{inv}", invoice_page, methods=["GET"]),
]
