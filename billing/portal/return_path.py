"""The returnPath rule: a safe path on APP_URL, or nothing."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

MAX_LENGTH = 2048

MAX_DECODINGS = 4
"""Percent-decodings we try; a path that still changes on the last one is refused."""

UNSAFE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn", "Cs"})
"""Separators, controls, format, private-use, unassigned and surrogates. An encoded plain
space (`%20`) is allowed: `/projects/My%20Project` is an ordinary path."""

_QUERY_OR_FRAGMENT = re.compile(r"[?#]")


def _decodings(text: str) -> list[str] | None:
    """The text and each further percent-decoding of it until nothing changes.

    None when a layer is not UTF-8 or MAX_DECODINGS decodings do not reach a fixed point.
    """
    layers = [text]
    while len(layers) <= MAX_DECODINGS:
        try:
            decoded = unquote(layers[-1], errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded == layers[-1]:
            return layers
        layers.append(decoded)
    return None


def _unsafe(text: str) -> bool:
    """True when a (decoded) path could leave the app or smuggle a control character.

    `//` is refused anywhere, the query and fragment included: a `?next=//host` is a
    redirect waiting for the next hop.
    """
    if not text.startswith("/") or "//" in text or "\\" in text:
        return True
    return any(ch != " " and unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in text)


def _climbs(path: str) -> bool:
    """True when a (decoded) path part has a `.` or `..` segment, which browsers resolve."""
    return any(segment in (".", "..") for segment in path.split("/"))


def safe_return_url(app_url: str, return_path: str) -> str | None:
    """APP_URL joined with a safe path, or None when the path is not safe."""
    if not return_path or len(return_path) > MAX_LENGTH:
        return None
    if any(not ("!" <= ch <= "~") for ch in return_path):
        return None  # raw text must be printable ASCII: no spaces, tabs, newlines, Unicode
    # The path part ends at the first raw `?` or `#`; an encoded one does not end it.
    path = _QUERY_OR_FRAGMENT.split(return_path, maxsplit=1)[0]
    layers, path_layers = _decodings(return_path), _decodings(path)
    if layers is None or path_layers is None:
        return None
    if any(_unsafe(text) for text in layers) or any(_climbs(text) for text in path_layers):
        return None
    url = app_url + return_path
    base, joined = urlsplit(app_url), urlsplit(url)
    if (joined.scheme, joined.netloc) != (base.scheme, base.netloc):
        return None
    return url
