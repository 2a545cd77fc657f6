"""The media type of a /graphql answer, negotiated from the request's `Accept` header as the
GraphQL-over-HTTP specification says (https://graphql.github.io/graphql-over-http/draft/).

- `application/graphql-response+json`: a request error (unparsable JSON, a missing or
  non-string `query`, a syntax or validation error, an unknown operation, variables that do
  not coerce) is a 4xx whose body has no `data`; an answer with `data` (field errors
  included) is a 200.
- `application/json`, the legacy type: a GraphQL error of any kind is a 200 with `data: null`,
  exactly as before this type existed. Clients that send no `Accept`, or `*/*`, get it.
- Neither acceptable (say `Accept: text/html` alone): 406, before anything runs.

`response_media_type` is the one decision; whatever keeps answers (the response cache) serves
a kept one only to a request that negotiates the same type.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

from starlette.responses import Response

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
"""The GraphQL response media type: status codes say whether the request ran."""
APPLICATION_JSON = "application/json"
"""The legacy media type: 200 for every GraphQL answer, errors in the body."""

CONTENT_TYPES = {
    GRAPHQL_RESPONSE_JSON: f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    APPLICATION_JSON: APPLICATION_JSON,
}
"""The `Content-Type` each media type is answered with (application/json as it always was)."""

_CANDIDATES = (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON)
"""What the server can answer; on a tie (`*/*`, `application/*`) the first one wins."""
_UTF8 = frozenset({"utf-8", "utf8"})

_Range = tuple[str, float]
"""An `Accept` media range (lowercase, without parameters) and its quality."""


@lru_cache(maxsize=64)
def response_media_type(accept: str | None) -> str | None:
    """The media type to answer a request with this `Accept` header; None when it accepts
    neither `GRAPHQL_RESPONSE_JSON` nor `APPLICATION_JSON` (answer 406).

    No header, or an empty one, means `APPLICATION_JSON`. Otherwise each type takes the
    quality of the most specific range that matches it (`q=0`, or a charset other than
    UTF-8, accepts nothing); the highest quality wins, then a type named outright over one
    matched by a wildcard, then the one listed first, then `APPLICATION_JSON`. So
    `application/graphql-response+json, application/json;q=0.9` gets
    `GRAPHQL_RESPONSE_JSON` and `*/*` gets `APPLICATION_JSON`.
    """
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    ranges = [_media_range(part) for part in accept.split(",")]
    preferences = {media: _preference(ranges, media) for media in _CANDIDATES}
    best = max(_CANDIDATES, key=preferences.__getitem__)  # a tie keeps the first
    return best if preferences[best][0] > 0 else None


def _media_range(part: str) -> _Range:
    """One element of an `Accept` header as (range, quality)."""
    media_range, *parameters = part.split(";")
    quality = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"').lower()
        if name == "q":
            quality = _quality(value)
        elif name == "charset" and value not in _UTF8:
            quality = 0.0
    return media_range.strip().lower(), quality


def _quality(value: str) -> float:
    """A `q` parameter's value, between 0 and 1; an unreadable one counts as 1."""
    try:
        quality = float(value)
    except ValueError:
        return 1.0
    return min(max(quality, 0.0), 1.0) if math.isfinite(quality) else 1.0


def _preference(ranges: list[_Range], media: str) -> tuple[float, int, int]:
    """(quality, specificity, -position) of the range that decides `media`'s quality."""
    specificities = {media: 2, media.split("/")[0] + "/*": 1, "*/*": 0}
    best = (-1, 0.0, 0)
    for position, (media_range, quality) in enumerate(ranges):
        specificity = specificities.get(media_range, -1)
        if specificity >= 0 and (specificity, quality) > best[:2]:
            best = (specificity, quality, -position)
    specificity, quality, position = best
    return quality, specificity, position


def graphql_error_response(status: int, message: str, **extensions: str) -> Response:
    """A GraphQL response without `data`, as `GRAPHQL_RESPONSE_JSON`: a request refused."""
    error: dict[str, object] = {"message": message}
    if extensions:
        error["extensions"] = extensions
    return Response(
        json.dumps({"errors": [error]}, separators=(",", ":")),
        status_code=status,
        media_type=CONTENT_TYPES[GRAPHQL_RESPONSE_JSON],
    )
