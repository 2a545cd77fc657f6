"""Live entitlements: each watched org's entitlement, re-read when the change feed reports a
change, and handed to its watchers only when what `entitlement` returns has changed.

One refresher task reads for every watcher of the process. The change feed
(billing/kit/change_feed.py) tells it which orgs changed: in this process after each commit, on
PostgreSQL from every process through LISTEN/NOTIFY, on SQLite from other processes through
`PRAGMA data_version` (polled here every POLL_EVERY seconds while anyone watches). Changes
that arrive while a read is running are gathered into the next one, so a burst costs one
read per org, and "any org may have changed" two queries per 500 watched orgs
(`billing.entitlements.read.BATCH`).

Reads run one at a time, so an older read is never published after a newer one; a watcher
is sent the latest view only, and only when it differs from what it was last sent, so a
client that reads slowly gets fewer messages, never a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from billing.catalog.plans import Catalog
from billing.entitlements.read import EntitlementView, read_entitlements
from billing.kit.database import Database

log = logging.getLogger(__name__)

POLL_EVERY = 0.5
"""Seconds between looks at other processes' commits that no notification reports (SQLite)."""

RETRY_AFTER = (0.1, 0.5, 1.0, 2.0)
"""Seconds before a failed read is tried again (the last one repeats)."""


class _Org:
    """One watched org: how many watch it, its latest view, and a signal for the next one."""

    __slots__ = ("published", "view", "watchers")

    def __init__(self) -> None:
        self.watchers = 0
        self.view: EntitlementView | None = None
        self.published = asyncio.Event()

    def publish(self, view: EntitlementView) -> None:
        """Keep a view that differs from the last one and wake everyone waiting for it."""
        if view == self.view:
            return
        self.view = view
        published, self.published = self.published, asyncio.Event()
        published.set()


class LiveEntitlements:
    """The entitlements of the orgs someone watches, as they change."""

    def __init__(self, db: Database, catalog: Catalog) -> None:
        self._db = db
        self._catalog = catalog
        self._orgs: dict[str, _Org] = {}
        self._dirty: set[str] = set()
        self._everything = False
        self._wake = asyncio.Event()
        self._started = 0  # reads begun
        self._read = 0  # the last read that succeeded
        self._read_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        db.change_feed.subscribe(self._changed)

    async def watch(self, org_id: str) -> AsyncGenerator[EntitlementView, None]:
        """The org's entitlement now (read after this call began), then each change of it."""
        org = self._orgs.get(org_id)
        if org is None:
            org = self._orgs[org_id] = _Org()
        org.watchers += 1
        try:
            self._start()
            await self._fresh(org_id)
            sent: EntitlementView | None = None
            while True:
                published = org.published
                if org.view is not None and org.view != sent:
                    sent = org.view
                    yield sent
                    continue
                await published.wait()
        finally:
            org.watchers -= 1
            if org.watchers == 0 and self._orgs.get(org_id) is org:
                del self._orgs[org_id]

    async def _fresh(self, org_id: str) -> None:
        """Wait for a read of the org that began after now."""
        self._dirty.add(org_id)
        self._wake.set()
        wanted = self._started + 1
        while self._read < wanted:
            await self._read_done.wait()

    def _changed(self, org_id: str | None) -> None:
        """The change feed's report: one org changed (None: any may have)."""
        if org_id is None:
            if self._orgs:
                self._everything = True
                self._wake.set()
        elif org_id in self._orgs:
            self._dirty.add(org_id)
            self._wake.set()

    def _start(self) -> None:
        """Start the refresher on first use (it needs the running loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._refresh_forever(), name="live-entitlements")

    async def _refresh_forever(self) -> None:
        """Read what changed, one read at a time; look at the database now and then."""
        failures = 0
        while True:
            try:
                async with asyncio.timeout(POLL_EVERY):
                    await self._wake.wait()
            except TimeoutError:
                if self._orgs:
                    self._db.change_feed.poll()
                continue
            self._wake.clear()
            if await self._refresh():
                failures = 0
            else:
                await asyncio.sleep(RETRY_AFTER[min(failures, len(RETRY_AFTER) - 1)])
                failures += 1

    async def _refresh(self) -> bool:
        """One read of the orgs marked since the last; False (and marked again) if it failed."""
        orgs = list(self._orgs) if self._everything else [o for o in self._dirty if o in self._orgs]
        self._everything, self._dirty = False, set()
        self._started += 1
        number = self._started
        try:
            views = await read_entitlements(self._db, self._catalog, orgs) if orgs else {}
        except Exception as exc:  # the database is away: keep what we have, try again
            log.warning("live entitlements: read failed (%s); retrying", type(exc).__name__)
            self._dirty.update(orgs)
            self._wake.set()
            return False
        for org_id, view in views.items():
            org = self._orgs.get(org_id)
            if org is not None:
                org.publish(view)
        self._read = number
        done, self._read_done = self._read_done, asyncio.Event()
        done.set()
        return True

    async def stop(self) -> None:
        """Stop the refresher (at shutdown, after the last watcher)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
