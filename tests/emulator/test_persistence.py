"""The state file: objects, internals, the clock and pending deliveries survive a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import stripe

from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from emulator.state import EmulatorState
from tests.emulator.conftest import WEBHOOK_SECRET, Receiver, make_client
from tests.emulator.helpers import (
    DAY,
    checkout,
    emulator_on_file,
    monthly_product,
    pay,
    seed,
    subscribe,
    wait_until,
)

NEW_SECRET = "whsec_after_the_restart"


def _last_signed_with(receiver: Receiver, secret: str) -> Any:
    """The last webhook received, verified with ``secret`` (raises when signed otherwise)."""
    last = receiver.received[-1]
    return stripe.Webhook.construct_event(
        last.body.decode(), last.headers["stripe-signature"], secret
    )


def _renamed(receiver: Receiver) -> list[dict[str, Any]]:
    """The customer.updated events of a name change received (Checkout's card is one too)."""
    updated = receiver.events("customer.updated")
    return [e for e in updated if "name" in e["data"]["previous_attributes"]]


def _saved(path: Path) -> dict[str, Any]:
    """The state file's contents."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _files(folder: Path) -> list[Path]:
    """The files in a folder."""
    return list(folder.iterdir())


def test_state_survives_a_restart(
    tmp_path: Path, receiver: Receiver, browser: httpx.Client
) -> None:
    state_file = tmp_path / "emulator.json"
    with emulator_on_file(receiver, state_file) as (control, client):
        catalog = seed(client, control)  # the default portal configuration, as the Dashboard's
        sub = subscribe(client, browser, catalog)
        replayed = client.v1.customers.create(
            params={"email": "idem@example.com"}, options={"idempotency_key": "restart-1"}
        )
        gone = client.v1.customers.create(params={"email": "gone@example.com"})
        client.v1.customers.delete(gone.id)
        advanced = control.advance(3 * DAY)
        trial = checkout(client, sub.customer, catalog["year"].id, trial_days=7)  # paid later
        control.wait_idle()
        control.configure(retry_base_seconds=60)  # the failed delivery's retry waits...
        receiver.statuses.put(500)
        client.v1.customers.update(sub.customer, params={"name": "Ada"})
        wait_until(lambda: _renamed(receiver))
        assert control.pending_deliveries() == 1  # ...and is pending when the emulator stops
    with emulator_on_file(receiver, state_file, NEW_SECRET) as (control, client):
        assert 0 <= control.now() - advanced < 60  # the clock stays advanced
        resumed = wait_until(lambda: len(_renamed(receiver)) == 2)
        assert resumed and _last_signed_with(receiver, NEW_SECRET).type == "customer.updated"
        endpoints = client.v1.webhook_endpoints.list().data
        assert [e.url for e in endpoints] == [receiver.url]  # not registered twice
        again = client.v1.subscriptions.retrieve(sub.id)
        assert again.status == "active"
        assert again["items"].data[0].current_period_end == sub["items"].data[0].current_period_end
        assert client.v1.customers.retrieve(sub.customer).name == "Ada"
        portal = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
        home = browser.get(portal.url)
        assert home.status_code == 200 and sub.id in home.text
        same = client.v1.customers.create(
            params={"email": "idem@example.com"}, options={"idempotency_key": "restart-1"}
        )
        assert same.id == replayed.id
        assert client.v1.customers.retrieve(gone.id).deleted is True
        with pytest.raises(stripe.InvalidRequestError, match="already uses that lookup key"):
            client.v1.prices.create(
                params={
                    "product": catalog["pro"].id,
                    "currency": "usd",
                    "unit_amount": 1,
                    "lookup_key": "pro_month",
                }
            )
        trial.url = control.base_url + urlsplit(trial.url).path  # the page moved with the server
        pay(browser, trial)
        paid = client.v1.checkout.sessions.retrieve(trial.id, params={"expand": ["subscription"]})
        assert paid.subscription.status == "trialing"
        assert paid.subscription.trial_end - paid.subscription.trial_start == 7 * DAY


def test_reset_clears_the_state_file(tmp_path: Path, receiver: Receiver) -> None:
    state_file = tmp_path / "emulator.json"
    with (
        EmulatorServer(webhooks=[(receiver.url, WEBHOOK_SECRET)], state_file=state_file) as srv,
        EmulatorControl(srv.url) as control,
    ):
        customer = make_client(srv.url).v1.customers.create(params={"email": "r@example.com"})
        wait_until(lambda: state_file.exists() and customer.id in state_file.read_text())
        control.reset()
        wait_until(lambda: not _saved(state_file)["db"]["customers"])  # before the final save
        assert len(_saved(state_file)["db"]["webhook_endpoints"]) == 1


def test_final_save_on_stop(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    with EmulatorServer(state_file=state_file) as srv:
        srv.state.clock_offset = 12345.0  # a change no request announced
    assert _saved(state_file)["clock_offset"] == 12345.0


@pytest.mark.parametrize("content", ["{not json", '{"version": 1}', "[]", '{"version": 99}'])
def test_unreadable_state_file(tmp_path: Path, content: str) -> None:
    state_file = tmp_path / "emulator.json"
    state_file.write_text(content)
    with pytest.raises(ValueError, match="make reset") as info:
        EmulatorServer(state_file=state_file)
    message = str(info.value)
    assert str(state_file) in message and "delete it" in message and "\n" not in message
    assert state_file.read_text() == content  # left alone for the user to look at


async def test_saves_coalesce_and_need_a_file(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    state = EmulatorState(state_file=state_file)
    for _ in range(100):
        state.changed()
    assert state.saves == 0 and not state_file.exists()
    await asyncio.sleep(0)  # the next event-loop turn
    assert state.saves == 1 and _saved(state_file)["version"] == 1
    assert _files(tmp_path) == [state_file]  # the temp file was renamed into place
    bare = EmulatorState()
    bare.changed()
    await asyncio.sleep(0)
    assert bare.saves == 0


def test_entitlements_survive_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    summary = "entitlements.active_entitlement_summary.updated"
    with EmulatorServer(state_file=state_file) as first:
        client = make_client(first.url)
        prod, price = monthly_product(client, "Pro")
        feat = client.v1.entitlements.features.create(params={"name": "SSO", "lookup_key": "sso"})
        attached = client.v1.products.features.create(
            prod.id, params={"entitlement_feature": feat.id}
        )
        cus = client.v1.customers.create(params={"email": "e@example.com"})
        sub = client.v1.subscriptions.create(
            params={"customer": cus.id, "items": [{"price": price.id}]}
        )
        (ent,) = client.v1.entitlements.active_entitlements.list(params={"customer": cus.id}).data
    with (
        EmulatorServer(state_file=state_file) as second,
        EmulatorControl(second.url) as control,
    ):
        client = make_client(second.url)
        listed = client.v1.entitlements.features.list(params={"lookup_key": "sso"}).data
        assert [f.id for f in listed] == [feat.id]
        assert [pf.id for pf in client.v1.products.features.list(prod.id).data] == [attached.id]
        assert client.v1.entitlements.active_entitlements.retrieve(ent.id).feature == feat.id
        client.v1.subscriptions.update(sub.id, params={"metadata": {"a": "b"}})
        assert len(control.events(type=summary)) == 1  # the remembered set is unchanged
        client.v1.products.features.delete(prod.id, attached.id)
        last = control.events(type=summary)[-1]["data"]
        assert last["object"]["entitlements"]["data"] == []
        assert last["previous_attributes"]["entitlements"]["data"][0]["id"] == ent.id
        control.reset()
        assert client.v1.entitlements.features.list().data == []
        wait_until(lambda: not _saved(state_file)["db"]["features"])
        saved = _saved(state_file)
        assert saved["product_features"] == {} and saved["entitlements"] == {}


def test_a_state_file_from_before_entitlements_loads(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    old = EmulatorState().dump()
    del old["db"]["features"], old["product_features"], old["entitlements"]
    state_file.write_text(json.dumps(old))
    state = EmulatorState(state_file=state_file)
    assert state.db.features == {} and state.product_features == {} and state.entitlements == {}
