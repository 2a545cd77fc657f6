"""Hosted pages: Checkout (/c/pay/...), the billing portal (/p/session/...), invoices (/i/...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from emulator import checkout, coupons, engine, entitlements, portal, resources, schedules
from emulator.errors import StripeError
from emulator.forms import decode_body
from emulator.html import date, form, link, money, page, text_input
from emulator.shapes import Obj
from emulator.state import EmulatorState, of_request

Page = Callable[[Request, EmulatorState], Awaitable[Response]]
_CARD = text_input("card", "4242 4242 4242 4242", "Card number")


def _error(err: StripeError, extra: str = "") -> HTMLResponse:
    """An error page with the error's status (``extra``: e.g. a link back)."""
    body = f"<p class='error' id='error'>{escape(err.message)}</p>{extra}"
    return HTMLResponse(page("Something went wrong", body), status_code=err.status)


def hosted(page_of: Page, extra: str = "") -> Callable[[Request], Awaitable[Response]]:
    """A page of the request's state; a StripeError it raises is an error page (with ``extra``).

    The entitlement summaries its changes call for fire after it (``entitlements.sync``).
    """

    async def endpoint(request: Request) -> Response:
        state = of_request(request)
        try:
            return await page_of(request, state)
        except StripeError as err:
            return _error(err, extra)
        finally:
            entitlements.sync(state)

    return endpoint


def _card_form(base: str) -> str:
    """``form#update-payment-method``: a new card for the customer."""
    return form("update-payment-method", f"{base}/payment-method", "Save card", visible=_CARD)


async def _fields(request: Request) -> dict[str, str]:
    """Submitted form fields."""
    return {k: str(v) for k, v in decode_body(await request.body()).items()}


# -- checkout ---------------------------------------------------------------------------


@hosted
async def checkout_page(request: Request, state: EmulatorState) -> Response:
    """The payment page with ``form#pay`` and ``form#cancel``."""
    cs_id = request.path_params["cs"]
    cs = resources.get(state, "checkout.session", cs_id)
    checkout.check_open(state, cs)
    rows = "".join(_checkout_row(n, i) for n, i in enumerate(state.line_items.get(cs_id, [])))
    trial = state.checkout_internal.get(cs_id, {}).get("trial_days")
    trial_note = f"<p id='trial'>{trial}-day free trial</p>" if trial else ""
    cus = state.db.customers.get(cs["customer"] or "")
    if cus is not None and cus.get("email"):
        fields = _paying_as(cus)
    else:  # as on Stripe: Checkout asks for the email a customer lacks, and saves it
        fields = _paying_as(cus or {}) + text_input(
            "email", cs.get("customer_email") or "", "Email", "email"
        )
    fields += _checkout_inputs(state, cs)
    base = f"/c/pay/{cs_id}"
    tax = cs["automatic_tax"]["enabled"]
    body = (
        "<table id='line-items'><tr><th>Item</th><th>Qty</th><th>Unit price</th><th>Price</th>"
        f"</tr>{rows}</table>"
        + (f"<p>Tax: <span id='tax'>{money(0, cs['currency'])}</span></p>" if tax else "")
        + f"<p>Total due today: <b id='total'>{money(cs['amount_total'], cs['currency'])}</b></p>"
        f"{trial_note}<div class='box'>"
        + form("pay", f"{base}/pay", _pay_label(state, cs), visible=fields)
        + "</div>"
        + form("cancel", f"{base}/cancel", "Back", secondary=True)
    )
    return HTMLResponse(page("Checkout", body))


def _pay_label(state: EmulatorState, cs: Obj) -> str:
    """The Checkout button: "Start trial" for a trial needing no card, "Subscribe", "Pay"."""
    if not checkout.card_required(state, cs) and checkout.trial_days(state, cs):
        return "Start trial"
    return "Subscribe" if cs["mode"] == "subscription" else "Pay"


def _required_input(name: str, label: str) -> str:
    """A labelled text input the form cannot be sent without."""
    return (
        f"<p><label>{escape(label)} <input type='text' name='{escape(name)}' value='' "
        "required></label></p>"
    )


def _checkout_inputs(state: EmulatorState, cs: Obj) -> str:
    """The card (optional for a trial with ``payment_method_collection=if_required``:
    ``p#card-optional``), billing address (``address_line1``, ``address_city``,
    ``address_postal_code``, ``address_country``), ``tax_id`` and ``promotion_code`` inputs
    the session's options call for."""
    if checkout.card_required(state, cs):
        out = _CARD
    else:
        out = "<p id='card-optional'>No card needed today.</p>" + text_input(
            "card", "", "Card number (optional)"
        )
    if checkout.address_required(state, cs):
        out += "<h3>Billing address</h3>" + "".join(
            _required_input(f"address_{key}", label)
            for key, label in (("line1", "Address"), ("country", "Country"))
        )
        out += text_input("address_city", "", "City")
        out += text_input("address_postal_code", "", "Postal code")
    if (cs.get("tax_id_collection") or {}).get("enabled"):
        out += text_input("tax_id", "", "Tax ID")
    if cs["allow_promotion_codes"]:
        out += text_input("promotion_code", "", "Promotion code")
    return out


def _checkout_row(n: int, item: Obj) -> str:
    """``tr#line-item-{n}``: ``3 x Business`` with a times sign (the name alone for 1), the
    quantity (``td#quantity-{n}``), the unit price and the amount (quantity x unit price)."""
    qty = int(item["quantity"])
    name = escape(str(item["description"]))
    price = item["price"]
    every = f" / {price['recurring']['interval']}" if price.get("recurring") else ""
    return (
        f"<tr id='line-item-{n}' data-price='{escape(price['id'])}' data-quantity='{qty}' "
        f"data-amount='{item['amount_total']}'>"
        f"<td>{engine.seats_label(qty, name)}</td>"
        f"<td id='quantity-{n}'>{qty}</td>"
        f"<td>{money(price.get('unit_amount'), item['currency'])}{every}</td>"
        f"<td>{money(item['amount_total'], item['currency'])}{every}</td></tr>"
    )


def _paying_as(cus: Obj) -> str:
    """Who pays: the customer's email, else their name (never the ``cus_`` id)."""
    shown = cus.get("email") or cus.get("name")
    return f"<p id='customer'>Paying as <b>{escape(shown)}</b></p>" if shown else ""


@hosted
async def checkout_pay(request: Request, state: EmulatorState) -> Response:
    """Pay: complete the session and redirect to success_url (declined: a link back)."""
    fields = await _fields(request)
    cs_id = request.path_params["cs"]
    try:
        cs = resources.get(state, "checkout.session", cs_id)
        target = checkout.pay(state, cs, checkout.Submission.of(fields))
    except StripeError as err:
        label = "Try another card" if err.status == 402 else "Back"
        back = link("back", f"/c/pay/{cs_id}", label) if err.status in (400, 402) else ""
        return _error(err, back)
    if not target:
        return HTMLResponse(page("Thanks!", "<p id='success'>Payment complete.</p>"))
    return RedirectResponse(target, status_code=303)


@hosted
async def checkout_cancel(request: Request, state: EmulatorState) -> Response:
    """Cancel: redirect to cancel_url."""
    cs = resources.get(state, "checkout.session", request.path_params["cs"])
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
        if s["customer"] == customer and s["status"] not in resources.ENDED
    ]
    subs.reverse()
    return subs


def _plan(state: EmulatorState, price: Obj) -> str:
    """``Pro — 20.00 USD / month``."""
    prod = state.db.products.get(price["product"]) or {}
    rec = price.get("recurring") or {}
    amount = money(price.get("unit_amount"), price["currency"])
    return f"{prod.get('name', price['product'])} — {amount} / {rec.get('interval', 'once')}"


def _current_plan(state: EmulatorState, item: Obj, suffix: str = "") -> str:
    """``p#current-plan``: the plan of a subscription item."""
    price = item["price"]
    return (
        f"<p id='current-plan{suffix}' data-price='{price['id']}'>{escape(_plan(state, price))}</p>"
    )


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


def _seats_form(base: str, cfg: Obj, sub: Obj, suffix: str) -> str:
    """``div#seats-box`` with ``form#seats`` (hidden ``subscription``, ``item``; number input
    ``input#quantity`` named ``quantity``, bounded by the product's minimum and maximum) posting
    to ``{base}/quantity``, when the portal lets the customer change the current item's
    quantity (``portal.seat_limits``); "" otherwise."""
    item = sub["items"]["data"][0]
    limits = portal.seat_limits(cfg, item)
    if limits is None:
        return ""
    qty = int(item.get("quantity") or 1)
    bounds = f" min='{int(limits.get('minimum') or 1)}'"
    if limits.get("maximum") is not None:
        bounds += f" max='{int(limits['maximum'])}'"
    visible = (
        f"<p><label for='quantity{suffix}'>Seats</label> <input type='number' "
        f"id='quantity{suffix}' name='quantity' value='{qty}' step='1'{bounds}></p>"
    )
    return (
        f"<div class='box' id='seats-box{suffix}'><h3>Seats</h3>"
        f"<p>Current seats: <span id='current-seats{suffix}'>{qty}</span></p>"
        + form(
            f"seats{suffix}",
            f"{base}/quantity",
            "Update seats",
            {"subscription": sub["id"], "item": item["id"]},
            visible,
        )
        + "</div>"
    )


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


def _scheduled_note(state: EmulatorState, sub: Obj, suffix: str) -> str:
    """``p#scheduled-change``: the plan a subscription schedule switches to, and when."""
    pending = schedules.pending_items(state, sub)
    if pending is None:
        return ""
    start, items = pending
    plans = ", ".join(
        _plan(state, state.db.prices[str(i["price"])])
        + (f" {engine.TIMES} {i['quantity']}" if int(i.get("quantity") or 1) != 1 else "")
        for i in items
    )
    return (
        f"<p id='scheduled-change{suffix}' data-date='{start}'>Changes to {escape(plans)} on "
        f"{date(start)}</p>"
    )


def _takes_effect(state: EmulatorState, cfg: Obj, sub: Obj, changes: portal.Switch) -> str:
    """``p#scheduled`` on the confirmation of a switch scheduled at the period end."""
    when = portal.scheduled_at(state, cfg, sub, changes)
    if when is None:
        return ""
    return (
        f"<p id='scheduled' data-date='{when}'>Your new plan takes effect on {date(when)}, "
        "at the end of the current period. Nothing is due today.</p>"
    )


_CUSTOMER_FIELDS = {"email": "Email", "name": "Name", "phone": "Phone"}
_ADDRESS_FIELDS = {
    "line1": "Address",
    "line2": "Address line 2",
    "city": "City",
    "state": "State",
    "postal_code": "Postal code",
    "country": "Country",
}


def _customer_form(state: EmulatorState, base: str, cfg: Obj, sess: Obj) -> str:
    """``div#customer-info`` with ``form#update-customer`` (posting to ``{base}/customer``):
    inputs for the configuration's ``customer_update.allowed_updates`` among email, name,
    phone and address (``address_line1``, ``address_city``...)."""
    cus = state.db.customers.get(sess["customer"]) or {}
    allowed = cfg["features"]["customer_update"]["allowed_updates"]
    inputs = "".join(
        text_input(name, cus.get(name) or "", label, "email" if name == "email" else "text")
        for name, label in _CUSTOMER_FIELDS.items()
        if name in allowed
    )
    if "address" in allowed:
        address = cus.get("address") or {}
        inputs += "".join(
            text_input(f"address_{key}", address.get(key) or "", label)
            for key, label in _ADDRESS_FIELDS.items()
        )
    return (
        "<div class='box' id='customer-info'><h2>Update information</h2>"
        + form("update-customer", f"{base}/customer", "Save", visible=inputs)
        + "</div>"
    )


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
        note += _scheduled_note(state, sub, suffix)
        block = (
            f"<div class='box' id='subscription{suffix}' data-subscription='{sub['id']}'>"
            f"<h2>Current plan</h2>{_current_plan(state, item, suffix)}"
            f"<p>Status: <b>{status}</b></p>{note}"
        )
        if features["subscription_cancel"]["enabled"]:
            if sub["cancel_at_period_end"] or sub["cancel_at"]:
                block += form(
                    f"renew{suffix}", f"{base}/renew", "Renew plan", {"subscription": sub["id"]}
                )
            else:
                block += _cancel_form(base, cfg, sub, f"cancel{suffix}", "Cancel plan")
        block += "</div>"
        parts.append(block + _seats_form(base, cfg, sub, suffix))
        if portal.allowed_prices(cfg):
            parts.append(f"<h3>Switch plan</h3>{_switch_forms(state, base, cfg, sub, suffix)}")
    if features["payment_method_update"]["enabled"]:
        parts.append(f"<div class='box'><h2>Payment method</h2>{_card_form(base)}</div>")
    if features["customer_update"]["enabled"]:
        parts.append(_customer_form(state, base, cfg, sess))
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
        return f"<h2>Update payment method</h2>{_card_form(base)}{back}"
    sub = state.db.subscriptions[flow[kind]["subscription"]]
    head = _current_plan(state, sub["items"]["data"][0])
    if kind == "subscription_cancel":
        if portal.pending_offer(state, sess) is not None:
            return f"<h2>Before you go</h2>{head}" + _offer(state, sess, sub, base) + back
        end = engine.period(sub)[1]
        mode = cfg["features"]["subscription_cancel"]["mode"]
        when = "now" if mode == "immediately" else f"on {date(end)}"
        return (
            f"<h2>Cancel your plan</h2>{head}<p>Your plan will be canceled {when}.</p>"
            + _cancel_form(base, cfg, sub, "confirm", "Cancel plan")
            + back
        )
    if kind == "subscription_update":
        return (
            f"<h2>Update your plan</h2>{head}"
            + _seats_form(base, cfg, sub, "")
            + _switch_forms(state, base, cfg, sub, "")
            + back
        )
    return _confirm_page(state, cfg, sub, flow, base) + back


def _offer(state: EmulatorState, sess: Obj, sub: Obj, base: str) -> str:
    """Step 2 of a cancel flow with a retention offer: ``div#retention-offer`` with the
    coupon's name (``#offer-name``, when it has one) and terms in words (``#offer-terms``),
    ``form#accept-offer`` ("Accept offer") and ``form#decline-offer`` ("No thanks, cancel"),
    both posting the ``subscription``; the reason and comment of step 1 wait in
    ``state.portal_state``. An offer no longer available (the coupon deleted or used up, a
    discount added meanwhile) shows ``p#offer-unavailable`` and only the decline form."""
    hidden = {"subscription": sub["id"]}
    decline = form(
        "decline-offer", f"{base}/decline-offer", "No thanks, cancel", hidden, secondary=True
    )
    coupon = portal.retention_offer(state, sess, sub)
    if coupon is None:
        return (
            "<div class='box' id='retention-offer'><p id='offer-unavailable'>This offer is no "
            f"longer available.</p>{decline}</div>"
        )
    name = f"<p id='offer-name'>{escape(coupon['name'])}</p>" if coupon.get("name") else ""
    return (
        f"<div class='box' id='retention-offer' data-coupon='{escape(coupon['id'])}'>"
        f"<h3>We'd like you to stay</h3>{name}"
        f"<p>Keep your plan and get <b id='offer-terms'>{escape(coupons.terms(coupon))}</b>.</p>"
        + form("accept-offer", f"{base}/accept-offer", "Accept offer", hidden)
        + decline
        + "</div>"
    )


def confirm_changes(flow: Obj) -> portal.Switch:
    """The (item, price, quantity) changes of a ``subscription_update_confirm`` flow."""
    return [
        (i["id"], i.get("price"), i.get("quantity"))
        for i in flow["subscription_update_confirm"]["items"]
    ]


def _plan_rows(state: EmulatorState, items: list[tuple[Obj, int]]) -> str:
    """``<li>`` per (price, quantity): product name and price."""
    return "".join(
        f"<li data-price='{escape(price['id'])}'>{escape(_plan(state, price))}"
        f"{f' {engine.TIMES} {qty}' if qty != 1 else ''}</li>"
        for price, qty in items
    )


def _confirm_page(state: EmulatorState, cfg: Obj, sub: Obj, flow: Obj, base: str) -> str:
    """Current and new plan and seats, the proration preview and the amount due today.

    ``table#proration`` has one ``tr.proration-line`` (``data-amount`` in cents) per line of
    the engine's invoice preview (``portal.preview_switch``, the lines the switch invoices
    with) and ``tr#proration-total``, their sum; ``b#amount-due`` is that total, never below
    0 (a negative total is a credit: ``p#credit``).
    """
    flow_items = confirm_changes(flow)
    changes = {item_id: (price, qty) for item_id, price, qty in flow_items}
    current: list[tuple[Obj, int]] = []
    new: list[tuple[Obj, int]] = []
    for item in sub["items"]["data"]:
        qty = int(item.get("quantity") or 1)
        price_id, new_qty = changes.get(item["id"], (None, None))
        current.append((item["price"], qty))
        new.append((state.db.prices.get(price_id or "", item["price"]), new_qty or qty))
    ids = [i["id"] for i in sub["items"]["data"]]
    changed = next((n for n, item_id in enumerate(ids) if item_id in changes), 0)  # the one item
    preview = portal.preview_switch(state, cfg, sub, flow_items)
    currency = sub["currency"]
    rows = "".join(
        f"<tr class='proration-line' data-amount='{line.amount}' data-price='{line.price}' "
        f"data-quantity='{line.quantity}'><td>{escape(line.description)}</td>"
        f"<td>{money(line.amount, currency)}</td></tr>"
        for line in preview.lines
    )
    total = preview.total
    credit = (
        f"<p id='credit'>Credit to your balance: {money(-total, currency)}</p>" if total < 0 else ""
    )
    return (
        "<h2>Confirm your new plan</h2>"
        f"<div class='box'><h3>Current plan</h3><ul id='current-plan'>{_plan_rows(state, current)}"
        f"</ul><p>Seats: <span id='current-seats'>{current[changed][1]}</span></p></div>"
        f"<div class='box'><h3>New plan</h3><ul id='new-plan'>{_plan_rows(state, new)}</ul>"
        f"<p>Seats: <span id='new-seats'>{new[changed][1]}</span></p></div>"
        "<table id='proration'><tr><th>Description</th><th>Amount</th></tr>"
        f"{rows}<tr id='proration-total' data-amount='{total}'><td>Total</td>"
        f"<td>{money(total, currency)}</td></tr></table>"
        f"<p>Amount due today: <b id='amount-due' data-amount='{preview.amount_due}'>"
        f"{money(preview.amount_due, currency)}</b></p>{credit}"
        f"{_takes_effect(state, cfg, sub, flow_items)}"
        + form("confirm", f"{base}/confirm", "Confirm", {"subscription": sub["id"]})
    )


@hosted
async def portal_page(request: Request, state: EmulatorState) -> Response:
    """The portal home, or the page of the session's flow."""
    sess, cfg = portal.open_session(state, request.path_params["bps"])
    info = state.portal_state[sess["id"]]
    if sess["flow"] and not info["flow_done"]:
        return HTMLResponse(page("Manage your subscription", _flow_page(state, sess, cfg)))
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


@hosted
async def portal_action(request: Request, state: EmulatorState) -> Response:
    """POST actions: cancel (with a pending retention offer: shows the offer instead),
    accept-offer, decline-offer, renew, switch, quantity, confirm, payment-method, customer."""
    action = request.path_params["action"]
    fields = await _fields(request)
    sess, cfg = portal.open_session(state, request.path_params["bps"])
    flow = sess["flow"]
    if action == "payment-method":
        if not cfg["features"]["payment_method_update"]["enabled"]:
            raise StripeError("Payment method updates are not enabled.", status=400)
        portal.do_update_payment_method(state, sess, fields.get("card"))
    elif action == "customer":
        portal.do_update_customer(state, cfg, sess, fields)
    else:
        sub = portal.own_subscription(state, sess, fields.get("subscription", ""))
        if action == "cancel":
            feedback, comment = fields.get("feedback") or None, fields.get("comment") or None
            if not portal.start_cancel(state, cfg, sess, sub, feedback, comment):
                return RedirectResponse(f"/p/session/{sess['id']}", status_code=303)  # the offer
        elif action == "accept-offer":
            portal.accept_offer(state, sess, sub)
        elif action == "decline-offer":
            portal.decline_offer(state, cfg, sess, sub)
        elif action == "renew":
            portal.do_renew(state, sub)
        elif action == "switch":
            item = fields.get("item") or sub["items"]["data"][0]["id"]
            portal.do_switch(state, cfg, sub, [(item, fields.get("price"), None)])
        elif action == "quantity":
            item = fields.get("item") or sub["items"]["data"][0]["id"]
            portal.do_update_quantity(state, cfg, sub, item, fields.get("quantity"))
        elif action == "confirm" and flow and flow["type"] == "subscription_update_confirm":
            portal.do_switch(state, cfg, sub, confirm_changes(flow))
        else:
            raise StripeError("Unknown portal action.", status=404)
    return _see_other(_after(state, sess))


def _see_other(target: str) -> Response:
    """A 303 to ``target``: a printable ASCII URL (a flow's ``return_url``) exactly as given,
    query and fragment included (Starlette's RedirectResponse would percent-encode characters
    such as ``{`` or ``|``); anything else quoted by RedirectResponse."""
    if target.isascii() and target.isprintable() and " " not in target:
        return Response(status_code=303, headers={"location": target})
    return RedirectResponse(target, status_code=303)


# (the hosted invoice page: emulator.invoice_pages)


ROUTES = [
    Route("/c/pay/{cs}", checkout_page, methods=["GET"]),
    Route("/c/pay/{cs}/pay", checkout_pay, methods=["POST"]),
    Route("/c/pay/{cs}/cancel", checkout_cancel, methods=["POST"]),
    Route("/p/session/{bps}", portal_page, methods=["GET"]),
    Route("/p/session/{bps}/{action}", portal_action, methods=["POST"]),
]
