"""What clients see of errors: unexpected ones masked with a request id, no schema hints."""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from billing.kit.logs import request_id

INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
"""The `extensions.code` of a masked error."""


def is_unexpected(error: GraphQLError) -> bool:
    """True for an error raised by a bug or an outage, not on purpose as a GraphQLError."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def is_server_fault(error: GraphQLError) -> bool:
    """True for an unexpected error, masked already or not yet."""
    return is_unexpected(error) or (error.extensions or {}).get("code") == INTERNAL_SERVER_ERROR


class MaskUnexpectedErrors(MaskErrors):
    """Mask every error that is not a GraphQL error we raised on purpose; keep the request id."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        """A generic message plus the request id that the logs carry."""
        rid = request_id.get()
        return GraphQLError(
            f"Internal server error (request id {rid})",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": INTERNAL_SERVER_ERROR, "requestId": rid},
        )


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?\s*$")


class HideSuggestions(SchemaExtension):
    """Drop "Did you mean ...?" hints, which would reveal the schema introspection hides."""

    def on_operation(self) -> Iterator[None]:
        """Rewrite error messages once the operation is done."""
        yield
        errors = list(self.execution_context.pre_execution_errors or [])
        result = self.execution_context.result
        errors.extend(getattr(result, "errors", None) or [])
        for error in errors:
            error.message = _SUGGESTION.sub("", error.message)
