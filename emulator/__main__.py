"""``python -m emulator --webhook-url U --webhook-secret S --state-file F --rate-limit N``."""

from __future__ import annotations

import argparse
from pathlib import Path

from emulator.server import serve
from emulator.state import rate_limit_value


def _rate(text: str) -> float:
    """The ``--rate-limit`` value (argparse reports a bad one)."""
    try:
        return rate_limit_value(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", action="append", default=[])
    parser.add_argument("--webhook-secret", action="append", default=[])
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--state-file", type=Path, default=None, help="keep the state here")
    parser.add_argument(
        "--rate-limit",
        type=_rate,
        default=0.0,
        metavar="N",
        help="answer Stripe's 429 above N requests per second to /v1 (default 0: off)",
    )
    args = parser.parse_args(argv)
    if len(args.webhook_secret) < len(args.webhook_url):
        parser.error("every --webhook-url needs a --webhook-secret")
    webhooks = list(zip(args.webhook_url, args.webhook_secret, strict=False))
    try:
        serve(
            args.host,
            args.port,
            webhooks,
            log_level=args.log_level,
            state_file=args.state_file,
            rate_limit=args.rate_limit,
        )
    except ValueError as err:  # an unreadable state file: one line, no traceback
        parser.exit(2, f"error: {err}\n")


if __name__ == "__main__":
    main()
