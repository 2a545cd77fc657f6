"""The resource table and the one generic path over it: get, list, delete, paginate, expand."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import partial
from typing import TYPE_CHECKING, Any

from emulator import ids
from emulator.errors import invalid, missing
from emulator.params import (
    expand_list,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    need_str,
)
from emulator.shapes import Obj, Params
from emulator.spec import EXPANDABLE, copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Predicate = Callable[[Obj], bool]
Filter = Callable[["EmulatorState", Params], Predicate | None]  # None: the list is not filtered
Endpoint = Callable[..., Obj]
ENDED = ("canceled", "incomplete_expired")


@dataclass(frozen=True)
class Resource:
    """How the generic path stores, finds, lists and deletes one kind of Stripe object."""

    kind: str  # the ``object`` name, in errors and event types
    store: str  # its dict in ``state.db``
    prefix: str  # the prefix of the ids it gets (and is found by when ``linked``)
    url: str  # its list URL
    filters: tuple[Filter, ...] = ()  # list filters, from the request's parameters
    deleted: str | None = None  # the template of its deleted shape
    tombstones: str | None = None  # state set of deleted ids: they fire and expand as deleted
    id_chars: int = 24  # random characters after the prefix
    linked: bool = True  # ids expand into it, update checks see it, retrieve expands
    path_id: str | None = None  # served: ``GET url`` lists, ``GET url/{path_id}`` retrieves
    retrieves_deleted: bool = False  # retrieving a deleted one answers its deleted shape
    noun: str | None = None  # its name in "No such ..." errors when not ``kind``


# -- list filters ---------------------------------------------------------------------


def _created(state: EmulatorState, params: Params) -> Predicate | None:
    """Objects by ``created`` (a timestamp) or ``created[gt|gte|lt|lte]`` bounds."""
    value = params.get("created")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        exact = int(value)
        return lambda o: bool(o.get("created") == exact)
    bounds = {k: int(v) for k, v in get_dict(params, "created").items()}

    def pred(o: Obj) -> bool:
        ts = int(o.get("created") or 0)
        return (
            ts > bounds.get("gt", ts - 1)
            and ts >= bounds.get("gte", ts)
            and ts < bounds.get("lt", ts + 1)
            and ts <= bounds.get("lte", ts)
        )

    return pred


def equal(name: str, *, lower: bool = False) -> Filter:
    """Objects whose field ``name`` is the non-empty string parameter ``name``."""

    def make(state: EmulatorState, params: Params) -> Predicate | None:
        value = get_str(params, name)
        if not value:
            return None
        wanted = value.lower() if lower else value
        return lambda o: bool(o.get(name) == wanted)

    return make


def flag(name: str) -> Filter:
    """Objects whose boolean field ``name`` is the boolean parameter ``name``."""

    def make(state: EmulatorState, params: Params) -> Predicate | None:
        value = get_bool(params, name)
        return None if value is None else lambda o: bool(o[name] == value)

    return make


def _email(state: EmulatorState, params: Params) -> Predicate | None:
    """Customers with exactly this ``email`` ("" too)."""
    email = get_str(params, "email")
    return None if email is None else lambda c: bool(c.get("email") == email)


def _ids(state: EmulatorState, params: Params) -> Predicate | None:
    """Products among ``ids[]``."""
    wanted = get_list(params, "ids")
    return (lambda p: p["id"] in wanted) if wanted else None


def _lookup_keys(state: EmulatorState, params: Params) -> Predicate | None:
    """Prices with one of ``lookup_keys[]``."""
    keys = [str(k) for k in get_list(params, "lookup_keys")]
    return (lambda p: p.get("lookup_key") in keys) if keys else None


def _interval(state: EmulatorState, params: Params) -> Predicate | None:
    """Prices recurring every ``recurring[interval]``."""
    interval = get_dict(params, "recurring").get("interval")
    return (lambda p: (p["recurring"] or {}).get("interval") == interval) if interval else None


def _status(state: EmulatorState, params: Params) -> Predicate | None:
    """Subscriptions by ``status``: live ones by default, ``ended``, ``all`` or one status."""
    status = get_str(params, "status")
    if status is None or status == "":
        return lambda s: s["status"] not in ENDED
    if status == "ended":
        return lambda s: s["status"] in ENDED
    return None if status == "all" else lambda s: bool(s["status"] == status)


def _price(state: EmulatorState, params: Params) -> Predicate | None:
    """Subscriptions with an item on ``price``."""
    price = get_str(params, "price")
    if not price:
        return None
    return lambda s: any(i["price"]["id"] == price for i in s["items"]["data"])


def _subscription(state: EmulatorState, params: Params) -> Predicate | None:
    """Invoices of a ``subscription`` (its ``parent.subscription_details``)."""
    sub = get_str(params, "subscription")
    if not sub:
        return None
    return lambda i: (
        ((i.get("parent") or {}).get("subscription_details") or {}).get("subscription") == sub
    )


def _types(state: EmulatorState, params: Params) -> Predicate | None:
    """Events by ``type`` (wildcards) or ``types[]``, not both."""
    type_ = get_str(params, "type")
    types = [str(t) for t in get_list(params, "types")]
    if type_ and types:
        raise invalid("You may only specify one of these parameters: type, types.", "types")
    if type_:
        return lambda e: fnmatchcase(e["type"], type_)
    return (lambda e: e["type"] in types) if types else None


def _archived(state: EmulatorState, params: Params) -> Predicate | None:
    """Features by ``archived``: active ones unless ``archived=true``."""
    archived = bool(get_bool(params, "archived", False))
    return lambda f: f["active"] != archived


def _delivered(state: EmulatorState, params: Params) -> Predicate | None:
    """Events by ``delivery_success``: whether some delivery of them succeeded."""
    ok = get_bool(params, "delivery_success")
    if ok is None:
        return None
    delivered = {d["event_id"] for d in state.deliveries if d["ok"]}
    return lambda e: (e["id"] in delivered) == ok


def _code(state: EmulatorState, params: Params) -> Predicate | None:
    """Promotion codes by ``code``, whatever the case."""
    code = get_str(params, "code")
    return (lambda p: bool(p["code"].lower() == code.lower())) if code else None


def _coupon(state: EmulatorState, params: Params) -> Predicate | None:
    """Promotion codes of a ``coupon``."""
    coupon = get_str(params, "coupon")
    return (lambda p: bool(p["promotion"]["coupon"] == coupon)) if coupon else None


# -- the table ------------------------------------------------------------------------


RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in (
        Resource(
            "customer",
            "customers",
            "cus_",
            "/v1/customers",
            (_email, _created),
            deleted="deleted_customer",
            tombstones="deleted_customers",
            id_chars=14,
            path_id="customer",
            retrieves_deleted=True,
        ),
        Resource(
            "product",
            "products",
            "prod_",
            "/v1/products",
            (flag("active"), _ids, _created),
            deleted="deleted_product",
            tombstones="deleted_products",
            id_chars=14,
            path_id="id",
        ),
        Resource(
            "price",
            "prices",
            "price_",
            "/v1/prices",
            (
                _lookup_keys,
                flag("active"),
                equal("product"),
                equal("type"),
                equal("currency", lower=True),
                _interval,
                _created,
            ),
            path_id="price",
        ),
        Resource(  # before subscriptions: its ids start with theirs (``sub_``)
            "subscription_schedule",
            "subscription_schedules",
            "sub_sched_",
            "/v1/subscription_schedules",
            (equal("customer"), _created),
            path_id="schedule",
        ),
        Resource(
            "subscription",
            "subscriptions",
            "sub_",
            "/v1/subscriptions",
            (equal("customer"), _status, _price, _created),
            path_id="subscription_exposed_id",
        ),
        Resource(
            "invoice",
            "invoices",
            "in_",
            "/v1/invoices",
            (equal("customer"), _subscription, equal("status"), _created),
            path_id="invoice",
        ),
        Resource(
            "invoice_payment",
            "invoice_payments",
            "inpay_",
            "/v1/invoice_payments",
            (equal("invoice"), equal("status")),
            path_id="invoice_payment",
        ),
        Resource(
            "payment_intent",
            "payment_intents",
            "pi_",
            "/v1/payment_intents",
            (equal("customer"), _created),
            path_id="intent",
        ),
        Resource(
            "payment_method",
            "payment_methods",
            "pm_",
            "/v1/payment_methods",
            (equal("customer"), equal("type")),
            path_id="payment_method",
            noun="PaymentMethod",
        ),
        Resource(
            "checkout.session",
            "checkout_sessions",
            "cs_test_",
            "/v1/checkout/sessions",
            (equal("customer"), equal("status"), equal("subscription"), equal("payment_intent")),
            id_chars=58,
            path_id="session",
        ),
        Resource(
            "billing_portal.configuration",
            "portal_configurations",
            "bpc_",
            "/v1/billing_portal/configurations",
            (flag("active"), flag("is_default")),
            path_id="configuration",
        ),
        Resource(
            "billing_portal.session",
            "portal_sessions",
            "bps_",
            "/v1/billing_portal/sessions",
            linked=False,
        ),
        Resource(
            "event",
            "events",
            "evt_",
            "/v1/events",
            (_types, _created, _delivered),
            linked=False,
            path_id="id",
        ),
        Resource(
            "webhook_endpoint",
            "webhook_endpoints",
            "we_",
            "/v1/webhook_endpoints",
            deleted="deleted_webhook_endpoint",
            linked=False,
            path_id="webhook_endpoint",
        ),
        Resource(
            "entitlements.feature",
            "features",
            "feat_test_",
            "/v1/entitlements/features",
            (equal("lookup_key"), _archived),
            id_chars=32,
            path_id="id",
            noun="feature",
        ),
        Resource(  # ids are any string (no prefix): found by the table, never by ``lookup``
            "coupon",
            "coupons",
            "",
            "/v1/coupons",
            (_created,),
            linked=False,
            path_id="coupon",
        ),
        Resource(
            "promotion_code",
            "promotion_codes",
            "promo_",
            "/v1/promotion_codes",
            (flag("active"), _code, _coupon, equal("customer"), _created),
            path_id="promotion_code",
        ),
        Resource("discount", "discounts", "di_", ""),  # expanded only (``expand[]=discounts``)
    )
}


def objects(state: EmulatorState, kind: str) -> dict[str, Obj]:
    """The store of a kind, by id in creation order."""
    store: dict[str, Obj] = getattr(state.db, RESOURCES[kind].store)
    return store


def noun(kind: str) -> str:
    """A kind's name in "No such ..." errors."""
    res = RESOURCES.get(kind)
    return (res.noun if res is not None else None) or kind


def new_id(kind: str) -> str:
    """A fresh id for an object of a kind, e.g. ``cus_...``."""
    res = RESOURCES[kind]
    return ids.new_id(res.prefix, res.id_chars)


def get(state: EmulatorState, kind: str, ident: str, param: str = "id", status: int = 404) -> Obj:
    """A stored object or Stripe's resource_missing (``status``: 400 for a parameter)."""
    obj = objects(state, kind).get(ident)
    if obj is None:
        raise missing(noun(kind), ident, param=param, status=status)
    return obj


def referenced(
    state: EmulatorState, kind: str, params: Params, name: str, param: str | None = None
) -> Obj:
    """The object a required id parameter names (400s: the parameter missing, no such object)."""
    ident = need_str(params, name, param)
    return get(state, kind, ident, param=param or name, status=400)


def add(state: EmulatorState, kind: str, obj: Obj) -> Obj:
    """Store a new object of a kind and fire ``{kind}.created``."""
    objects(state, kind)[obj["id"]] = obj
    state.emit(f"{kind}.created", obj)
    return obj


def lookup(state: EmulatorState, ident: str) -> Obj | None:
    """Find a linked object by its id prefix."""
    for res in RESOURCES.values():
        if res.linked and ident.startswith(res.prefix):
            return objects(state, res.kind).get(ident)
    return None


def deleted_stub(state: EmulatorState, ident: str) -> Obj | None:
    """Stripe's ``{"id", "object", "deleted": true}`` for a deleted customer or product."""
    for res in RESOURCES.values():
        gone = getattr(state, res.tombstones) if res.tombstones else ()
        if res.deleted and ident.startswith(res.prefix) and ident in gone:
            return template(res.deleted, id=ident, deleted=True)
    return None


# -- the generic endpoints -------------------------------------------------------------


def respond(state: EmulatorState, obj: Obj, params: Params) -> Obj:
    """An object as an answer: expanded when ``expand[]`` asks."""
    return expand(state, obj, expand_list(params)) if "expand" in params else obj


def retrieve(state: EmulatorState, params: Params, ident: str, kind: str) -> Obj:
    """``GET /v1/{kind}s/{id}`` (a deleted customer answers with deleted: true)."""
    stub = deleted_stub(state, ident) if RESOURCES[kind].retrieves_deleted else None
    if stub is not None:
        return stub
    obj = get(state, kind, ident)
    return respond(state, obj, params) if RESOURCES[kind].linked else obj


def list_objects(state: EmulatorState, params: Params, kind: str) -> Obj:
    """``GET /v1/{kind}s``: the table's filters, newest first, paginated."""
    res = RESOURCES[kind]
    preds = [p for f in res.filters if (p := f(state, params)) is not None]
    items = [o for o in objects(state, kind).values() if all(p(o) for p in preds)]
    return paginate(state, items, params, res.url, kind)


def delete(
    state: EmulatorState, kind: str, ident: str, before: Callable[[Obj], object] | None = None
) -> Obj:
    """``DELETE /v1/{kind}s/{id}``: ``before`` runs first; kept tombstones fire ``.deleted``."""
    res = RESOURCES[kind]
    if res.deleted is None:
        raise TypeError(f"{kind} objects cannot be deleted")
    obj = get(state, kind, ident)
    if before is not None:
        before(obj)
    del objects(state, kind)[ident]
    if res.tombstones:
        getattr(state, res.tombstones).add(ident)
        state.emit(f"{kind}.deleted", obj)
    return template(res.deleted, id=ident, deleted=True)


def creator(make: Callable[[EmulatorState, Params], Obj]) -> Endpoint:
    """The route endpoint answering with the object ``make`` creates."""

    def endpoint(state: EmulatorState, params: Params) -> Obj:
        return respond(state, make(state, params), params)

    return endpoint


def served() -> list[tuple[str, str, Endpoint]]:
    """The generic routes: list and retrieve every served kind."""
    routes: list[tuple[str, str, Endpoint]] = []
    for res in RESOURCES.values():
        if res.path_id is not None:
            item = f"{res.url}/{{{res.path_id}}}"
            routes.append(("GET", res.url, partial(list_objects, kind=res.kind)))
            routes.append(("GET", item, partial(retrieve, kind=res.kind)))
    return routes


# -- pagination and expansion ---------------------------------------------------------


def paginate(
    state: EmulatorState, items: Iterable[Obj], params: Params, url: str, kind: str
) -> Obj:
    """Stripe's list envelope over items, newest first, with cursors and expansion."""
    ordered = list(items)
    ordered.reverse()
    limit = get_int(params, "limit", 10) or 10
    if limit < 1 or limit > 100:
        raise invalid("Invalid limit: must be between 1 and 100", param="limit")
    after = get_str(params, "starting_after")
    before = get_str(params, "ending_before")
    ids_ = [o["id"] for o in ordered]
    if after:
        if after not in ids_:
            raise missing(noun(kind), after, param="starting_after", status=400)
        ordered = ordered[ids_.index(after) + 1 :]
        page = ordered[:limit]
    elif before:
        if before not in ids_:
            raise missing(noun(kind), before, param="ending_before", status=400)
        ordered = ordered[: ids_.index(before)]
        page = ordered[-limit:]
    else:
        page = ordered[:limit]
    body: Obj = {"object": "list", "data": page, "has_more": len(ordered) > limit, "url": url}
    paths = expand_list(params)
    return expand(state, body, paths) if paths else body


def expand(state: EmulatorState, obj: Obj, paths: list[str]) -> Obj:
    """A copy of obj with the given dotted paths expanded into objects."""
    out: Obj = copy_json(obj)
    for path in paths:
        _expand_path(state, out, path.split("."))
    return out


def _expand_path(state: EmulatorState, node: Any, parts: list[str]) -> None:
    """Expand one dotted path in place."""
    if not parts or not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if node.get("object") == "list" and head == "data":
        for item in node.get("data", []):
            _expand_path(state, item, rest)
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
    if isinstance(value, list):  # a list of ids (``discounts``) expands each
        value = [_expanded(state, head, v) if isinstance(v, str) else v for v in value]
        node[head] = value
        for item in value:
            _expand_path(state, item, rest)
    elif rest:
        _expand_path(state, value, rest)


def _expanded(state: EmulatorState, head: str, ident: str) -> Obj:
    """The object an id expands to: the deleted stub, or a copy of the stored object."""
    stub = deleted_stub(state, ident)
    if stub is not None:
        return stub
    target = lookup(state, ident)
    if target is None and head == "coupon":  # coupon ids have no prefix
        target = state.db.coupons.get(ident) or state.coupon_archive.get(ident)
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
    if kind == "invoice" and head == "payments":
        pays = [p for p in state.db.invoice_payments.values() if p["invoice"] == node["id"]]
        pays.reverse()
        url = f"/v1/invoice_payments?invoice={node['id']}"
        return {"object": "list", "data": copy_json(pays), "has_more": False, "url": url}
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
