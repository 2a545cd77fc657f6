"""Events (list, retrieve) and webhook endpoints (create, retrieve, update, list, delete)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from emulator.errors import invalid, missing, required
from emulator.ids import new_secret
from emulator.listing import created_filter, expand, paginate
from emulator.params import apply_metadata, expand_list, get_bool, get_list, get_str, need_str
from emulator.spec import API_VERSION, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Obj = dict[str, Any]
Params = dict[str, Any]


def event_retrieve(state: EmulatorState, params: Params, evt_id: str) -> Obj:
    """GET /v1/events/{id}."""
    event = state.db.events.get(evt_id)
    if event is None:
        raise missing("event", evt_id)
    return event


def event_list(state: EmulatorState, params: Params) -> Obj:
    """GET /v1/events with type (wildcards), types[], created, delivery_success."""
    items = list(state.db.events.values())
    type_ = get_str(params, "type")
    types = [str(t) for t in get_list(params, "types")]
    if type_ and types:
        raise invalid("You may only specify one of these parameters: type, types.", "types")
    if type_:
        items = [e for e in items if fnmatchcase(e["type"], type_)]
    if types:
        items = [e for e in items if e["type"] in types]
    pred = created_filter(params)
    if pred:
        items = [e for e in items if pred(e)]
    ok = get_bool(params, "delivery_success")
    if ok is not None:
        delivered = {d["event_id"] for d in state.deliveries if d["ok"]}
        items = [e for e in items if (e["id"] in delivered) == ok]
    return paginate(state, items, params, "/v1/events", "event")


def get_endpoint(state: EmulatorState, we_id: str) -> Obj:
    """A webhook endpoint or resource_missing."""
    ep = state.db.webhook_endpoints.get(we_id)
    if ep is None:
        raise missing("webhook_endpoint", we_id)
    return ep


def _events_param(params: Params) -> list[str]:
    """Validated ``enabled_events``."""
    events = [str(e) for e in get_list(params, "enabled_events")]
    if not events:
        raise required("enabled_events")
    return events


def endpoint_create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/webhook_endpoints: the response carries the secret, once."""
    url = need_str(params, "url")
    if not url.startswith(("http://", "https://")):
        raise invalid("Invalid URL: must be an http(s) URL.", param="url")
    secret = new_secret()
    ep = state.add_endpoint(
        url, secret, _events_param(params), get_str(params, "api_version") or API_VERSION
    )
    ep["description"] = get_str(params, "description") or None
    apply_metadata(ep, params)
    out = dict(ep)
    out["secret"] = secret
    return expand(state, out, expand_list(params)) if "expand" in params else out


def endpoint_retrieve(state: EmulatorState, params: Params, we_id: str) -> Obj:
    """GET /v1/webhook_endpoints/{id}."""
    return get_endpoint(state, we_id)


def endpoint_update(state: EmulatorState, params: Params, we_id: str) -> Obj:
    """POST /v1/webhook_endpoints/{id}: url, enabled_events, disabled, description, metadata."""
    ep = get_endpoint(state, we_id)
    if "url" in params:
        ep["url"] = need_str(params, "url")
    if "enabled_events" in params:
        ep["enabled_events"] = _events_param(params)
    if "disabled" in params:
        ep["status"] = "disabled" if get_bool(params, "disabled") else "enabled"
    if "description" in params:
        ep["description"] = get_str(params, "description") or None
    apply_metadata(ep, params)
    return ep


def endpoint_delete(state: EmulatorState, params: Params, we_id: str) -> Obj:
    """DELETE /v1/webhook_endpoints/{id}."""
    get_endpoint(state, we_id)
    del state.db.webhook_endpoints[we_id]
    state.secrets.pop(we_id, None)
    out = template("deleted_webhook_endpoint")
    out.update(id=we_id, deleted=True)
    return out


def endpoint_list(state: EmulatorState, params: Params) -> Obj:
    """GET /v1/webhook_endpoints."""
    items = list(state.db.webhook_endpoints.values())
    return paginate(state, items, params, "/v1/webhook_endpoints", "webhook_endpoint")
