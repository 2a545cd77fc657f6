"""`events status`: the stored events' health, for people (a table) and machines (JSON)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from billing.models import EventStatus, utcnow
from webhooks.store import LAG_WINDOW, Summary


def _percentile(values: list[int], share: float) -> int | None:
    """The value below which `share` of the sorted values fall (nearest rank)."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]


def report(found: Summary) -> dict[str, Any]:
    """The summary as plain JSON values."""
    now = utcnow()
    oldest = found.oldest_pending
    lags = found.recent_lags_ms
    return {
        "counts": {status.value: found.counts.get(status.value, 0) for status in EventStatus},
        "pending": sum(
            found.counts.get(s.value, 0) for s in (EventStatus.RECEIVED, EventStatus.FAILED)
        ),
        "due_now": found.due_now,
        "next_retry_at": found.next_retry_at.isoformat() if found.next_retry_at else None,
        "oldest_pending": None
        if oldest is None
        else {
            "id": oldest[0],
            "type": oldest[1],
            "received_at": oldest[2].isoformat(),
            "age_seconds": round((now - oldest[2]).total_seconds(), 3),
        },
        "lag_ms": {
            "window_seconds": int(LAG_WINDOW.total_seconds()),
            "applied": len(lags),
            "p50": _percentile(lags, 0.5),
            "p95": _percentile(lags, 0.95),
            "max": lags[-1] if lags else None,
        },
    }


def _ms(value: int | None) -> str:
    """Milliseconds, or seconds above ten of them."""
    if value is None:
        return "-"
    return f"{value} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def render(found: Summary) -> Table:
    """The summary as a table."""
    data = report(found)
    table = Table(title="Stored webhook events", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for status, count in data["counts"].items():
        table.add_row(status, f"{count:,}")
    retry = data["next_retry_at"] or "-"
    table.add_row("due now", f"{data['due_now']:,} (next retry at {retry})")
    oldest = data["oldest_pending"]
    table.add_row(
        "oldest pending",
        "-"
        if oldest is None
        else f"{oldest['id']} {oldest['type']}, received {oldest['received_at']} "
        f"({oldest['age_seconds']:.1f} s ago)",
    )
    lag = data["lag_ms"]
    table.add_row(
        "lag (last hour)",
        f"{lag['applied']:,} applied: p50 {_ms(lag['p50'])}, p95 {_ms(lag['p95'])}, "
        f"max {_ms(lag['max'])}",
    )
    return table
