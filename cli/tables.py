"""The CLI's Rich output: the `drift` table and progress bars, the `events status` table."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from billing.entitlements.drift import DriftReport, Step, Track, plain
from billing.retention.report import CancellationReport
from webhooks.status import report as status_report
from webhooks.store import Summary


def progress_tracker(progress: Progress) -> Track:
    """Progress bars on a Rich `Progress`."""

    def track(what: str, total: int) -> Step:
        task = progress.add_task(what, total=total)
        return lambda: progress.advance(task)

    return track


def _cell(value: Any) -> Text:
    """A value for the table, never read as markup: null as "-", others as in the JSON."""
    value = plain(value)
    return Text("-" if value is None else value if isinstance(value, str) else json.dumps(value))


def drift_table(found: DriftReport, console: Console) -> Table:
    """The differences as a table, one row per column; whole when the console is no terminal."""
    table = Table(title="Entitlements that differ from Stripe")
    for name in ("org", "column", "stored", "stripe"):
        table.add_column(name)
    for check in found.drifted:
        for d in check.differences:
            table.add_row(Text(check.org_id), d.column, _cell(d.stored), _cell(d.stripe))
    if not console.is_terminal:  # a pipe or a file: ids and times never cut or folded
        table.width = Measurement.get(console, console.options.update_width(10**4), table).maximum
    return table


def _ms(value: int | None) -> str:
    """Milliseconds, or seconds above ten of them."""
    if value is None:
        return "-"
    return f"{value} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def events_table(found: Summary) -> Table:
    """The summary as a table."""
    data = status_report(found)
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


def cancellations_table(found: CancellationReport) -> list[Table]:
    """The summary (by feedback, offers, save rate), then the comments."""
    window = f"since {found.since:%Y-%m-%d %H:%M} UTC" if found.since else "all time"
    summary = Table(title=f"Cancellations ({window})")
    summary.add_column("feedback")
    summary.add_column("cancellations", justify="right")
    for feedback, count in found.by_feedback.items():
        summary.add_row(Text(feedback), f"{count:,}")
    summary.add_section()
    summary.add_row("total", f"{found.cancellations:,}", style="bold")
    summary.add_row("undone (kept their plan)", f"{found.undone:,}")
    summary.add_row("resubscribed later", f"{found.resubscribed:,}")
    summary.add_row("retention offers made", f"{found.offers_made:,}")
    summary.add_row("retention offers accepted", f"{found.offers_accepted:,}")
    summary.add_row("save rate", f"{found.save_rate:.1%}", style="bold")
    comments = Table(title="Comments, newest first")
    for name in ("at", "org", "feedback", "comment"):
        comments.add_column(name)
    for c in found.comments:
        comments.add_row(
            f"{c.at:%Y-%m-%d %H:%M}", Text(c.org_id), Text(c.feedback), Text(c.comment)
        )
    return [summary, comments]
