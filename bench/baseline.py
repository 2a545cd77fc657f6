"""The baseline of bench/entitlement.py: hand-written routes with no GraphQL, no ORM and no
authentication, answering the same JSON as the service. Not part of the product.

`POST /graphql` reads the bench org's entitlement row with the raw driver (aiosqlite, or
asyncpg on PostgreSQL) and returns what `{ entitlement { orgId plan status cancelAtPeriodEnd
currentPeriodEnd } }` returns; `POST /plans` returns the catalog JSON from memory.

Configured by the environment: BENCH_DATABASE_URL (the service's SQLAlchemy URL),
BENCH_ORG, BENCH_PLANS_JSON (a file holding the `plans` answer's `data`).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse

URL = os.environ["BENCH_DATABASE_URL"]
ORG = os.environ["BENCH_ORG"]
PLANS = json.loads(Path(os.environ["BENCH_PLANS_JSON"]).read_text())
SQL = "SELECT org_id, plan, status, cancel_at_period_end, current_period_end FROM entitlements"


class Rows:
    """One connection pool of the raw driver."""

    sqlite: aiosqlite.Connection | None = None
    postgres: asyncpg.Pool | None = None


rows = Rows()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Open the connection(s) once."""
    if URL.startswith("sqlite"):
        rows.sqlite = await aiosqlite.connect(URL.split(":///", 1)[1])
    else:
        dsn = URL.replace("postgresql+asyncpg://", "postgresql://")
        rows.postgres = await asyncpg.create_pool(dsn, min_size=4, max_size=10)
    yield
    if rows.sqlite is not None:
        await rows.sqlite.close()
    if rows.postgres is not None:
        await rows.postgres.close()


app = FastAPI(lifespan=lifespan)


def _iso(value: Any) -> str | None:
    """The timestamp as the service's DateTime scalar writes it."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.isoformat())


@app.post("/graphql")
async def entitlement() -> JSONResponse:
    """The bench org's entitlement row, as the GraphQL answer's JSON."""
    if rows.sqlite is not None:
        async with rows.sqlite.execute(f"{SQL} WHERE org_id = ?", (ORG,)) as cursor:
            row = await cursor.fetchone()
    else:
        assert rows.postgres is not None
        row = await rows.postgres.fetchrow(f"{SQL} WHERE org_id = $1", ORG)
    assert row is not None
    org_id, plan, status, cancel, period_end = tuple(row)
    return JSONResponse(
        {
            "data": {
                "entitlement": {
                    "orgId": org_id,
                    "plan": plan,
                    "status": status.upper(),
                    "cancelAtPeriodEnd": bool(cancel),
                    "currentPeriodEnd": _iso(period_end),
                }
            }
        }
    )


@app.post("/plans")
async def plans() -> JSONResponse:
    """The catalog, from memory."""
    return JSONResponse({"data": PLANS})
