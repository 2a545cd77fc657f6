"""Coupons, promotion codes and the discounts they give subscriptions' invoices."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from emulator import coupons
from emulator.client import EmulatorControl
from emulator.state import EmulatorState
from tests.emulator.conftest import spec_errors
from tests.emulator.helpers import DAY, invalid_request, seed, subscribe


def _coupon(client: Any, **params: Any) -> Any:
    """A coupon."""
    return client.v1.coupons.create(params=params)


def test_coupon_crud_and_errors(client: Any, control: EmulatorControl) -> None:
    made = _coupon(client, id="SAVE20", name="20% off", percent_off=20, duration="forever")
    assert (made.id, made.percent_off, made.amount_off, made.duration) == (
        "SAVE20",
        20,
        None,
        "forever",
    )
    assert made.valid and made.times_redeemed == 0 and made.duration_in_months is None
    assert not spec_errors("coupon", made)
    generated = _coupon(
        client, amount_off=500, currency="USD", duration="repeating", duration_in_months=3
    )
    assert len(generated.id) == 8 and generated.currency == "usd" and generated.percent_off is None
    assert _coupon(client, percent_off=5).duration == "once"  # Stripe's default duration
    assert client.v1.coupons.retrieve("SAVE20").name == "20% off"
    listed = client.v1.coupons.list(params={"limit": 2})
    assert len(listed.data) == 2 and listed.has_more
    updated = client.v1.coupons.update("SAVE20", params={"name": "Twenty", "metadata": {"a": "b"}})
    assert updated.name == "Twenty" and updated.metadata["a"] == "b"
    err = invalid_request(lambda: _coupon(client, id="SAVE20", percent_off=10))
    assert (err.http_status, err.code, err.param) == (400, "resource_already_exists", "id")
    assert invalid_request(lambda: _coupon(client, amount_off=100)).param == "currency"
    both = invalid_request(lambda: _coupon(client, amount_off=1, currency="usd", percent_off=5))
    assert "only specify one of" in str(both.user_message)
    err = invalid_request(lambda: _coupon(client, percent_off=5, duration="repeating"))
    assert err.param == "duration_in_months" and err.code == "parameter_missing"
    assert invalid_request(lambda: _coupon(client, percent_off=101)).param == "percent_off"
    err = invalid_request(lambda: _coupon(client, percent_off=5, applies_to={"products": ["x"]}))
    assert err.code == "parameter_unknown" and err.param == "applies_to"
    deleted = client.v1.coupons.delete("SAVE20")
    assert deleted.deleted is True and deleted.id == "SAVE20"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.coupons.retrieve("SAVE20")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    types = [e["type"] for e in control.events() if e["type"].startswith("coupon.")]
    assert types == ["coupon.created"] * 3 + ["coupon.updated", "coupon.deleted"]


def test_promotion_codes(client: Any) -> None:
    coupon = _coupon(client, id="FALL", percent_off=20, duration="once")
    promo = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": "FALL"}, "code": "FALL20"}
    )
    assert promo.promotion.type == "coupon" and promo.promotion.coupon == coupon.id
    assert promo.active and promo.code == "FALL20" and promo.times_redeemed == 0
    assert promo.id.startswith("promo_") and not spec_errors("promotion_code", promo)
    other = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": "FALL"}}
    )
    assert other.code and other.code != "FALL20"
    found = client.v1.promotion_codes.list(params={"code": "fall20"})  # any case
    assert [p.id for p in found.data] == [promo.id]
    err = invalid_request(
        lambda: client.v1.promotion_codes.create(
            params={"promotion": {"type": "coupon", "coupon": "FALL"}, "code": "Fall20"}
        )
    )
    assert err.param == "code" and "already exists" in str(err.user_message)
    err = invalid_request(
        lambda: client.v1.promotion_codes.create(
            params={"promotion": {"type": "coupon", "coupon": "NOPE"}}
        )
    )
    assert (err.code, err.param) == ("resource_missing", "promotion[coupon]")
    err = invalid_request(lambda: client.v1.promotion_codes.create(params={"code": "X"}))
    assert (err.code, err.param) == ("parameter_missing", "promotion")
    client.v1.promotion_codes.update(promo.id, params={"active": False})
    inactive = client.v1.promotion_codes.list(params={"active": False})
    assert [p.id for p in inactive.data] == [promo.id]
    by_coupon = client.v1.promotion_codes.list(params={"coupon": "FALL", "active": True})
    assert [p.id for p in by_coupon.data] == [other.id]
    expanded = client.v1.promotion_codes.retrieve(promo.id, params={"expand": ["promotion.coupon"]})
    assert expanded.promotion.coupon.percent_off == 20


def test_public_helpers() -> None:
    state = EmulatorState()
    state.db.coupons["HALF"] = {"id": "HALF", "times_redeemed": 0, "max_redemptions": None}
    state.db.coupons["HALF"].update(redeem_by=None, percent_off=50, amount_off=None)
    promo = {"id": "promo_1", "code": "Spring-50", "active": True, "expires_at": None}
    promo.update(max_redemptions=None, times_redeemed=0, promotion={"coupon": "HALF"})
    state.db.promotion_codes["promo_1"] = promo
    assert coupons.find_promotion_code(state, "spring-50") is promo
    assert coupons.find_promotion_code(state, "SPRING") is None
    promo["active"] = False
    assert coupons.find_promotion_code(state, "SPRING-50") is None
    assert coupons.discount_amount({"percent_off": 12.5, "amount_off": None}, 999) == 125
    assert coupons.discount_amount({"percent_off": None, "amount_off": 700}, 500) == 500


def _invoice(client: Any, sub_id: str) -> Any:
    """The subscription's latest invoice."""
    sub = client.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    return sub.latest_invoice


def test_discounts_reduce_invoices_for_their_duration(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    sub = subscribe(client, browser, catalog)  # 20.00 USD a month
    _coupon(client, id="QUARTER", percent_off=25, duration="repeating", duration_in_months=2)
    control.advance(10 * DAY)  # two months from now: the next two renewals, not the third
    with_coupon = client.v1.subscriptions.update(
        sub.id, params={"discounts": [{"coupon": "QUARTER"}], "expand": ["discounts"]}
    )
    (discount,) = with_coupon.discounts
    assert discount.source.coupon == "QUARTER" and discount.subscription == sub.id
    assert discount.end is not None and discount.promotion_code is None
    assert not spec_errors("discount", discount)
    totals = []
    for _ in range(3):
        control.advance(32 * DAY)
        invoice = _invoice(client, sub.id)
        assert not spec_errors("invoice", invoice)
        totals.append((invoice.subtotal, invoice.total, invoice.amount_paid))
    assert totals == [(2000, 1500, 1500), (2000, 1500, 1500), (2000, 2000, 2000)]
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []  # ended with its months
    _coupon(client, id="FIVE", amount_off=500, currency="usd", duration="once")
    client.v1.subscriptions.update(sub.id, params={"discounts": [{"coupon": "FIVE"}]})
    control.advance(32 * DAY)
    once = _invoice(client, sub.id)
    assert (once.total, once.total_discount_amounts[0].amount) == (1500, 500)
    assert once.discounts == [once.total_discount_amounts[0].discount]
    assert once.lines.data[0].discount_amounts[0].amount == 500
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []  # used up
    control.advance(32 * DAY)
    assert _invoice(client, sub.id).total == 2000
    events = [e["type"] for e in control.events() if e["type"].startswith("customer.discount")]
    assert events == ["customer.discount.created", "customer.discount.deleted"] * 2


def test_forever_discount_from_a_promotion_code_and_clearing_it(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    sub = subscribe(client, browser, catalog)
    _coupon(client, id="TEN", percent_off=10, duration="forever")
    promo = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": "TEN"}, "code": "TENOFF"}
    )
    updated = client.v1.subscriptions.update(
        sub.id, params={"discounts": [{"promotion_code": promo.id}]}
    )
    assert len(updated.discounts) == 1
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1
    assert client.v1.coupons.retrieve("TEN").times_redeemed == 1
    for _ in range(2):
        control.advance(32 * DAY)
        assert _invoice(client, sub.id).total == 1800
    changes = control.events("customer.subscription.updated")
    change = next(e for e in changes if "discounts" in e["data"]["previous_attributes"])
    assert change["data"]["previous_attributes"]["discounts"] == []
    client.v1.coupons.delete("TEN")  # the discount already given keeps working
    control.advance(32 * DAY)
    assert _invoice(client, sub.id).total == 1800
    cleared = client.v1.subscriptions.update(sub.id, params={"discounts": ""})
    assert cleared.discounts == []
    control.advance(32 * DAY)
    assert _invoice(client, sub.id).total == 2000
    err = invalid_request(
        lambda: client.v1.subscriptions.update(sub.id, params={"discounts": [{"coupon": "NONE"}]})
    )
    assert (err.code, err.param) == ("resource_missing", "discounts[0][coupon]")
    _coupon(client, id="EURO", amount_off=100, currency="eur", duration="once")
    err = invalid_request(
        lambda: client.v1.subscriptions.update(sub.id, params={"discounts": [{"coupon": "EURO"}]})
    )
    assert err.param == "discounts[0][coupon]"
    client.v1.events.list(params={"limit": 100})  # every payload checked against the spec
