"""Webhook endpoints: create, update, delete (events and the rest: the resource table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator import resources
from emulator.errors import invalid, required
from emulator.ids import new_secret
from emulator.params import apply_metadata, as_strings, as_text, assign, get_bool, get_str, need_str
from emulator.resources import respond
from emulator.shapes import Obj, Params
from emulator.spec import API_VERSION

if TYPE_CHECKING:
    from emulator.state import EmulatorState


def _events(params: Params, name: str = "enabled_events") -> list[str]:
    """Validated ``enabled_events``."""
    events = as_strings(params, name)
    if not events:
        raise required(name)
    return events


def endpoint_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/webhook_endpoints: the response carries the secret, once."""
    url = need_str(params, "url")
    if not url.startswith(("http://", "https://")):
        raise invalid("Invalid URL: must be an http(s) URL.", param="url")
    secret = new_secret()
    ep = state.add_endpoint(
        url, secret, _events(params), get_str(params, "api_version") or API_VERSION
    )
    ep["description"] = get_str(params, "description") or None
    apply_metadata(ep, params)
    out = dict(ep)
    out["secret"] = secret
    return respond(state, out, params)


def endpoint_update(state: EmulatorState, params: Params, we_id: str) -> Obj:
    """POST /v1/webhook_endpoints/{id}: url, enabled_events, disabled, description, metadata."""
    ep = resources.get(state, "webhook_endpoint", we_id)
    assign(ep, params, url=need_str, enabled_events=_events, description=as_text)
    if "disabled" in params:
        ep["status"] = "disabled" if get_bool(params, "disabled") else "enabled"
    apply_metadata(ep, params)
    return ep


def endpoint_delete(state: EmulatorState, params: Params, we_id: str) -> Obj:
    """DELETE /v1/webhook_endpoints/{id} (its secret goes too)."""
    return resources.delete(
        state, "webhook_endpoint", we_id, lambda ep: state.secrets.pop(we_id, None)
    )
