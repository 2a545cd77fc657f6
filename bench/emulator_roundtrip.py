"""Round trip of a simple emulator call (customers.retrieve): via the Stripe SDK and raw httpx.

Run: ``.venv/bin/python bench/emulator_roundtrip.py [calls]``. Prints median and p95 in ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import stripe

from emulator.server import EmulatorServer

KEY = "sk_test_bench"


def measure(label: str, call: object, n: int) -> None:
    """Time n calls after a warm-up and print median / p95."""
    assert callable(call)
    for _ in range(50):
        call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:<28} median {statistics.median(samples):6.3f} ms   p95 {p95:6.3f} ms  (n={n})")


def main() -> None:
    """Start an emulator, create a customer, time retrieving it."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with EmulatorServer() as server:
        client = stripe.StripeClient(
            KEY,
            base_addresses={"api": server.url},
            http_client=stripe.HTTPXClient(allow_sync_methods=True),
            max_network_retries=0,
        )
        customer = client.v1.customers.create(params={"email": "bench@example.com"})
        measure("SDK customers.retrieve", lambda: client.v1.customers.retrieve(customer.id), n)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as h:
            path = f"/v1/customers/{customer.id}"
            measure("httpx keep-alive GET", lambda: h.get(path).raise_for_status(), n)


if __name__ == "__main__":
    main()
