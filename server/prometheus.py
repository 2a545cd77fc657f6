"""`GET /metrics` (Prometheus' text format) and the GraphQL operations' metrics.

In production the endpoint answers only `Authorization: Bearer $METRICS_TOKEN` (404 while it
is unset); in development it is open unless a token is set. Operations are labelled by their
root fields (`entitlement`, `upgrade`...), never by the client's operation name, which any
client can make up: one label value per made-up name would grow Prometheus without bound.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
)
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Metric,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from strawberry.extensions import SchemaExtension

from billing.container import Services
from billing.entitlements.read import open_required_actions
from billing.kit import metrics
from billing.models import utcnow
from billing.retention.report import RetentionTotals, retention_totals
from server.deps import ServicesDep
from webhooks.store import PendingEvents, pending_events

log = logging.getLogger(__name__)

router = APIRouter()

INVALID = "invalid"
"""The operation label of a document that did not parse or names no known root field."""


def operation_of(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The named (or only) operation of a document, None when there is no single one."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        operations = [o for o in operations if o.name and o.name.value == name]
    return operations[0] if len(operations) == 1 else None


def label_of(operation: OperationDefinitionNode | None) -> str:
    """The operation's root fields, sorted and comma-joined (`__typename` only when alone).

    Only for an operation that passed validation, so every name is one of the schema's."""
    if operation is None:
        return INVALID
    names = {s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)}
    if len(names) > 1:
        names.discard("__typename")
    return ",".join(sorted(names)) or INVALID


def outcome_of(errors: Iterable[GraphQLError], billing_error: bool) -> str:
    """ok, billing_error (expected failure as data), unauthenticated, invalid (refused before
    running: parse, validation, limits) or error (a resolver failed)."""
    errors = list(errors)
    if not errors:
        return "billing_error" if billing_error else "ok"
    if any((e.extensions or {}).get("code") == "UNAUTHENTICATED" for e in errors):
        return "unauthenticated"
    return "error" if any(e.path for e in errors) else "invalid"


class OperationMetrics(SchemaExtension):
    """Counts every query and mutation by root fields and outcome, with its latency."""

    def on_operation(self) -> Iterator[None]:
        """Time the operation; record it once its result is known."""
        elapsed = metrics.clock()
        yield
        context = self.execution_context
        document = context.graphql_document
        operation = operation_of(document, context.operation_name) if document else None
        if operation is not None and operation.operation is OperationType.SUBSCRIPTION:
            return  # counted while open (billing_graphql_subscriptions_open)
        errors = list(context.pre_execution_errors or [])
        errors.extend(getattr(context.result, "errors", None) or [])
        billing_error = getattr(context.context, "billing_error", False)
        outcome = outcome_of(errors, bool(billing_error))
        # A refused document's field names are the client's to choose: never a label.
        label = INVALID if outcome == "invalid" else label_of(operation)
        metrics.observe_operation(label, outcome, elapsed())


class DatabaseGauges:
    """The stored events' backlog, the open required actions and the retention records' counts,
    read from the database for this scrape."""

    def __init__(
        self, found: PendingEvents, actions: dict[str, int], retention: RetentionTotals
    ) -> None:
        self.found = found
        self.actions = actions
        self.retention = retention

    def collect(self) -> Iterator[Metric]:
        """The gauges."""
        actions = GaugeMetricFamily(
            "billing_required_actions",
            "Orgs whose customer must act to keep paying (entitlement.requiredAction), by code.",
            labels=["code"],
        )
        for code, count in sorted(self.actions.items()):
            actions.add_metric([code], count)
        yield actions
        yield GaugeMetricFamily(
            "billing_webhook_events_pending",
            "Stored webhook events not yet applied (received or failed), in every process.",
            value=self.found.count,
        )
        cancellations = CounterMetricFamily(
            "billing_cancellations",
            "Subscription cancellations asked for (once per subscription and period; an undone "
            "one still counts), by the customer's feedback (none: not given).",
            labels=["feedback"],
        )
        for feedback, count in self.retention.cancellations.items():
            cancellations.add_metric([feedback], count)
        yield cancellations
        yield CounterMetricFamily(
            "billing_retention_offers_made",
            "Retention coupons offered in the portal's cancel flow (once per subscription and "
            "period).",
            value=self.retention.offers_made,
        )
        yield CounterMetricFamily(
            "billing_retention_offers_accepted",
            "Retention offers accepted instead of canceling.",
            value=self.retention.offers_accepted,
        )
        oldest = self.found.oldest_received_at
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "billing_webhook_oldest_pending_age_seconds",
            "Seconds since the oldest pending webhook event was received (0: none pending).",
            value=max(age, 0.0),
        )


def _authorized(services: Services, header: str | None) -> bool | None:
    """True when the caller may read the metrics, False when not, None when not served."""
    settings = services.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if token is None:
        return None if settings.production else True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def exposition(database: DatabaseGauges | None) -> bytes:
    """Every metric of every process of this deployment, and the database's gauges, as text."""
    metrics.flush()
    folder = metrics.multiprocess_dir()
    if folder is None:
        registry = REGISTRY
    else:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(folder))  # type: ignore[no-untyped-call]
    text = generate_latest(registry)
    if database is not None:
        extra = CollectorRegistry(auto_describe=False)
        extra.register(database)
        text += generate_latest(extra)
    return text


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request, services: ServicesDep) -> Response:
    """Prometheus' scrape."""
    allowed = _authorized(services, request.headers.get("authorization"))
    if allowed is None:
        return PlainTextResponse("Not Found", status_code=404)
    if not allowed:
        return PlainTextResponse(
            "metrics need Authorization: Bearer <METRICS_TOKEN>",
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )
    database: DatabaseGauges | None
    try:
        found = await pending_events(services)
        database = DatabaseGauges(
            found,
            await open_required_actions(services.db),
            await retention_totals(services.db),
        )
    except Exception as exc:  # the database is away: the process metrics still answer
        log.warning("metrics: reading the database gauges failed (%s)", type(exc).__name__)
        database = None
    return Response(exposition(database), media_type=CONTENT_TYPE_LATEST)
