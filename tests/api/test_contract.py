"""The schema clients see over HTTP is `schema.graphql`, to the letter (codegen reads the file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from graphql import (
    GraphQLSchema,
    build_client_schema,
    build_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    print_schema,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schema.graphql"


def sdl(schema: GraphQLSchema) -> str:
    """A schema as sorted SDL, so that only content counts, not declaration order."""
    return print_schema(lexicographic_sort_schema(schema))


async def test_served_schema_is_the_file(client: httpx.AsyncClient) -> None:
    query = get_introspection_query(descriptions=True, specified_by_url=True)
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    served = build_client_schema(response.json()["data"])
    assert sdl(served) == sdl(build_schema(SCHEMA_FILE.read_text()))


def test_schema_command_prints_the_file() -> None:
    printed = subprocess.run(
        [sys.executable, "main.py", "schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "not-a-url-the-command-needs-no-database"},
    )
    assert printed.stdout == SCHEMA_FILE.read_text(), (
        "schema.graphql is stale: run `python main.py schema > schema.graphql`"
    )
