"""Which media type answers a GraphQL request over HTTP, read from its Accept header.

GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/) has two JSON media types:
`application/graphql-response+json`, whose status code says whether the request was executed, and
`application/json`, answered 200 whatever happened (for clients that predate the other one). A
subscription needs a stream: GraphQL over SSE (`text/event-stream`) or Apollo's multipart
subscriptions (`multipart/mixed;subscriptionSpec=1.0`).

The client's preference is RFC 9110's: the highest q-value wins, and among equal q-values the one it
listed first. A missing (or empty) Accept header and `*/*` mean `application/json`, as graphql-http's audit
asks (the spec's legacy rule: older clients send no Accept); an Accept header that names neither
JSON type gets `application/graphql-response+json`, the spec's default. Streams are only ever
served to a client that names one: a wildcard says nothing about understanding a stream format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache


class Media(Enum):
    # Listed in the order that breaks a tie between two types one range matches equally (`*/*`).
    JSON = "application/json"
    GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
    EVENT_STREAM = "text/event-stream"
    MULTIPART_SUBSCRIPTION = "multipart/mixed"

    @property
    def is_stream(self) -> bool:
        return self in (Media.EVENT_STREAM, Media.MULTIPART_SUBSCRIPTION)


JSON_TYPES = (Media.JSON, Media.GRAPHQL_RESPONSE_JSON)
STREAM_TYPES = (Media.EVENT_STREAM, Media.MULTIPART_SUBSCRIPTION)
_NO_ACCEPT = "application/json"
# Clients send the same few Accept headers: each is read once.
_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class MediaRange:
    type: str
    subtype: str
    q: float
    position: int
    params: dict[str, str] = field(default_factory=dict)

    def specificity(self, media: Media) -> int | None:
        """How exactly this range names `media` (2: type and subtype, 0: `*/*`); None: not at all."""
        kind, subtype = media.value.split("/")
        if media.is_stream:  # only by name, and multipart/mixed only with Apollo's subscriptionSpec
            if (self.type, self.subtype) != (kind, subtype):
                return None
            if media is Media.MULTIPART_SUBSCRIPTION:
                spec = self.params.get("subscriptionspec", "")
                boundary = self.params.get("boundary", "graphql")
                return 2 if spec.startswith("1.0") and boundary == "graphql" else None
            return 2
        if self.type == "*":
            return 0 if self.subtype == "*" else None
        if self.type != kind:
            return None
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == subtype else None


def _split(text: str, separator: str) -> list[str]:
    """`text` split at `separator`s outside quoted strings (`boundary="a,b"`), in linear time."""
    if '"' not in text:
        return text.split(separator)
    parts, start, quoted = [], 0, False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def parse_accept(header: str | None) -> list[MediaRange]:
    ranges = []
    for position, item in enumerate(_split(header if header and header.strip() else _NO_ACCEPT, ",")):
        kind, *raw_params = (part.strip() for part in _split(item, ";"))
        if "/" not in kind:
            continue
        main, sub = kind.lower().split("/", 1)
        params: dict[str, str] = {}
        for raw in raw_params:
            name, _, value = raw.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 0.0
        ranges.append(MediaRange(main, sub, min(max(q, 0.0), 1.0), position, params))
    return ranges


def ranked(header: str | None, offered: tuple[Media, ...]) -> list[Media]:
    """The offered types the client accepts (q > 0), best first."""
    ranges = parse_accept(header)
    scored = []
    for order, media in enumerate(offered):
        matches = [(r.specificity(media), r) for r in ranges]
        best = max(((s, r) for s, r in matches if s is not None), key=lambda m: m[0], default=None)
        if best is not None and best[1].q > 0:  # the most specific range sets the q-value
            scored.append((-best[1].q, best[1].position, order, media))
    return [media for *_, media in sorted(scored)]


@lru_cache(_CACHE_SIZE)
def response_type(header: str | None) -> Media:
    """The JSON media type of a single response."""
    accepted = ranked(header, JSON_TYPES)
    return accepted[0] if accepted else Media.GRAPHQL_RESPONSE_JSON


@lru_cache(_CACHE_SIZE)
def prefers_event_stream(header: str | None) -> bool:
    """Whether the client would rather have every operation as GraphQL over SSE than as JSON."""
    accepted = ranked(header, (*JSON_TYPES, Media.EVENT_STREAM))
    return bool(accepted) and accepted[0] is Media.EVENT_STREAM


@lru_cache(_CACHE_SIZE)
def subscription_stream(header: str | None) -> Media | None:
    """The stream the client accepts best for a subscription, if any."""
    accepted = ranked(header, STREAM_TYPES)
    return accepted[0] if accepted else None
