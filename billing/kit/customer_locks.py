"""Exclusive locks on one Stripe customer, across every process: one applier at a time.

A customer's entitlement is projected from a re-read of Stripe. Two processes re-reading and
writing the same customer at once would spend Stripe calls twice, and the older read could be
written last. A lock makes each re-read and its write one exclusive step, and a crashed
holder never keeps it: on PostgreSQL it is a session advisory lock on the connection that
then writes (the server drops it with the connection); on SQLite a byte-range lock on a file
beside the database (the kernel drops it with the process)."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Session

T = TypeVar("T")


class Writer(Protocol):
    """What runs a write transaction (the database), on a connection the caller holds if any."""

    async def write(self, work: Callable[[Session], T], on: AsyncConnection | None = None) -> T:
        """Run `work` in one write transaction."""
        ...


log = logging.getLogger(__name__)

RETRY_SECONDS = 0.05
"""How often a waiting holder tries again."""
LOCK_SPACE = 1 << 20
"""SQLite: customers map onto this many bytes of the lock file (a collision only serializes)."""


def _key(customer_id: str) -> int:
    """A stable signed 64-bit key for a customer."""
    digest = hashlib.blake2b(f"billing-customer:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class CustomerLock:
    """The exclusive right to apply one customer, until the lock's block ends."""

    def __init__(self, writer: Writer, connection: AsyncConnection | None = None) -> None:
        self._writer = writer
        self._connection = connection

    async def write(self, work: Callable[[Session], T]) -> T:
        """The write transaction of the locked work (on the lock's connection, if any)."""
        return await self._writer.write(work, on=self._connection)


class CustomerLocks:
    """Locks on customers; `hold` yields None when another holder keeps it past `wait`."""

    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer

    def hold(
        self, customer_id: str, *, wait: float = 0.0
    ) -> AbstractAsyncContextManager[CustomerLock | None]:
        """Lock a customer, trying for up to `wait` seconds."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the locks keep open."""


class PostgresLocks(CustomerLocks):
    """Session advisory locks, held on the connection that writes the locked work."""

    @asynccontextmanager
    async def hold(
        self, customer_id: str, *, wait: float = 0.0
    ) -> AsyncIterator[CustomerLock | None]:
        """Lock a customer, trying for up to `wait` seconds."""
        key = _key(customer_id)
        until = time.monotonic() + wait
        async with self._engine.connect() as conn:
            while True:
                held = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
                await conn.commit()
                if held or time.monotonic() >= until:
                    break
                await asyncio.sleep(RETRY_SECONDS)
            if not held:
                yield None
                return
            try:
                yield CustomerLock(self._writer, conn)
            finally:
                await self._release(conn, key)

    @staticmethod
    async def _release(conn: AsyncConnection, key: int) -> None:
        """Unlock; a connection that cannot is discarded, which unlocks it too."""
        try:
            await conn.rollback()
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await conn.commit()
        except BaseException:
            await asyncio.shield(conn.invalidate())
            raise


class SQLiteLocks(CustomerLocks):
    """Byte-range locks on `<database>-locks` (per process), and a set within the process."""

    def __init__(self, engine: AsyncEngine, writer: Writer, lock_file: Path | None) -> None:
        super().__init__(engine, writer)
        self._lock_file = lock_file
        self._fd: int | None = None
        self._held: set[int] = set()

    @asynccontextmanager
    async def hold(
        self, customer_id: str, *, wait: float = 0.0
    ) -> AsyncIterator[CustomerLock | None]:
        """Lock a customer, trying for up to `wait` seconds."""
        offset = _key(customer_id) % LOCK_SPACE
        until = time.monotonic() + wait
        while not self._try(offset):
            if time.monotonic() >= until:
                yield None
                return
            await asyncio.sleep(RETRY_SECONDS)
        try:
            yield CustomerLock(self._writer)
        finally:
            self._release(offset)

    def _try(self, offset: int) -> bool:
        """Take the byte at `offset` for this process and this holder, without waiting."""
        if offset in self._held:
            return False
        fd = self._open()
        if fd is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError:
                return False
        self._held.add(offset)
        return True

    def _release(self, offset: int) -> None:
        """Give the byte back."""
        self._held.discard(offset)
        if self._fd is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)

    def _open(self) -> int | None:
        """The lock file, opened once: closing any descriptor of it drops all our locks."""
        if self._fd is None and self._lock_file is not None:
            self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def close(self) -> None:
        """Close the lock file (every lock of this process goes with it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._held.clear()


def lock_file_for(url: str) -> Path | None:
    """`<database>-locks` beside a SQLite file; None for in-memory and `file:` URIs."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}-locks")


def locks_for(url: str, engine: AsyncEngine, writer: Writer) -> CustomerLocks:
    """The locks of a database's backend."""
    if url.startswith("sqlite"):
        return SQLiteLocks(engine, writer, lock_file_for(url))
    return PostgresLocks(engine, writer)
