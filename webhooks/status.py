"""`events status`: the stored events' health as plain JSON values (the CLI draws the table)."""

from __future__ import annotations

from typing import Any

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
