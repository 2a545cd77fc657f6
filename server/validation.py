"""Limits on the documents clients may send: depth, tokens, aliases, one field per mutation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
)
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

MAX_DEPTH = 5
MAX_TOKENS = 1000
MAX_ALIASES = 5


def _ignore_introspection(context: IgnoreContext) -> bool:
    """Introspection fields do not count towards the depth limit (GraphiQL needs them).

    Their nesting is bounded by graphql-core's MaxIntrospectionDepthRule instead (one of
    its specified rules), which refuses the `fields { type { fields { ... } } }` cycles that
    make introspection exponential; a test pins that down.
    """
    return context.field_name.startswith("__")


class OneMutationField(ValidationRule):
    """A mutation operation selects one field: one Stripe-bound action per request.

    Aliases would otherwise let one request run several `upgrade`/`openPortal` calls in
    sequence, each up to the Stripe deadline, multiplying the time a request holds a worker.
    """

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        """Count the distinct response keys of a mutation's root selection."""
        if node.operation is not OperationType.MUTATION:
            return
        keys = set(self._root_keys(node.selection_set, set()))
        keys.discard("__typename")
        if len(keys) > 1:
            self.report_error(GraphQLError("A mutation may select only one field.", [node]))

    def _root_keys(self, selection_set: SelectionSetNode, seen: set[str]) -> Iterator[str]:
        """Response keys at this level, through inline fragments and fragment spreads."""
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield (selection.alias or selection.name).value
            elif isinstance(selection, InlineFragmentNode):
                yield from self._root_keys(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is not None and name not in seen:
                    seen.add(name)
                    yield from self._root_keys(fragment.selection_set, seen)


RULES: tuple[type[ValidationRule], ...] = (
    depth_validator(MAX_DEPTH, _ignore_introspection, None),
    aliases_validator(MAX_ALIASES),
    OneMutationField,
)
"""Strawberry's depth and alias limits as validation rules, built once: their extensions build
a new rule class per operation, which a subscription would keep for as long as it runs."""


def document_limits() -> list[Callable[[], SchemaExtension]]:
    """The limiting extensions, as factories (one instance per operation)."""
    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(list(RULES)),
    ]
