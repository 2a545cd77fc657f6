"""The returnPath rule: a safe path on APP_URL, or nothing."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

MAX_LENGTH = 2048


def _unsafe(text: str) -> bool:
    """True when a (decoded) path could leave the app or smuggle a control character."""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return True
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") for ch in text)


def safe_return_url(app_url: str, return_path: str) -> str | None:
    """APP_URL joined with a safe path, or None when the path is not safe."""
    if not return_path or len(return_path) > MAX_LENGTH:
        return None
    if any(not ("!" <= ch <= "~") for ch in return_path):
        return None  # raw text must be printable ASCII: no spaces, tabs, newlines, Unicode
    text = return_path
    for _ in range(4):  # check every layer of percent-encoding, not just the first
        if _unsafe(text):
            return None
        try:
            decoded = unquote(text, errors="strict")
        except UnicodeDecodeError:
            return None
        if decoded == text:
            break
        text = decoded
    else:
        return None
    url = app_url + return_path
    base, joined = urlsplit(app_url), urlsplit(url)
    if (joined.scheme, joined.netloc) != (base.scheme, base.netloc):
        return None
    return url
