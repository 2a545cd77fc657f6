"""A whole running system (database, Stripe emulator sending its webhooks, API) for one backend."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from harness.db import fresh_database
from harness.servers import ThreadedServer, free_port
from harness.signing import WEBHOOK_PATH, WEBHOOK_SECRET
from harness.stack import Stack, seed, suite_settings
from server.app import create_app


@contextlib.contextmanager
def running_stack(backend: str, folder: Path, **settings: Any) -> Iterator[Stack]:
    """Emulator + API + a fresh database, the catalog seeded, with these settings changed."""
    url, drop = fresh_database(backend, folder)
    api_port = free_port()
    hook = f"http://127.0.0.1:{api_port}{WEBHOOK_PATH}"
    emulator = EmulatorServer(webhooks=[(hook, WEBHOOK_SECRET)])
    emulator.start()
    config = suite_settings(database_url=url, stripe_api_base=emulator.url, **settings)
    seed(config)
    api = ThreadedServer(create_app(config), port=api_port).start()
    try:
        yield Stack(backend, config, emulator, EmulatorControl(emulator.url), api)
    finally:
        api.stop()
        emulator.stop()
        drop()
