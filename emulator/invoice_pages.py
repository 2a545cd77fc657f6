"""The hosted invoice page (``hosted_invoice_url``, ``/i/{invoice}``): what is due, and paying it.

An open invoice whose payment requires action (3-D Secure) shows ``form#confirm-payment``
("Confirm payment"); another open invoice ``form#pay`` (input ``card``, "Pay"), which saves the
card as the customer's default and pays; a paid invoice says so (``p#paid``).
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from emulator import cards, engine, payments, resources
from emulator.errors import StripeError
from emulator.forms import decode_body
from emulator.html import date, form, money, page, text_input
from emulator.pages import hosted
from emulator.shapes import Obj
from emulator.state import EmulatorState


def _invoice(state: EmulatorState, request: Request) -> Obj:
    """The invoice of the page's URL (404 page when unknown)."""
    return resources.get(state, "invoice", request.path_params["inv"])


def _requires_action(state: EmulatorState, inv: Obj) -> bool:
    """Whether the open invoice's payment awaits the customer's authentication."""
    pi = payments.intent_of(state, inv)
    return inv["status"] == "open" and pi is not None and pi["status"] == "requires_action"


def _payment_part(state: EmulatorState, inv: Obj) -> str:
    """The paid note, the confirmation form or the card form, as the invoice's state asks."""
    base = f"/i/{inv['id']}"
    if inv["status"] == "paid":
        paid_at = date(inv["status_transitions"]["paid_at"])
        return f"<p id='paid'>This invoice has been paid on {paid_at}.</p>"
    if inv["status"] != "open":
        return f"<p id='not-payable'>This invoice is {escape(inv['status'])}.</p>"
    if _requires_action(state, inv):
        return (
            "<p id='action-required'>This payment needs your confirmation "
            "(3-D Secure authentication).</p>"
            + form("confirm-payment", f"{base}/confirm", "Confirm payment")
        )
    pi = payments.intent_of(state, inv)
    error = (pi or {}).get("last_payment_error") or {}
    failed = (
        f"<p class='error' id='payment-error'>{escape(str(error['message']))}</p>"
        if error.get("message")
        else ""
    )
    card = text_input("card", "4242 4242 4242 4242", "Card number")
    return failed + form("pay", f"{base}/pay", "Pay", visible=card)


def _retry_note(inv: Obj) -> str:
    """When Stripe tries the payment again, if it will."""
    when = inv.get("next_payment_attempt")
    if inv["status"] != "open" or not when:
        return ""
    return f"<p id='next-attempt'>Next payment attempt: {date(when)}</p>"


@hosted
async def invoice_page(request: Request, state: EmulatorState) -> Response:
    """The invoice: lines, total, amount due, status and the way to pay it."""
    inv = _invoice(state, request)
    cur = inv["currency"]
    rows = "".join(
        f"<tr><td>{escape(str(line['description']))}</td>"
        f"<td>{money(line['amount'], line['currency'])}</td></tr>"
        for line in inv["lines"]["data"]
    )
    body = (
        f"<p>Invoice <b id='number'>{escape(inv['number'] or inv['id'])}</b> · "
        f"<span id='status'>{inv['status']}</span></p><table id='lines'>{rows}</table>"
        f"<p>Total: <b id='total'>{money(inv['total'], cur)}</b></p>"
        f"<p>Amount due: <b id='amount-due' data-amount='{inv['amount_remaining']}'>"
        f"{money(inv['amount_remaining'], cur)}</b></p>"
        + _retry_note(inv)
        + _payment_part(state, inv)
    )
    return HTMLResponse(page("Invoice", body))


def _back(inv: Obj) -> RedirectResponse:
    """Back to the invoice's page."""
    return RedirectResponse(f"/i/{inv['id']}", status_code=303)


@hosted
async def confirm_payment(request: Request, state: EmulatorState) -> Response:
    """Complete 3-D Secure: the PaymentIntent succeeds and the invoice is paid (invoice.paid,
    invoice.payment_succeeded); a past_due subscription becomes active."""
    inv = _invoice(state, request)
    if not _requires_action(state, inv):
        raise StripeError("This invoice has no payment to confirm.", status=400)
    payments.succeed(state, inv)
    engine.mark_paid(state, inv)
    engine.recovered(state, inv)
    return _back(inv)


@hosted
async def pay_invoice(request: Request, state: EmulatorState) -> Response:
    """Save the card entered as the default payment method (the subscription's too) and pay
    the invoice now; subscriptions paused for want of a card resume."""
    inv = _invoice(state, request)
    if inv["status"] != "open":
        raise StripeError(f"This invoice is {inv['status']}.", status=400)
    fields = {k: str(v) for k, v in decode_body(await request.body()).items()}
    sub = engine.invoice_subscription(state, inv)
    live = sub if sub is not None and sub["status"] not in resources.ENDED else None
    if cards.save_card(state, inv["customer"], fields.get("card"), subscription=live) is None:
        raise cards.incomplete()
    if engine.attempt_payment(state, inv, on_session=True):
        engine.recovered(state, inv)
    engine.resume_paused(state, inv["customer"], on_session=True)
    return _back(inv)


ROUTES = [
    Route("/i/{inv}", invoice_page, methods=["GET"]),
    Route("/i/{inv}/confirm", confirm_payment, methods=["POST"]),
    Route("/i/{inv}/pay", pay_invoice, methods=["POST"]),
]
