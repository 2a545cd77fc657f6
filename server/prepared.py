"""Documents parsed and validated once: the same query text is neither re-parsed nor
re-validated on every request.

Every request of a schema runs the same validation rules (the limits of server/validation.py,
graphql-core's specified rules, production's introspection ban), so a document that passed
them once passes them again; only documents that passed are kept (a refused one is checked,
and refused, every time). The store is bounded: a flood of distinct documents only evicts.
"""

from __future__ import annotations

from collections.abc import Iterator

from cachetools import LRUCache
from graphql import DocumentNode
from strawberry.extensions import SchemaExtension

MAX_DOCUMENTS = 256
"""Valid documents kept at once."""

MAX_DOCUMENT_CHARS = 8192
"""Longer texts are parsed and validated every time (comments and whitespace are not tokens,
so the token limit alone would not bound the memory a kept text takes)."""


class DocumentStore:
    """Valid documents by their exact text, the least recently used forgotten first."""

    def __init__(self, size: int = MAX_DOCUMENTS) -> None:
        self._documents: LRUCache[str, DocumentNode] = LRUCache(size)

    def get(self, query: str) -> DocumentNode | None:
        """The parsed document of a text that validated before."""
        return self._documents.get(query)

    def keep(self, query: str, document: DocumentNode) -> None:
        """Remember a document that passed validation (short texts only)."""
        if len(query) <= MAX_DOCUMENT_CHARS:
            self._documents[query] = document


class PreparedDocuments(SchemaExtension):
    """Skip parsing and validation for a text that parsed and validated before."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._known = False

    def on_parse(self) -> Iterator[None]:
        """Hand over the kept document, if any."""
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            document = self.store.get(context.query)
            if document is not None:
                context.graphql_document = document
                self._known = True
        yield

    def on_validate(self) -> Iterator[None]:
        """A kept document is valid; a new one is kept once it validates cleanly."""
        context = self.execution_context
        if self._known:
            context.pre_execution_errors = []
        yield
        if not self._known and context.query is not None and context.graphql_document:
            if context.pre_execution_errors == []:
                self.store.keep(context.query, context.graphql_document)
