"""The served schema: the types of `schema/` with the limits and masking of this server."""

from __future__ import annotations

import logging
from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.types import ExecutionContext

from schema.root import Mutation, Query, Subscription
from server.masking import HideSuggestions, MaskUnexpectedErrors, is_unexpected
from server.prepared import DocumentStore, PreparedDocuments
from server.prometheus import OperationMetrics
from server.validation import document_limits
from server.websocket import OperationsByTransport

log = logging.getLogger(__name__)


class BillingSchema(strawberry.Schema):
    """The schema; logs only unexpected errors, with their request id."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors with a traceback; expected ones are the client's business."""
        for error in errors:
            if is_unexpected(error):
                log.error("unexpected GraphQL error", exc_info=error.original_error)


def build_schema(production: bool = False) -> strawberry.Schema:
    """The schema, with abuse limits passed as factories; production hides its shape."""
    documents = DocumentStore()
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        OperationMetrics,
        lambda: PreparedDocuments(documents),
        *document_limits(),
        OperationsByTransport,
        MaskUnexpectedErrors,
    ]
    if production:
        extensions.extend([DisableIntrospection, HideSuggestions])
    return BillingSchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )
