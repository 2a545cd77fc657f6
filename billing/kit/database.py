"""The database: SQLite (WAL, busy timeout) or PostgreSQL (asyncpg).

Reads are async sessions. Writes are synchronous functions of a `Session` run whole in one
transaction (`Database.write`): on PostgreSQL through the async driver, on SQLite on the
process's one writer thread. SQLite has one write lock per database; a transaction driven
from a busy event loop would hold it across every hop between the loop and the driver's
thread, and other writers of the process would sleep in SQLite's busy handler. The writer
thread runs each transaction from BEGIN to COMMIT without returning to the loop, and its
queue is the process's queue of writers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from billing.kit.change_feed import feed_for
from billing.kit.customer_locks import locks_for

SQLITE_BUSY_TIMEOUT_MS = 30_000

T = TypeVar("T")
Work = Callable[[Session], T]
"""A write: synchronous ORM code given the transaction's session."""


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
    """A synchronous engine on the same SQLite file, for the writer thread."""
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


class Database:
    """The engine, its session factory, and the way writes run."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.change_feed = feed_for(url)
        self.locks = locks_for(url, self.engine, self)
        sqlite = is_sqlite(url)
        self._writer_engine = make_thread_engine(url) if sqlite else None
        self._writer = ThreadPoolExecutor(1, "sqlite-writer") if sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading."""
        async with self._sessions() as session:
            yield session

    async def write(self, work: Work[T], on: AsyncConnection | None = None) -> T:
        """Run `work` in one write transaction: committed if it returns, rolled back if it raises.

        `on` runs it on a connection the caller holds (a customer lock's, PostgreSQL). Once
        committed, the orgs it marked (`billing.kit.change_feed.mark_changed`) are reported to
        the change feed, so caches of their entitlements go at once."""
        if self._writer is not None and self._writer_engine is not None:
            loop = asyncio.get_running_loop()
            done = loop.run_in_executor(self._writer, _write_whole, self._writer_engine, work)
            try:
                result, changed = await asyncio.shield(done)
            except asyncio.CancelledError:
                await asyncio.wait([done])  # the transaction ends before its caller does
                raise
        else:
            session = self._sessions() if on is None else AsyncSession(on, expire_on_commit=False)
            async with session:
                result, changed = await session.run_sync(_write_whole_in, work)
        for org_id in changed:
            self.change_feed.changed(org_id)
        return result

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
        """Stop watching changes; close every connection, the writer and the locks' file."""
        await self.change_feed.stop()
        self.locks.close()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        if self._writer_engine is not None:
            self._writer_engine.dispose()
        await self.engine.dispose()


def _write_whole(engine: Engine, work: Work[T]) -> tuple[T, set[str]]:
    """SQLite, on the writer thread: BEGIN IMMEDIATE, the work, COMMIT (or ROLLBACK)."""
    with Session(engine, expire_on_commit=False) as session:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        return _write_whole_in(session, work)


def _write_whole_in(session: Session, work: Work[T]) -> tuple[T, set[str]]:
    """The work and its commit; the orgs it marked changed."""
    try:
        result = work(session)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result, session.info.pop("changed_orgs", set())
