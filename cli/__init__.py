"""The command line: `python main.py COMMAND` (see `--help`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.exc import SQLAlchemyError

from billing.catalog.plans import CatalogError
from billing.catalog.sync import SyncError, SyncStep, sync_catalog, sync_portal
from billing.container import Services, with_services
from billing.errors import BillingErrorCode, BillingFailure
from billing.gateway.errors import StripeRejected, StripeUnavailable
from billing.kit.logs import LogFormat, configure_logging
from billing.kit.settings import DEV_JWT_SECRET, Settings
from billing.retention.report import CancellationReport

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Billing API")
catalog_cli = typer.Typer(no_args_is_help=True, help="The Stripe product catalog")
portal_cli = typer.Typer(no_args_is_help=True, help="The Customer Portal configuration")
events_cli = typer.Typer(no_args_is_help=True, help="Stored webhook events")
cli.add_typer(catalog_cli, name="catalog")
cli.add_typer(portal_cli, name="portal")
cli.add_typer(events_cli, name="events")
console = Console(soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])
EXPECTED = (
    CatalogError,
    SyncError,
    StripeUnavailable,
    StripeRejected,
    BillingFailure,
    SQLAlchemyError,
    ValueError,
    OSError,
)


def one_line_errors(func: F) -> F:
    """Turn configuration and input errors into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "_".join(str(p) for p in first["loc"]).upper() or "configuration"
            message = str(first["msg"]).removeprefix("Value error, ")
            typer.echo(f"error: {name}: {message}", err=True)
        except EXPECTED as exc:
            typer.echo(f"error: {_one_line(exc)}", err=True)
        raise typer.Exit(1)

    return wrapper  # type: ignore[return-value]


def _one_line(exc: Exception) -> str:
    """The first line of an error's message, naming the setting a missing key needs."""
    if isinstance(exc, BillingFailure) and exc.code is BillingErrorCode.STRIPE_NOT_CONFIGURED:
        return "STRIPE_SECRET_KEY is not set"
    if isinstance(exc, SQLAlchemyError):
        return f"database: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@cli.callback()
def main() -> None:
    """Log to stderr with request ids, as the server does, in LOG_FORMAT."""
    configure_logging(fmt=_log_format())


def _log_format() -> LogFormat:
    """LOG_FORMAT as the settings read it (environment, `.env`); `text` while the
    configuration is invalid, which the command itself then reports in one line."""
    try:
        return Settings().log_format
    except ValidationError:
        return "text"


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion."""
    return asyncio.run(coro)


def _print_steps(steps: list[SyncStep], dry_run: bool) -> None:
    """Print the plan of changes."""
    style = {
        "create": "green",
        "update": "yellow",
        "attach": "green",
        "detach": "red",
        "unchanged": "dim",
    }
    for step in steps:
        console.print(
            f"[{style[step.action]}]{step.action:9}[/] {step.kind} {step.key} {step.detail}",
            highlight=False,
        )
    pending = sum(s.action != "unchanged" for s in steps)
    verb = "would change" if dry_run else "changed"
    console.print(f"{pending} {verb}, {len(steps) - pending} unchanged")


@cli.command()
@one_line_errors
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="server processes sharing the port (README: Production)")
    ] = 1,
    timeout_keep_alive: Annotated[
        int, typer.Option(help="seconds an idle connection stays open (above your proxy's)")
    ] = 5,
    access_log: Annotated[
        bool, typer.Option(help="log one line per request (off when your proxy logs them)")
    ] = True,
) -> None:
    """Serve the API (same app as `uvicorn main:app`) on uvloop and httptools."""
    import uvicorn

    from billing.kit.logs import uvicorn_log_config
    from devstack import require_free_port
    from server.app import create_app

    settings = Settings()
    require_free_port(host, port, "the API")
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        timeout_keep_alive=timeout_keep_alive,
        access_log=access_log,
        loop="uvloop",
        http="httptools",
        # entitlementChanged messages are a few hundred bytes: compressing them saves little
        # and its zlib state costs about 40 KiB per open WebSocket.
        ws_per_message_deflate=False,
        # Refused while the frame arrives (server/websocket.py checks again under `uvicorn
        # main:app`, whose default is 16 MiB).
        ws_max_size=settings.ws_max_message_bytes,
        log_config=uvicorn_log_config(settings.log_format),
    )
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    with _worker_environment(settings, workers):
        # Each worker builds the app from the environment (`main:app`), as `uvicorn` would.
        uvicorn.run(
            "main:app", workers=workers, app_dir=str(Path(__file__).resolve().parents[1]), **options
        )


@contextlib.contextmanager
def _worker_environment(settings: Settings, workers: int) -> Iterator[None]:
    """What several workers share: a metrics folder, and Stripe's rate split between them."""
    from billing.kit.metrics import MULTIPROC_ENV

    made = None
    if not os.environ.get(MULTIPROC_ENV):
        made = tempfile.mkdtemp(prefix="billing-metrics-")
        os.environ[MULTIPROC_ENV] = made
    Path(os.environ[MULTIPROC_ENV]).mkdir(parents=True, exist_ok=True)
    if settings.stripe_rate_limit is None:
        # STRIPE_RATE_LIMIT is per process: the default is the whole deployment's share.
        os.environ["STRIPE_RATE_LIMIT"] = f"{settings.stripe_rate / workers:g}"
    console.print(
        f"{workers} workers, {settings.stripe_rate / workers:g} Stripe requests/s each"
        if settings.stripe_rate_limit is None
        else f"{workers} workers, STRIPE_RATE_LIMIT={settings.stripe_rate:g} requests/s each",
        highlight=False,
    )
    try:
        yield
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


@cli.command("schema")
def print_schema() -> None:
    """Print the served GraphQL schema (SDL); `schema.graphql` is its copy."""
    from server.execution import build_schema

    typer.echo(build_schema().as_str())


@cli.command()
@one_line_errors
def migrate() -> None:
    """Bring the database schema to the latest revision."""
    from billing.kit.migrations import migrate as run_migrations

    run_migrations(Settings().database_url)
    console.print("database is at the latest revision")


@cli.command("dev-token")
@one_line_errors
def dev_token(
    org: Annotated[str, typer.Option(help="org id")],
    role: str = "owner",
    user: str = "dev-user",
    ttl: int = 3600,
) -> None:
    """Print a signed JWT for local use (needs AUTH_JWT_SECRET)."""
    from billing.kit.auth import dev_token as make_token

    print(make_token(Settings(), org, role, user, ttl))


@cli.command()
@one_line_errors
def emulator(
    port: int = 12111,
    host: str = "127.0.0.1",
    webhook_url: Annotated[str | None, typer.Option(help="deliver events here")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="whsec_... to sign with")] = None,
    state_file: Annotated[
        Path | None, typer.Option(help="keep the emulator's state in this JSON file")
    ] = None,
) -> None:
    """Run the Stripe emulator on its own."""
    from emulator.server import serve as serve_emulator

    if bool(webhook_url) != bool(webhook_secret):
        raise ValueError("--webhook-url and --webhook-secret go together")
    hooks = [(webhook_url, webhook_secret)] if webhook_url and webhook_secret else []
    serve_emulator(host, port, hooks, state_file=state_file)


@catalog_cli.command("sync")
@one_line_errors
def catalog_sync(dry_run: bool = False) -> None:
    """Create or update products, prices and features from the plans file, keyed by lookup_key;
    attach each plan's features to its product."""
    steps = _run(
        with_services(
            Settings(), lambda services: sync_catalog(services.stripe, services.catalog, dry_run)
        )
    )
    _print_steps(steps, dry_run)


@portal_cli.command("sync")
@one_line_errors
def portal_sync(dry_run: bool = False) -> None:
    """Create or update the Customer Portal configuration from the plans file."""
    steps = _run(
        with_services(
            Settings(),
            lambda services: sync_portal(
                services.stripe, services.catalog, services.settings, dry_run
            ),
        )
    )
    _print_steps(steps, dry_run)


@cli.command()
@one_line_errors
def resync(org: Annotated[str | None, typer.Option(help="only this org")] = None) -> None:
    """Rebuild entitlements from Stripe's current state."""
    from billing.accounts import account_customers
    from billing.entitlements.projection import resync_customer

    async def work(services: Services) -> int:
        stripe = services.stripe  # fails fast when Stripe is not configured
        accounts = await account_customers(services.db, org)
        if org and not accounts:
            raise ValueError(f"org {org} has no billing account")
        failed = 0
        with Progress(console=console, transient=False) as progress:
            task = progress.add_task("resync", total=len(accounts))
            for org_id, customer_id in accounts:
                try:
                    await resync_customer(services.db, stripe, services.catalog, customer_id)
                except (StripeUnavailable, StripeRejected, SQLAlchemyError, TimeoutError) as exc:
                    failed += 1
                    progress.console.print(f"org {org_id}: {_one_line(exc)}", markup=False)
                progress.advance(task)
        if failed:
            raise ValueError(f"{failed} of {len(accounts)} org(s) could not be resynced")
        return len(accounts)

    count = _run(with_services(Settings(), work))
    console.print(f"resynced {count} org(s)")


@cli.command()
@one_line_errors
def drift(
    org: Annotated[str | None, typer.Option(help="only this org")] = None,
    fix: Annotated[bool, typer.Option("--fix", help="re-sync the orgs that differ")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Compare every org's entitlement with Stripe's state; exit 1 when any differ.

    --fix re-syncs only those and checks them again (exit 0: all repaired).
    An org whose Stripe read fails is an error (exit 1); the others go on.

    --json prints one object:
      {"checked": N,
       "drifted": [{"org_id", "customer_id",
                    "differences": [{"column", "stored", "stripe"}]}],
       "fixed": ["org_id", ...] (null without --fix),
       "errors": [{"org_id", "customer_id", "during", "error"}]}
    "drifted" is what the check found, before any fix. A column is one of
    the entitlement's (no row: the default plan, "none", as the API serves),
    or "deleted" when Stripe deleted the customer but the billing account
    does not say so. Times are ISO 8601; "during" is "check" or "fix".
    """
    from billing.entitlements.drift import DriftReport, find_drift, report, summary
    from cli.tables import drift_table, progress_tracker

    async def work(services: Services) -> DriftReport:
        # Only on a terminal: transient, so the table stays clean (a pipe would get a blank line).
        hidden = as_json or not console.is_terminal
        with Progress(console=console, transient=True, disable=hidden) as progress:
            return await find_drift(
                services.db,
                services.stripe,
                services.catalog,
                org,
                fix=fix,
                track=progress_tracker(progress),
            )

    found = _run(with_services(Settings(), work))
    if as_json:
        typer.echo(json.dumps(report(found)))
    else:
        if found.drifted:
            console.print(drift_table(found, console))
        for line in summary(found):
            console.print(line, highlight=False, markup=False)
    if not found.ok:
        raise typer.Exit(1)


@events_cli.command("replay")
@one_line_errors
def events_replay(
    failed: Annotated[bool, typer.Option("--failed", help="only failed events")] = False,
    event_id: Annotated[str | None, typer.Option("--id", help="only this event")] = None,
) -> None:
    """Apply stored webhook events now (default: every event not yet applied)."""
    from webhooks.applier import replay
    from webhooks.store import Outcome

    async def work(services: Services) -> Counter[str]:
        return await replay(services, failed_only=failed, event_id=event_id)

    outcomes = _run(with_services(Settings(), work))
    summary = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "nothing to replay"
    console.print(summary)
    if outcomes.get(Outcome.FAILED.value) or outcomes.get(Outcome.DEFERRED.value):
        raise typer.Exit(1)


@events_cli.command("status")
@one_line_errors
def events_status(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Stored events by status, the oldest pending one and the processing lag."""
    from cli.tables import events_table
    from webhooks.status import report
    from webhooks.store import summary

    found = _run(with_services(Settings(), summary))
    if as_json:
        typer.echo(json.dumps(report(found)))
    else:
        console.print(events_table(found))


@cli.command()
@one_line_errors
def cancellations(
    since: Annotated[
        float | None, typer.Option("--since", min=0, help="only the last DAYS days", metavar="DAYS")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Cancellations by feedback, their comments, retention offers accepted, and the save rate.

    --json prints one object: cancellations (count, undone ones left out), by_feedback
    (feedback -> count, `none` when not given), comments ([{org_id, at, feedback, comment}],
    newest first), offers_made, offers_accepted, save_rate (accepted / (accepted +
    cancellations), 0 when both are 0), and by_reason, undone, resubscribed, since."""
    from billing.retention.report import cancellation_report
    from cli.tables import cancellations_table

    async def work(services: Services) -> CancellationReport:
        return await cancellation_report(services.db, since)

    found = _run(with_services(Settings(), work))
    if as_json:
        typer.echo(json.dumps(found.as_json()))
    else:
        for table in cancellations_table(found):
            console.print(table)


@cli.command()
@one_line_errors
def worker() -> None:
    """Run only the background applier of stored webhook events, until SIGINT or SIGTERM."""
    from webhooks.applier import Applier

    async def work(services: Services) -> None:
        services.stripe  # noqa: B018  (fails fast when Stripe is not configured)
        applier = Applier(services)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await services.db.change_feed.start()  # other processes' stored events wake it
        await applier.start()
        console.print("applying stored webhook events; Ctrl-C stops", highlight=False)
        await stop.wait()
        await applier.stop()

    _run(with_services(Settings(), work))


@cli.command()
@one_line_errors
def dev(
    port: int = 8000,
    emulator_port: int = 12111,
    example: Annotated[
        bool, typer.Option(help="build and serve the example React client at APP_URL")
    ] = True,
) -> None:
    """`make run`: migrate, start the emulator when STRIPE_SECRET_KEY is unset, seed, serve."""
    import uvicorn

    from billing.kit.migrations import migrate as run_migrations
    from devstack import (
        DEMO_PROMOTION_CODE,
        EMULATOR_KEY,
        EMULATOR_SECRET,
        emulator_state_file,
        require_free_port,
        seed_promotion_code,
    )
    from devstack import example as example_client
    from server.app import create_app

    require_free_port("127.0.0.1", port, "the API")
    overrides: dict[str, Any] = {}
    base = Settings()
    if base.production:
        raise ValueError(
            "`make run` is for development only (ENVIRONMENT=production): use `main.py serve`"
        )
    # The example (or your own app, `npm run dev`) at APP_URL calls /graphql from the browser.
    overrides["cors_origins"] = [*base.cors_origins, example_client.origin(base.app_url)]
    if base.auth_jwt_secret is None:
        overrides["auth_jwt_secret"] = DEV_JWT_SECRET
        os.environ["AUTH_JWT_SECRET"] = DEV_JWT_SECRET  # so `dev-token` works in children
    if base.stripe_secret_key is None:
        from emulator.server import EmulatorServer

        require_free_port("127.0.0.1", emulator_port, "the Stripe emulator")
        state_file = emulator_state_file(base.database_url)
        hook = f"http://127.0.0.1:{port}/webhooks/stripe"
        server = EmulatorServer(
            port=emulator_port, webhooks=[(hook, EMULATOR_SECRET)], state_file=state_file
        )
        server.start()
        overrides.update(
            stripe_secret_key=EMULATOR_KEY,
            stripe_api_base=server.url,
            stripe_webhook_secret=EMULATOR_SECRET,
        )
        console.print(
            f"Stripe emulator on {server.url} (no STRIPE_SECRET_KEY set), "
            f"state kept in {state_file}",
            highlight=False,
        )
    settings = Settings(**overrides)
    run_migrations(settings.database_url)
    if "stripe_api_base" in overrides:
        catalog_steps, portal_steps, unknown = _run(with_services(settings, _seed_emulator))
        _print_steps(catalog_steps, False)
        _print_steps(portal_steps, False)
        if seed_promotion_code(settings.stripe_api_base or ""):
            console.print(f"promotion code {DEMO_PROMOTION_CODE} created", highlight=False)
        if unknown:
            console.print(
                f"warning: {len(unknown)} org(s) in the database have Stripe customers the "
                "emulator does not know (its saved state was lost): run `make reset` to start "
                "both afresh, or `python main.py resync` to detach them",
                style="yellow",
                highlight=False,
            )
    if example:
        say = functools.partial(console.print, highlight=False, markup=False)
        say("\n" + example_client.start(settings, port, say))
    console.print(
        f"\nAPI on http://127.0.0.1:{port}/graphql (GraphiQL in the browser)\n"
        "Get a development token:\n"
        f"  AUTH_JWT_SECRET={'<yours>' if 'auth_jwt_secret' not in overrides else DEV_JWT_SECRET}"
        " .venv/bin/python main.py dev-token --org org_demo\n"
        "and send it as the header  Authorization: Bearer <token>\n"
        f"Live entitlement: ws://127.0.0.1:{port}/graphql (graphql-transport-ws; the token goes"
        ' in connection_init as {"authorization": "Bearer <token>"})\n',
        highlight=False,
        markup=False,
    )
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port)


async def _seed_emulator(services: Services) -> tuple[list[SyncStep], list[SyncStep], list[str]]:
    """The catalog and the portal synced to the emulator, then the orgs it does not know."""
    from devstack import orgs_unknown_to_stripe

    catalog_steps = await sync_catalog(services.stripe, services.catalog, False)
    portal_steps = await sync_portal(services.stripe, services.catalog, services.settings, False)
    return catalog_steps, portal_steps, await orgs_unknown_to_stripe(services)


@cli.command()
@one_line_errors
def reset(port: int = 8000, emulator_port: int = 12111) -> None:
    """`make reset`: delete the local SQLite database and the emulator's saved state together."""
    from devstack import require_free_port, reset_local

    settings = Settings()
    for what, number in (("the API", port), ("the Stripe emulator", emulator_port)):
        require_free_port("127.0.0.1", number, what, "stop `make run` first")
    deleted = reset_local(settings)
    console.print(
        "deleted " + ", ".join(str(p) for p in deleted) if deleted else "nothing to delete",
        highlight=False,
    )
