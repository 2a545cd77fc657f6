"""Which orgs' entitlements changed, so that caches of them can be dropped at once.

Three sources feed one generation counter:

- in this process, `Database.write` reports the orgs a committed transaction touched
  (`mark_changed`), right after the commit;
- on SQLite, any other process's commit (a `resync`, `events replay`, a worker, a hand-made
  fix) moves `PRAGMA data_version`, which `poll()` reads on every cached read;
- on PostgreSQL, triggers on `entitlements` and `billing_accounts` NOTIFY the channel from the
  writing transaction (delivered only if it commits, whoever wrote), and every process LISTENs.

A reader may keep what it read only while `watching` is true and the generation did not move
between its read and its store (`Snapshot`); a lost LISTEN connection stops all caching
until it is back, and counts as "anything may have changed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "billing_entitlement_changed"
"""The PostgreSQL channel; the payload is the org id, empty for "every org"."""

EVENTS_CHANNEL = "billing_webhook_events"
"""The PostgreSQL channel of webhook events stored with work for the applier (migration 0004),
by any process; no payload. Heard on the same LISTEN connection."""

APPLICATION_NAME = "billing-change-feed"
"""How the LISTEN connection names itself in `pg_stat_activity`."""

RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Seconds between attempts to re-establish LISTEN (the last one repeats)."""

Listener = Callable[[str | None], None]
"""Called with the org whose entitlement changed, or None when any may have."""


def mark_changed(session: Session, org_id: str) -> None:
    """Note that this transaction writes the org's entitlement or billing account."""
    session.info.setdefault("changed_orgs", set()).add(org_id)


@dataclass(frozen=True)
class Snapshot:
    """The feed's state when a read began."""

    generation: int
    watching: bool


class ChangeFeed:
    """The generation counter and its listeners; in-process changes only."""

    def __init__(self, watching: bool = True) -> None:
        self.generation = 0
        self.watching = watching
        self._listeners: list[Listener] = []
        self._event_listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` on every change."""
        self._listeners.append(listener)

    def on_events_stored(self, listener: Callable[[], None]) -> None:
        """Call `listener` when any process stores webhook events to apply (PostgreSQL)."""
        self._event_listeners.append(listener)

    def events_stored(self) -> None:
        """Webhook events to apply were stored (or may have been, while nobody listened)."""
        for listener in self._event_listeners:
            listener()

    def changed(self, org_id: str | None) -> None:
        """Record a change of one org's entitlement (None: of any)."""
        self.generation += 1
        for listener in self._listeners:
            listener(org_id)

    def poll(self) -> None:
        """Notice changes made by other processes (cheap, synchronous)."""

    def snapshot(self) -> Snapshot:
        """The state to compare with before keeping what is read now."""
        self.poll()
        return Snapshot(self.generation, self.watching)

    def still(self, snapshot: Snapshot) -> bool:
        """True when nothing changed since `snapshot` and changes were watched throughout."""
        return snapshot.watching and self.watching and snapshot.generation == self.generation

    async def start(self) -> None:
        """Begin watching other processes' changes."""

    async def stop(self) -> None:
        """Stop watching."""


POLL_INTERVAL = 0.001
"""Least seconds between two reads of SQLite's data version: under load a poll per request
would cost more than a memory answer's lookups; a commit by another process shows at most
this much later."""


class SQLiteChangeFeed(ChangeFeed):
    """Other processes' commits seen through `PRAGMA data_version` on a connection of our own."""

    def __init__(self, path: str) -> None:
        super().__init__(watching=False)
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._version: int | None = None
        self._polled_at = -math.inf

    async def start(self) -> None:
        """Open the watching connection (a shared in-memory database needs none)."""
        self._connection = sqlite3.connect(self._path, timeout=0.05, isolation_level=None)
        self._version = self._read()
        self.watching = self._version is not None

    def _read(self) -> int | None:
        """The database's data version, None when it cannot be read now."""
        assert self._connection is not None
        try:
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None
        return int(row[0])

    def poll(self) -> None:
        """Any commit by another connection since the last poll counts as a change of all
        (at most one read per POLL_INTERVAL)."""
        if self._connection is None:
            return
        now = time.monotonic()
        if now - self._polled_at < POLL_INTERVAL:
            return
        self._polled_at = now
        version = self._read()
        if version is None or version != self._version:
            self._version = version
            self.changed(None)
        self.watching = version is not None

    async def stop(self) -> None:
        """Close the watching connection."""
        self.watching = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresChangeFeed(ChangeFeed):
    """LISTEN on CHANNEL over a connection of its own, re-established when it drops."""

    def __init__(self, dsn: str) -> None:
        super().__init__(watching=False)
        self._dsn = dsn
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start listening in the background; `watching` turns true once LISTEN is in place."""
        self._task = asyncio.create_task(self._listen_forever(), name="entitlement-changes")

    async def _listen_forever(self) -> None:
        """Listen, and after any loss of the connection listen again."""
        attempt = 0
        while True:
            try:
                await self._listen_once()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: caches stay paused (see _listen_once), retry
                log.warning("LISTEN %s failed (%s); caches paused", CHANNEL, type(exc).__name__)
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1

    async def _listen_once(self) -> None:
        """One LISTEN connection, until it terminates."""
        import asyncpg

        connection = await asyncpg.connect(
            self._dsn, server_settings={"application_name": APPLICATION_NAME}
        )
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _conn: lost.set())
            await connection.add_listener(CHANNEL, self._notified)
            await connection.add_listener(EVENTS_CHANNEL, self._events_notified)
            self.changed(None)  # whatever happened while nobody listened
            self.events_stored()
            self.watching = True
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), timeout=10)
                except TimeoutError:
                    await connection.execute("SELECT 1")  # notice a dead peer
        finally:
            self._lost()
            if not connection.is_closed():
                await connection.close(timeout=2)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        """A committed write of the payload's org (all orgs when empty)."""
        self.changed(payload or None)

    def _events_notified(self, _conn: object, _pid: int, _channel: str, _payload: str) -> None:
        """Some process committed webhook events to apply."""
        self.events_stored()

    def _lost(self) -> None:
        """Stop trusting caches until LISTEN is back."""
        self.watching = False
        self.changed(None)

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.watching = False


def feed_for(url: str) -> ChangeFeed:
    """The change feed for a database URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            return ChangeFeed()  # one connection's private database: only our own writes
        if database.startswith("file:"):
            return ChangeFeed(watching=False)  # a URI we do not open ourselves: keep nothing
        return SQLiteChangeFeed(database)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresChangeFeed(dsn)
