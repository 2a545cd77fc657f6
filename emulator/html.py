"""Tiny HTML building helpers for the hosted pages."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;"
    "color:#1a1f36}h1{font-size:1.4rem}.box{border:1px solid #e3e8ee;border-radius:8px;"
    "padding:1rem;margin:1rem 0}button{background:#635bff;color:#fff;border:0;border-radius:6px;"
    "padding:.5rem 1rem;cursor:pointer}button.secondary{background:#e3e8ee;color:#1a1f36}"
    "table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:.3rem;"
    "border-bottom:1px solid #e3e8ee}.muted{color:#697386}.error{color:#df1b41}"
    ".banner{background:#d7f7c2;padding:.7rem;border-radius:6px}"
)


def page(title: str, body: str) -> str:
    """A complete HTML document."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><p class='muted'>Stripe emulator · test mode</p><h1>{escape(title)}</h1>"
        f"{body}</body></html>"
    )


def form(
    form_id: str,
    action: str,
    label: str,
    fields: dict[str, str] | None = None,
    visible: str = "",
    secondary: bool = False,
) -> str:
    """A POST form with hidden fields and a submit button."""
    hidden = "".join(
        f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>"
        for k, v in (fields or {}).items()
    )
    cls = " class='secondary'" if secondary else ""
    return (
        f"<form id='{escape(form_id)}' method='post' action='{escape(action)}'>{hidden}"
        f"{visible}<button type='submit'{cls}>{escape(label)}</button></form>"
    )


def text_input(name: str, value: str = "", label: str = "", kind: str = "text") -> str:
    """A labelled input."""
    return (
        f"<p><label>{escape(label or name)} <input type='{kind}' name='{escape(name)}' "
        f"value='{escape(value)}'></label></p>"
    )


def money(amount: int | None, currency: str | None) -> str:
    """``$20.00 USD``."""
    return f"{(amount or 0) / 100:,.2f} {(currency or 'usd').upper()}"


def date(ts: int | None) -> str:
    """A UTC date."""
    if not ts:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def link(link_id: str, href: str, label: str) -> str:
    """An anchor with an id."""
    return f"<p><a id='{escape(link_id)}' href='{escape(href)}'>{escape(label)}</a></p>"
