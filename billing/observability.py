"""Request ids: generated per request, carried in a context variable into every log line."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="-")
_INCOMING = re.compile(r"^[A-Za-z0-9_.-]{8,64}$")


def new_request_id(incoming: str | None = None) -> str:
    """Reuse a well-formed incoming X-Request-ID, else make one."""
    if incoming and _INCOMING.fullmatch(incoming):
        return incoming
    return f"req_{uuid.uuid4().hex}"


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the current request id."""
        record.request_id = request_id.get()
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr with the request id on every line (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_billing", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._billing = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("stripe", "httpx", "httpcore", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
