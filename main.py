"""Entry point: `uvicorn main:app` serves the API; `python main.py COMMAND` runs the CLI."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _app() -> Any:
    """The ASGI app, built from the environment on first use."""
    from server.app import create_app

    return create_app()


def __getattr__(name: str) -> Any:
    """Build `app` lazily so CLI commands do not need a complete configuration."""
    if name == "app":
        return _app()
    raise AttributeError(name)


if __name__ == "__main__":
    from cli import cli

    cli()
