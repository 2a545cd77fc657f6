"""Verified events stored with group commit: deliveries that arrive together share a commit.

A delivery is acknowledged only once its event is committed. While a commit runs, the
deliveries arriving meanwhile wait and go into the next one, so a burst costs one statement
per batch instead of a transaction per delivery, and a quiet webhook waits for nobody.

Each batch is one INSERT ... ON CONFLICT DO NOTHING RETURNING id (SQLAlchemy's
"insertmanyvalues"), committed at once. On PostgreSQL it is one round trip in autocommit on
the intake's own few connections, and a few batches may be in flight at once; those
connections skip the pool's ping (a round trip per batch): one found dead is replaced and its
batch sent again, which the ON CONFLICT makes harmless. On SQLite it is one transaction on
the writer thread (`Database.write`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session

from billing.container import Services
from billing.kit.database import is_sqlite
from billing.kit.sql import dialect_insert
from billing.models import EventStatus, WebhookEvent
from webhooks.priority import IntakeFirst
from webhooks.store import forget_target, remember_target, stored_row

log = logging.getLogger(__name__)

MAX_BATCH = 500
"""Events per statement at most."""
IN_FLIGHT = 2
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
        self.priority = IntakeFirst()
        """The deliveries being answered, before which this process's applier steps aside."""
        sqlite = is_sqlite(services.db.url)
        self._most = SQLITE_IN_FLIGHT if sqlite else IN_FLIGHT
        self._engine: AsyncEngine | None = (
            None
            if sqlite
            else create_async_engine(
                services.db.url, pool_size=IN_FLIGHT, max_overflow=0, isolation_level="AUTOCOMMIT"
            )
        )

    async def store(self, event: dict[str, Any], body: bytes) -> Stored:
        """Store one event; returns once it is committed (raises if the commit failed)."""
        row, target = stored_row(event, body)
        if target is not None:  # before the commit: the applier may take it up at once
            remember_target(row["id"], target)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        if self._flushers < self._most:
            self._flushers += 1
            self._tasks.add(task := asyncio.create_task(self._flush()))
            task.add_done_callback(self._tasks.discard)
        try:
            new = await asyncio.shield(done)
        except BaseException:
            forget_target(row["id"])
            raise
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
        # In id order: batches of other processes (or of this one) holding the same ids lock
        # them in the same order, so two of them wait for each other instead of deadlocking.
        rows = sorted({row["id"]: row for row, _ in reversed(batch)}.values(), key=_event_id)
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
        if self._engine is None:
            return await self.services.db.write(partial(_insert_sqlite, rows))
        try:
            return await _insert_postgres(self._engine, rows)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("webhook intake: a database connection was lost; sending the batch again")
            return await _insert_postgres(self._engine, rows)

    async def close(self) -> None:
        """Close the intake's own connections (PostgreSQL)."""
        if self._engine is not None:
            await self._engine.dispose()


def _event_id(row: dict[str, Any]) -> str:
    """A stored row's event id."""
    return str(row["id"])


def _insert_sqlite(rows: list[dict[str, Any]], session: Session) -> set[str]:
    """The SQLite batch's statement, in the writer thread's transaction."""
    return set(session.connection().execute(STATEMENTS["sqlite"], rows).scalars())


async def _insert_postgres(engine: AsyncEngine, rows: list[dict[str, Any]]) -> set[str]:
    """The PostgreSQL batch's statement, in autocommit on one of the intake's connections."""
    async with engine.connect() as conn:
        return set((await conn.execute(STATEMENTS["postgresql"], rows)).scalars())
