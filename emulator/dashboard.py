"""A page like Stripe's Dashboard for people using ``make run``: products and their features.

``GET /_emulator/dashboard/products`` lists every product with the features attached to it;
its forms create, archive and unarchive features and attach and detach them. Each form runs
the API endpoint of the same change (with its parameter checks), so the entitlement summary
events fire as they would for the API, then goes back to the page (an error: a page with the
error's status and ``a#back``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from emulator.forms import decode_body
from emulator.html import form, link, page, text_input
from emulator.pages import hosted
from emulator.routes import route
from emulator.shapes import Obj, Params
from emulator.state import EmulatorState, of_request

PAGE = "/_emulator/dashboard/products"
Action = Callable[[dict[str, str], dict[str, str]], tuple[str, str, Params]]


# -- the page -------------------------------------------------------------------------


def _feature_row(prod_id: str, prodft_id: str, feat: Obj) -> str:
    """``tr#product-feature-{prodft}``: an attached feature and ``form#detach-{prodft}``."""
    detach = form(
        f"detach-{prodft_id}",
        f"{PAGE}/{prod_id}/features/{prodft_id}/delete",
        "Remove",
        secondary=True,
    )
    archived = "" if feat["active"] else " <span class='muted'>(archived)</span>"
    return (
        f"<tr id='product-feature-{prodft_id}' data-feature='{feat['id']}'>"
        f"<td>{escape(feat['name'])}{archived}</td><td><code>{escape(feat['lookup_key'])}</code>"
        f"</td><td>{detach}</td></tr>"
    )


def _attach_form(prod_id: str, choices: list[Obj]) -> str:
    """``form#attach-{prod}``: a select named ``feature`` of the active features not attached."""
    if not choices:
        return "<p class='muted'>No other active feature to attach.</p>"
    options = "".join(
        f"<option value='{f['id']}'>{escape(f['name'])} ({escape(f['lookup_key'])})</option>"
        for f in choices
    )
    select = f"<p><label>Feature <select name='feature'>{options}</select></label></p>"
    return form(f"attach-{prod_id}", f"{PAGE}/{prod_id}/features", "Attach feature", visible=select)


def _product_box(state: EmulatorState, prod: Obj) -> str:
    """``div#product-{prod}``: the product, ``table#features-{prod}`` and the attach form."""
    prod_id = prod["id"]
    attached = state.product_features.get(prod_id, {})
    rows = "".join(_feature_row(prod_id, pf, state.db.features[f]) for pf, f in attached.items())
    choices = [
        f for f in state.db.features.values() if f["active"] and f["id"] not in attached.values()
    ]
    return (
        f"<div class='box' id='product-{prod_id}' data-product='{prod_id}'>"
        f"<h2>{escape(prod['name'])}</h2><p class='muted'>{prod_id}</p>"
        f"<table id='features-{prod_id}'><tr><th>Feature</th><th>Lookup key</th><th></th></tr>"
        f"{rows}</table>{_attach_form(prod_id, choices)}</div>"
    )


def _features_box(state: EmulatorState) -> str:
    """``table#features``: every feature with ``form#archive-{feat}`` or ``#unarchive-{feat}``."""
    rows = []
    for feat in reversed(state.db.features.values()):
        active = feat["active"]
        verb = "archive" if active else "unarchive"
        toggle = form(
            f"{verb}-{feat['id']}",
            f"/_emulator/dashboard/features/{feat['id']}",
            verb.capitalize(),
            {"active": "false" if active else "true"},
            secondary=True,
        )
        rows.append(
            f"<tr id='feature-{feat['id']}' data-active='{str(active).lower()}'>"
            f"<td>{escape(feat['name'])}</td><td><code>{escape(feat['lookup_key'])}</code></td>"
            f"<td>{'active' if active else 'archived'}</td><td>{toggle}</td></tr>"
        )
    create = form(
        "create-feature",
        "/_emulator/dashboard/features",
        "Create feature",
        visible=text_input("name", "", "Name") + text_input("lookup_key", "", "Lookup key"),
    )
    return (
        "<div class='box'><h2>Features</h2><table id='features'><tr><th>Name</th>"
        f"<th>Lookup key</th><th>Status</th><th></th></tr>{''.join(rows)}</table>{create}</div>"
    )


async def products_page(request: Request) -> Response:
    """GET /_emulator/dashboard/products."""
    state = of_request(request)
    products = [_product_box(state, p) for p in reversed(state.db.products.values())]
    if not products:
        products = ["<p id='no-products'>No products yet.</p>"]
    body = _features_box(state) + "<h2>Products</h2>" + "".join(products)
    return HTMLResponse(page("Products and features", body))


# -- the forms ------------------------------------------------------------------------


def _form(action: Action) -> Callable[[Request], Awaitable[Response]]:
    """A form endpoint: the API call ``action`` builds, run as a request would be (parameter
    checks first), the summary events, back to the page (an error: a page with ``a#back``)."""

    async def run(request: Request, state: EmulatorState) -> Response:
        fields = {k: str(v) for k, v in decode_body(await request.body()).items()}
        method, path, params = action(fields, dict(request.path_params))
        endpoint, args = route(state, method, path, params)
        endpoint(state, params, *args)
        return RedirectResponse(PAGE, status_code=303)

    return hosted(run, link("back", PAGE, "Back"))


def _create(fields: dict[str, str], path: dict[str, str]) -> tuple[str, str, Params]:
    """Create a feature: ``name`` and ``lookup_key``."""
    params = {k: fields.get(k, "").strip() for k in ("name", "lookup_key")}
    return "POST", "/v1/entitlements/features", params


def _update(fields: dict[str, str], path: dict[str, str]) -> tuple[str, str, Params]:
    """Archive (``active=false``) or unarchive a feature."""
    return "POST", f"/v1/entitlements/features/{path['feat']}", {"active": fields.get("active", "")}


def _attach(fields: dict[str, str], path: dict[str, str]) -> tuple[str, str, Params]:
    """Attach the selected ``feature`` to the product."""
    params = {"entitlement_feature": fields.get("feature", "")}
    return "POST", f"/v1/products/{path['prod']}/features", params


def _detach(fields: dict[str, str], path: dict[str, str]) -> tuple[str, str, Params]:
    """Detach a feature from the product."""
    return "DELETE", f"/v1/products/{path['prod']}/features/{path['prodft']}", {}


ROUTES = [
    Route("/products", products_page, methods=["GET"]),
    Route("/products/{prod}/features", _form(_attach), methods=["POST"]),
    Route("/products/{prod}/features/{prodft}/delete", _form(_detach), methods=["POST"]),
    Route("/features", _form(_create), methods=["POST"]),
    Route("/features/{feat}", _form(_update), methods=["POST"]),
]
