"""Entitlement features and the features attached to products (product features).

Features are retrieved and listed through the resource table; ``state.product_features``
links each product to its attachments (``prodft_...`` -> ``feat_...``), rendered as
``product_feature`` objects carrying the whole feature. Changes that may grant or take away
entitlements note the subscribers concerned (``emulator.entitlements``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator import entitlements, ids, resources
from emulator.errors import invalid, missing
from emulator.params import apply_metadata, as_flag, assign, need_str
from emulator.resources import paginate, respond
from emulator.shapes import Obj, Params
from emulator.spec import copy_json, template

if TYPE_CHECKING:
    from emulator.state import EmulatorState

FEATURE = "entitlements.feature"


# -- features ---------------------------------------------------------------------------


def create(state: EmulatorState, params: Params) -> Obj:
    """POST /v1/entitlements/features (a lookup key already used: 400, nothing created)."""
    name = need_str(params, "name")
    key = need_str(params, "lookup_key")
    if any(f["lookup_key"] == key for f in state.db.features.values()):
        raise invalid(f"A feature with lookup_key '{key}' already exists.", param="lookup_key")
    feat = template(FEATURE, id=resources.new_id(FEATURE), name=name, lookup_key=key, metadata={})
    apply_metadata(feat, params)
    state.db.features[feat["id"]] = feat
    return respond(state, feat, params)


def update(state: EmulatorState, params: Params, feat_id: str) -> Obj:
    """POST /v1/entitlements/features/{id}: name, metadata, active (archived: entitles no one)."""
    feat = resources.get(state, FEATURE, feat_id)
    was_active = feat["active"]
    assign(feat, params, name=need_str, active=as_flag)
    apply_metadata(feat, params)
    if feat["active"] != was_active:
        entitlements.touch_feature(state, feat_id)
    return respond(state, feat, params)


# -- product features -------------------------------------------------------------------


def _product(state: EmulatorState, prod_id: str) -> dict[str, str]:
    """The attachments of an existing product (404 for an unknown one)."""
    resources.get(state, "product", prod_id)
    return state.product_features.get(prod_id, {})


def product_feature(state: EmulatorState, prodft_id: str, feat_id: str) -> Obj:
    """The ``product_feature`` object of an attachment, with the current feature inline."""
    feat = copy_json(state.db.features[feat_id])
    return template("product_feature", id=prodft_id, entitlement_feature=feat)


def attach(state: EmulatorState, params: Params, prod_id: str) -> Obj:
    """POST /v1/products/{product}/features {entitlement_feature}."""
    attached = _product(state, prod_id)
    feat_id = need_str(params, "entitlement_feature")
    feat = resources.get(state, FEATURE, feat_id, param="entitlement_feature", status=400)
    if not feat["active"]:
        raise invalid(
            f"The feature '{feat_id}' is archived and cannot be attached to a product.",
            param="entitlement_feature",
        )
    if feat_id in attached.values():
        raise invalid(
            f"The feature '{feat_id}' is already attached to the product '{prod_id}'.",
            param="entitlement_feature",
        )
    prodft_id = ids.new_id("prodft_", 14)
    state.product_features.setdefault(prod_id, {})[prodft_id] = feat_id
    entitlements.touch_products(state, [prod_id])
    return respond(state, product_feature(state, prodft_id, feat_id), params)


def list_product_features(state: EmulatorState, params: Params, prod_id: str) -> Obj:
    """GET /v1/products/{product}/features: newest first, paginated."""
    items = [product_feature(state, pf, f) for pf, f in _product(state, prod_id).items()]
    return paginate(state, items, params, f"/v1/products/{prod_id}/features", "product_feature")


def _attached(state: EmulatorState, prod_id: str, prodft_id: str) -> str:
    """The feature of one of the product's attachments (404 for an unknown one)."""
    feat_id = _product(state, prod_id).get(prodft_id)
    if feat_id is None:
        raise missing("product_feature", prodft_id)
    return feat_id


def retrieve_product_feature(
    state: EmulatorState, params: Params, prod_id: str, prodft_id: str
) -> Obj:
    """GET /v1/products/{product}/features/{id}."""
    feat_id = _attached(state, prod_id, prodft_id)
    return respond(state, product_feature(state, prodft_id, feat_id), params)


def detach(state: EmulatorState, params: Params, prod_id: str, prodft_id: str) -> Obj:
    """DELETE /v1/products/{product}/features/{id}: Stripe's deleted ``product_feature``."""
    _attached(state, prod_id, prodft_id)
    attached = state.product_features[prod_id]
    del attached[prodft_id]
    if not attached:
        del state.product_features[prod_id]
    entitlements.touch_products(state, [prod_id])
    return template("deleted_product_feature", id=prodft_id, deleted=True)
