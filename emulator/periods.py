"""Billing period arithmetic (calendar months like Stripe's billing cycle anchor)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

_SECONDS = {"day": 86400, "week": 7 * 86400}


def add_months(ts: int, months: int, anchor_day: int | None = None) -> int:
    """Move a timestamp by calendar months, clamping the day to the month's length."""
    dt = datetime.fromtimestamp(ts, UTC)
    index = dt.year * 12 + (dt.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(anchor_day or dt.day, calendar.monthrange(year, month)[1])
    return int(dt.replace(year=year, month=month, day=day).timestamp())


def add_interval(ts: int, interval: str, count: int = 1, anchor_day: int | None = None) -> int:
    """The end of a billing period starting at ts."""
    if interval in _SECONDS:
        return ts + _SECONDS[interval] * count
    months = count * (12 if interval == "year" else 1)
    return add_months(ts, months, anchor_day)


def day_of(ts: int) -> int:
    """Day of month (UTC) of a timestamp."""
    return datetime.fromtimestamp(ts, UTC).day
