"""The schema clients see over HTTP (introspection) is the one SPEC.md fixes, name for name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from graphql import GraphQLSchema, build_schema, get_introspection_query, graphql_sync

SPEC = Path(__file__).resolve().parents[3] / "shared" / "SPEC.md"


def spec_schema() -> GraphQLSchema:
    """The ```graphql block of SPEC.md as a schema."""
    block = re.search(r"```graphql\n(.*?)```", SPEC.read_text(), re.S)
    assert block, "SPEC.md has no graphql block"
    return build_schema(block.group(1))


def _type(ref: dict[str, Any]) -> str:
    """An introspected type reference as SDL text."""
    if ref["kind"] == "NON_NULL":
        return f"{_type(ref['ofType'])}!"
    if ref["kind"] == "LIST":
        return f"[{_type(ref['ofType'])}]"
    return str(ref["name"])


def shape(introspection: dict[str, Any]) -> dict[str, Any]:
    """Every named type reduced to what a client depends on (names, types, defaults)."""
    out: dict[str, Any] = {}
    for t in introspection["__schema"]["types"]:
        if t["name"].startswith("__"):
            continue
        fields = t["fields"] or t["inputFields"] or []
        out[t["name"]] = {
            "kind": t["kind"],
            "fields": {
                f["name"]: (
                    _type(f["type"]),
                    f.get("defaultValue"),
                    {a["name"]: (_type(a["type"]), a["defaultValue"]) for a in f.get("args", [])},
                )
                for f in fields
            },
            "enum": sorted(v["name"] for v in t["enumValues"] or []),
            "union": sorted(p["name"] for p in t["possibleTypes"] or []),
        }
    return out


async def test_served_schema_is_the_spec(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": get_introspection_query()})
    assert response.status_code == 200, response.text
    spec = graphql_sync(spec_schema(), get_introspection_query())
    assert spec.data is not None
    assert shape(response.json()["data"]) == shape(spec.data)
