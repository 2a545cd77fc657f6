"""List pagination, ``created`` filters and ``expand[]``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from emulator.errors import invalid, missing
from emulator.params import expand_list, get_dict, get_int, get_str
from emulator.spec import EXPANDABLE, copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Obj = dict[str, Any]
Params = dict[str, Any]

# id prefix -> (store attribute, kind name for errors)
PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("cus_", "customers", "customer"),
    ("prod_", "products", "product"),
    ("price_", "prices", "price"),
    ("sub_", "subscriptions", "subscription"),
    ("in_", "invoices", "invoice"),
    ("cs_", "checkout_sessions", "checkout.session"),
    ("bpc_", "portal_configurations", "billing_portal.configuration"),
)


def lookup(state: EmulatorState, ident: str) -> Obj | None:
    """Find any stored object by id."""
    for prefix, store, _ in PREFIXES:
        if ident.startswith(prefix):
            found: Obj | None = getattr(state.db, store).get(ident)
            return found
    return None


def created_filter(params: Params, name: str = "created") -> Callable[[Obj], bool] | None:
    """A predicate for ``created`` / ``created[gte]`` style filters."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        exact = int(value)
        return lambda o: bool(o.get(name) == exact)
    bounds = {k: int(v) for k, v in get_dict(params, name).items()}

    def pred(o: Obj) -> bool:
        ts = int(o.get(name) or 0)
        return (
            ts > bounds.get("gt", ts - 1)
            and ts >= bounds.get("gte", ts)
            and ts < bounds.get("lt", ts + 1)
            and ts <= bounds.get("lte", ts)
        )

    return pred


def paginate(
    state: EmulatorState,
    items: Iterable[Obj],
    params: Params,
    url: str,
    kind: str,
) -> Obj:
    """Stripe's list envelope over items, newest first, with cursors and expansion."""
    ordered = list(items)
    ordered.reverse()
    limit = get_int(params, "limit", 10) or 10
    if limit < 1 or limit > 100:
        raise invalid("Invalid limit: must be between 1 and 100", param="limit")
    after = get_str(params, "starting_after")
    before = get_str(params, "ending_before")
    ids = [o["id"] for o in ordered]
    if after:
        if after not in ids:
            raise missing(kind, after, param="starting_after", status=400)
        ordered = ordered[ids.index(after) + 1 :]
        page = ordered[:limit]
        has_more = len(ordered) > limit
    elif before:
        if before not in ids:
            raise missing(kind, before, param="ending_before", status=400)
        ordered = ordered[: ids.index(before)]
        page = ordered[-limit:]
        has_more = len(ordered) > limit
    else:
        page = ordered[:limit]
        has_more = len(ordered) > limit
    body: Obj = {"object": "list", "data": page, "has_more": has_more, "url": url}
    paths = expand_list(params)
    if paths:
        body = expand(state, body, paths)
    return body


def expand(state: EmulatorState, obj: Obj, paths: list[str]) -> Obj:
    """A copy of obj with the given dotted paths expanded into objects."""
    out: Obj = copy_json(obj)
    for path in paths:
        _expand_path(state, out, path.split("."), path)
    return out


def _expand_path(state: EmulatorState, node: Any, parts: list[str], full: str) -> None:
    """Expand one dotted path in place."""
    if not parts or not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if node.get("object") == "list" and head == "data":
        for item in node.get("data", []):
            _expand_path(state, item, rest, full)
        return
    kind = str(node.get("object", ""))
    includable = _includable(state, node, head)
    if includable is not None:
        node[head] = includable
    elif head not in node or (kind in EXPANDABLE and head not in EXPANDABLE[kind]):
        raise invalid(f"This property cannot be expanded ({head}).", param="expand")
    value = node.get(head)
    if isinstance(value, str):
        value = _expanded(state, head, value)
        node[head] = value
    if isinstance(value, list):
        for item in value:
            _expand_path(state, item, rest, full)
    elif rest:
        _expand_path(state, value, rest, full)


def deleted_stub(state: EmulatorState, ident: str) -> Obj | None:
    """Stripe's ``{"id", "object", "deleted": true}`` for a deleted customer or product."""
    for prefix, kind, gone in (
        ("cus_", "customer", state.deleted_customers),
        ("prod_", "product", state.deleted_products),
    ):
        if ident.startswith(prefix) and ident in gone:
            stub: Obj = template(f"deleted_{kind}")
            stub.update(id=ident, deleted=True)
            return stub
    return None


def _expanded(state: EmulatorState, head: str, ident: str) -> Obj:
    """The object an id expands to: the deleted stub, or a copy of the stored object."""
    stub = deleted_stub(state, ident)
    if stub is not None:
        return stub
    target = lookup(state, ident)
    if target is not None:
        found: Obj = copy_json(target)
        return found
    if head in ("customer", "product") and ident:  # gone, and not in the deleted ids either
        return {"id": ident, "object": head, "deleted": True}
    raise invalid(f"This property cannot be expanded ({head}).", param="expand")


def _includable(state: EmulatorState, node: Obj, head: str) -> Obj | None:
    """Fields Stripe only includes when expanded (line_items, subscriptions)."""
    kind = node.get("object")
    if kind == "checkout.session" and head == "line_items":
        data = copy_json(state.line_items.get(node["id"], []))
        url = f"/v1/checkout/sessions/{node['id']}/line_items"
        return {"object": "list", "data": data, "has_more": False, "url": url}
    if kind == "customer" and head == "subscriptions":
        subs = [
            s
            for s in state.db.subscriptions.values()
            if s["customer"] == node["id"] and s["status"] != "canceled"
        ]
        subs.reverse()
        url = f"/v1/customers/{node['id']}/subscriptions"
        return {"object": "list", "data": copy_json(subs), "has_more": False, "url": url}
    return None
