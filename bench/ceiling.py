"""The ceiling of bench/entitlement.py: a bare ASGI app that does no work at all, answering
every request with the bytes and headers the service answers `entitlement` with. Not part of
the product: what the server (uvicorn, uvloop, httptools, its access log) costs on its own.

Configured by the environment: BENCH_ANSWER_JSON (a file holding `{"headers": [[name,
value]...], "body": "..."}`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.types import Receive, Scope, Send

_ANSWER = json.loads(Path(os.environ["BENCH_ANSWER_JSON"]).read_text())
HEADERS = [(name.encode(), value.encode()) for name, value in _ANSWER["headers"]]
BODY = _ANSWER["body"].encode()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the request's body, answer the kept bytes."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
