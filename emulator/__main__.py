"""``python -m emulator --port P --webhook-url URL --webhook-secret whsec_... --state-file F``."""

from __future__ import annotations

import argparse
from pathlib import Path

from emulator.server import serve


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", action="append", default=[])
    parser.add_argument("--webhook-secret", action="append", default=[])
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--state-file", type=Path, default=None, help="keep the state here")
    args = parser.parse_args(argv)
    if len(args.webhook_secret) < len(args.webhook_url):
        parser.error("every --webhook-url needs a --webhook-secret")
    webhooks = list(zip(args.webhook_url, args.webhook_secret, strict=False))
    try:
        serve(args.host, args.port, webhooks, log_level=args.log_level, state_file=args.state_file)
    except ValueError as err:  # an unreadable state file: one line, no traceback
        parser.exit(2, f"error: {err}\n")


if __name__ == "__main__":
    main()
