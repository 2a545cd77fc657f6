"""The async database engine: SQLite (WAL, busy timeout) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from billing.changes import feed_for
from billing.claims import claims_for

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str) -> bool:
    """True for a SQLite URL."""
    return url.startswith("sqlite")


def make_engine(url: str) -> AsyncEngine:
    """Create the engine for a URL; SQLite gets WAL, a busy timeout and explicit BEGINs."""
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    _configure_sqlite(engine.sync_engine)
    return engine


def make_thread_engine(url: str) -> Engine:
    """A synchronous engine on the same SQLite file, for work done whole on one thread."""
    sync_url = make_url(url).set(drivername="sqlite+pysqlite")
    engine = create_engine(
        sync_url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """WAL, the busy timeout, foreign keys, and BEGINs that SQLAlchemy drives."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        """Turn on WAL and the busy timeout; let SQLAlchemy's BEGIN drive transactions."""
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        """Writers take the write lock up front (BEGIN IMMEDIATE) so they queue, not fail."""
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class WriterQueue:
    """SQLite: one writer at a time in this process, storing webhook deliveries first.

    SQLite has one write lock per database; connections of one process that wait for it sleep
    in SQLite's busy handler (up to 100 ms a turn), so they queue here instead. A delivery
    waits for its commit before it is acknowledged, so it goes ahead of background work, which
    lets at most `PATIENCE` of them pass before it takes its turn. PostgreSQL: no queue."""

    PATIENCE = 3

    def __init__(self, enabled: bool) -> None:
        self._lock = asyncio.Lock() if enabled else None
        self._urgent = 0

    @asynccontextmanager
    async def turn(self, urgent: bool = False) -> AsyncIterator[None]:
        """Hold the process's write turn for the block."""
        if self._lock is None:
            yield
            return
        if urgent:
            self._urgent += 1
            try:
                await self._lock.acquire()
            finally:
                self._urgent -= 1
        else:
            for _ in range(self.PATIENCE):
                await self._lock.acquire()
                if not self._urgent:
                    break
                self._lock.release()
            else:
                await self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()


class Database:
    """The engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.changes = feed_for(url)
        self.claims = claims_for(self)
        self.writers = WriterQueue(enabled=is_sqlite(url))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self, on: AsyncConnection | None = None) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction: committed on success, rolled back on error.

        `on` runs it on a connection the caller holds (a claim's). Once committed, the orgs it
        marked (`billing.changes.mark_changed`) are reported to `changes`, so caches of their
        entitlements go at once."""
        opened = self._sessions() if on is None else AsyncSession(bind=on, expire_on_commit=False)
        async with self.writers.turn(), opened as session:
            await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            for org_id in session.info.pop("changed_orgs", ()):
                self.changes.changed(org_id)

    async def ping(self) -> bool:
        """True when the database answers and has been migrated."""
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT version_num FROM alembic_version"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        """Stop watching changes; close every pooled connection and the claims' lock file."""
        await self.changes.stop()
        self.claims.close()
        await self.engine.dispose()
