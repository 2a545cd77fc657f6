"""The schema clients see over HTTP (introspection) is the one SPEC.md fixes, name for name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_client_schema,
    build_schema,
    get_introspection_query,
)

SPEC = Path(__file__).resolve().parents[3] / "shared" / "SPEC.md"


def spec_schema() -> GraphQLSchema:
    """The ```graphql block of SPEC.md as a schema."""
    block = re.search(r"```graphql\n(.*?)```", SPEC.read_text(), re.S)
    assert block, "SPEC.md has no graphql block"
    return build_schema(block.group(1))


def shape(schema: GraphQLSchema) -> dict[str, Any]:
    """Every named type reduced to what a client depends on (names, types, defaults)."""
    out: dict[str, Any] = {}
    for name, gtype in schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(gtype, GraphQLObjectType | GraphQLInterfaceType):
            out[name] = {
                field: (
                    str(f.type),
                    {a: (str(arg.type), arg.default_value) for a, arg in f.args.items()},
                )
                for field, f in gtype.fields.items()
            }
        elif isinstance(gtype, GraphQLInputObjectType):
            out[name] = {field: str(f.type) for field, f in gtype.fields.items()}
        elif isinstance(gtype, GraphQLEnumType):
            out[name] = sorted(gtype.values)
        elif isinstance(gtype, GraphQLUnionType):
            out[name] = sorted(t.name for t in gtype.types)
        else:
            out[name] = "scalar"
    return out


async def test_served_schema_is_the_spec(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": get_introspection_query()})
    assert response.status_code == 200, response.text
    served = build_client_schema(response.json()["data"])
    assert shape(served) == shape(spec_schema())
