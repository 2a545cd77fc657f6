"""Log lines: request ids generated per request, the org and the webhook event being worked on
where known, on every line; human-readable text (the default) or one JSON object per line
(`LOG_FORMAT=json`).

The org and event ids are bound to the task that binds them (`bind_org_id`, `bind_event_id`):
a task started meanwhile inherits the context variables (asyncio copies them), but its lines
do not carry them. That keeps a background task started during a request (the live
entitlements refresher the first subscriber starts, the intake's batch writer a delivery
starts) from naming that request's org or event on every line it logs afterwards."""

from __future__ import annotations

import asyncio
import copy
import functools
import itertools
import logging
import os
import re
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, Literal, ParamSpec, TypeVar

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
"""LOG_FORMAT: `text` for people, `json` for log collectors."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

request_id: ContextVar[str] = ContextVar("request_id", default="-")
_INCOMING = re.compile(r"^[A-Za-z0-9_.-]{8,64}$")

_Bound = tuple[str, "weakref.ref[asyncio.Task[Any]] | None"]
"""A value and the task that bound it (None: bound outside any task)."""
_org_id: ContextVar[_Bound | None] = ContextVar("org_id", default=None)
_event_id: ContextVar[_Bound | None] = ContextVar("event_id", default=None)

P = ParamSpec("P")
T = TypeVar("T")


class _RequestIds:
    """`req_` and 32 hex digits: 20 drawn at random per process, then a count, so ids stay
    unique across processes without a system call per request."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        """A new random prefix (a forked child must not repeat its parent's ids)."""
        self.prefix = f"req_{secrets.token_hex(10)}"
        self.count = itertools.count()

    def next(self) -> str:
        """The next id."""
        return f"{self.prefix}{next(self.count):012x}"


_request_ids = _RequestIds()


def new_request_id(incoming: str | None = None) -> str:
    """Reuse a well-formed incoming X-Request-ID, else make one."""
    if incoming and _INCOMING.fullmatch(incoming):
        return incoming
    return _request_ids.next()


def _current_task() -> asyncio.Task[Any] | None:
    """The running task, or None outside one (synchronous code, another thread)."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _bind(var: ContextVar[_Bound | None], value: str | None) -> None:
    """Bind a value (None: unbind) for the lines the current task logs."""
    if value is None:
        var.set(None)
        return
    task = _current_task()
    var.set((value, weakref.ref(task) if task is not None else None))


def _known(var: ContextVar[_Bound | None]) -> str | None:
    """The value bound by the current task, else None (also when a parent task bound it)."""
    bound = var.get()
    if bound is None:
        return None
    value, owner = bound
    task = _current_task()
    if owner is None:
        return value if task is None else None
    return value if task is not None and owner() is task else None


def bind_org_id(value: str | None) -> None:
    """The org the current task works for, on its log lines from now on (None: no org)."""
    _bind(_org_id, value)


def bind_event_id(value: str | None) -> None:
    """The webhook event(s) the current task works on, on its log lines from now on; several
    are comma-joined (None: no event)."""
    _bind(_event_id, value)


def current_org_id() -> str | None:
    """The org id this task's log lines carry, if any."""
    return _known(_org_id)


@contextmanager
def log_scope() -> Iterator[None]:
    """Org and event ids bound inside are unbound on the way out (the previous ones return)."""
    tokens: list[tuple[ContextVar[_Bound | None], Token[_Bound | None]]] = [
        (var, var.set(var.get())) for var in (_org_id, _event_id)
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def in_log_scope(
    func: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run a coroutine function within `log_scope()`: what it binds ends with it."""

    @functools.wraps(func)
    async def scoped(*args: P.args, **kwargs: P.kwargs) -> T:
        with log_scope():
            return await func(*args, **kwargs)

    return scoped


def _attach(record: logging.LogRecord) -> None:
    """Put the request, org and event ids on a record."""
    record.request_id = request_id.get()
    record.org_id = _known(_org_id)
    record.event_id = _known(_event_id)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (`-` outside a request), `org_id` and `event_id` (None when not
    known) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the current ids."""
        _attach(record)
        return True


_HANDLED = frozenset(
    {
        "request_id",
        "org_id",
        "event_id",
        "color_message",  # uvicorn's ANSI-colored copy of the message
        "taskName",  # Python 3.12+
    }
)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: `time` (ISO 8601, UTC, milliseconds), `level`, `logger`,
    `message` (its %-arguments applied), `request_id` (null outside a request), then `org_id`
    and `event_id` only when known (left out otherwise), any `extra=` fields, and `exc_info`
    (the formatted traceback, one string) when there is one."""

    def __init__(self) -> None:
        super().__init__(json_ensure_ascii=False)

    def add_fields(
        self,
        log_data: dict[str, Any],
        record: logging.LogRecord,
        message_dict: dict[str, Any],
    ) -> None:
        """The fields of one line, in a fixed order."""
        if not hasattr(record, "request_id"):  # a handler without the filter
            _attach(record)
        rid = getattr(record, "request_id", "-")
        log_data["time"] = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z"
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data["request_id"] = None if rid in (None, "-") else rid
        for name in ("org_id", "event_id"):
            value = getattr(record, name, None)
            if value is not None:
                log_data[name] = value
        for key, value in record.__dict__.items():
            if key not in self.reserved_attrs and key not in _HANDLED and not key.startswith("_"):
                log_data[key] = value
        for key, value in message_dict.items():  # a dict logged as the message; exc_info
            log_data[key] = value


def _formatter(fmt: LogFormat) -> logging.Formatter:
    """The formatter of a LOG_FORMAT."""
    return JsonLineFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(level: int = logging.INFO, fmt: LogFormat | None = None) -> None:
    """Log to stderr with the request, org and event ids on every line.

    Idempotent: the first call installs one handler on the root logger, with `level`; a later
    call only switches the format, and only when `fmt` is given (`text` on a first call
    without one)."""
    root = logging.getLogger()
    installed = next((h for h in root.handlers if getattr(h, "_billing", False)), None)
    if installed is not None:
        if fmt is not None and getattr(installed, "_billing_format", None) != fmt:
            installed.setFormatter(_formatter(fmt))
            installed._billing_format = fmt  # type: ignore[attr-defined]
        return
    fmt = fmt or "text"
    handler = logging.StreamHandler()
    handler._billing = True  # type: ignore[attr-defined]
    handler._billing_format = fmt  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("stripe", "httpx", "httpcore", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def uvicorn_log_config(fmt: LogFormat) -> dict[str, Any]:
    """The `log_config` for `uvicorn.run` under a LOG_FORMAT.

    `text`: uvicorn's own default, unchanged. `json`: the same loggers (`uvicorn`,
    `uvicorn.error`, `uvicorn.access`) at the same levels, writing to stderr through the
    service's JSON formatter and filter, so the start-up lines and the access log (with the
    request id, and the org or event id where the request bound one) are JSON too. Never
    None: `log_config=None` would leave uvicorn's loggers unconfigured, not at their default."""
    from uvicorn.config import LOGGING_CONFIG

    if fmt != "json":
        return copy.deepcopy(LOGGING_CONFIG)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": RequestIdFilter}},
        "formatters": {"json": {"()": JsonLineFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["json"], "level": "INFO", "propagate": False},
        },
    }
