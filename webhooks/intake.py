"""Verified events stored with group commit: deliveries that arrive together share a commit.

A delivery is acknowledged only once its event is committed. While a commit runs, the
deliveries arriving meanwhile wait and go into the next one, so a burst costs one statement
per batch instead of a transaction per delivery, and a quiet webhook waits for nobody.

Each batch is one INSERT ... ON CONFLICT DO NOTHING RETURNING id (SQLAlchemy's
"insertmanyvalues"), committed at once. On PostgreSQL it is one round trip in autocommit,
and a few batches may be in flight at once. On SQLite it is one transaction on the writer
thread (`Database.write`), one batch at a time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from billing.db import is_sqlite
from billing.models import EventStatus, WebhookEvent
from billing.services import Services
from billing.upsert import dialect_insert
from webhooks.store import row_of

MAX_BATCH = 500
"""Events per statement at most."""
IN_FLIGHT = 4
"""PostgreSQL: batches committing at once per process."""
SQLITE_IN_FLIGHT = 2
"""SQLite: batches handed to the writer thread at once (the next waits in its queue, so the
thread goes on without waiting for the event loop between two)."""

Waiter = tuple[dict[str, Any], asyncio.Future[bool]]


@dataclass(frozen=True)
class Stored:
    """What storing one delivery did."""

    new: bool
    """False for a duplicate: the id was already stored, nothing changed."""
    pending: bool
    """True when the applier has work for it."""


def _statement(dialect: str) -> Any:
    """Insert rows whose id is new, returning the ids inserted (compiled once, then cached;
    SQLAlchemy sends a batch as one multi-row statement)."""
    table = WebhookEvent.__table__  # type: ignore[attr-defined]
    return (
        dialect_insert(dialect, table)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(table.c.id)
    )


STATEMENTS = {dialect: _statement(dialect) for dialect in ("sqlite", "postgresql")}


class Intake:
    """Stores verified events in batches."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._waiting: list[Waiter] = []
        self._flushers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._sqlite = is_sqlite(services.db.url)
        self._most = SQLITE_IN_FLIGHT if self._sqlite else IN_FLIGHT

    async def store(self, event: dict[str, Any], body: bytes) -> Stored:
        """Store one event; returns once it is committed (raises if the commit failed)."""
        row = row_of(event, body)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        if self._flushers < self._most:
            self._flushers += 1
            self._tasks.add(task := asyncio.create_task(self._flush()))
            task.add_done_callback(self._tasks.discard)
        new = await asyncio.shield(done)
        return Stored(new=new, pending=new and row["status"] == EventStatus.RECEIVED.value)

    async def _flush(self) -> None:
        """Commit batches until nobody waits."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._commit(batch)
        finally:
            self._flushers -= 1

    async def _commit(self, batch: list[Waiter]) -> None:
        """One statement for a batch; each waiter learns whether its id was new."""
        rows = list({row["id"]: row for row, _ in reversed(batch)}.values())
        try:
            inserted = await self._insert(rows)
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        answered: set[str] = set()
        for row, done in batch:
            new = row["id"] in inserted and row["id"] not in answered
            answered.add(row["id"])
            if not done.done():
                done.set_result(new)

    async def _insert(self, rows: list[dict[str, Any]]) -> set[str]:
        """Run the batch's statement and commit it."""
        if self._sqlite:
            return await self.services.db.write(partial(_insert_sqlite, rows))
        async with self.services.db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return set((await auto.execute(STATEMENTS["postgresql"], rows)).scalars())


def _insert_sqlite(rows: list[dict[str, Any]], session: Session) -> set[str]:
    """The SQLite batch's statement, in the writer thread's transaction."""
    return set(session.connection().execute(STATEMENTS["sqlite"], rows).scalars())
