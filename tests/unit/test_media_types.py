"""Accept negotiation for GraphQL over HTTP: q-values, order, wildcards and stream types."""

from __future__ import annotations

import pytest

from app.api.media_types import Media, prefers_event_stream, response_type, subscription_stream

GRJ = Media.GRAPHQL_RESPONSE_JSON
APOLLO_SUBSCRIPTION = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0",application/json'


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, Media.JSON),
        ("", Media.JSON),  # as if missing
        ("text/plain", GRJ),  # names no JSON type: the spec's default
        ("*/*", Media.JSON),
        ("application/*", Media.JSON),
        ("application/graphql-response+json, */*;q=0.1", GRJ),
        ("application/json;q=0.9, application/graphql-response+json", GRJ),
        ("application/json;q=oops, application/graphql-response+json;q=0.1", GRJ),  # a bad q is 0
        ("APPLICATION/JSON", Media.JSON),
        ("application/json;q=0", GRJ),  # refused: the default
        ("*/*;q=0.5, application/graphql-response+json;q=0", Media.JSON),  # most specific range wins
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", Media.JSON),  # a browser
    ],
)
def test_response_type(accept: str | None, expected: Media) -> None:
    assert response_type(accept) is expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/event-stream", True),
        ("text/event-stream, application/json", True),
        ("application/json, text/event-stream", False),
        ("application/json;q=0.5, text/event-stream", True),
        ("*/*", False),  # a wildcard says nothing about understanding a stream
        ("text/*", False),
        (None, False),
    ],
)
def test_prefers_event_stream(accept: str | None, expected: bool) -> None:
    assert prefers_event_stream(accept) is expected


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (APOLLO_SUBSCRIPTION, Media.MULTIPART_SUBSCRIPTION),
        (
            "multipart/mixed;boundary=graphql;subscriptionSpec=1.0,application/json",
            Media.MULTIPART_SUBSCRIPTION,
        ),
        ("multipart/mixed;subscriptionSpec=1.0", Media.MULTIPART_SUBSCRIPTION),
        ("multipart/mixed", None),  # no subscriptionSpec: incremental delivery, not subscriptions
        ('multipart/mixed;boundary="-";subscriptionSpec=1.0', None),  # Strawberry writes boundary=graphql
        ("text/event-stream, multipart/mixed", Media.EVENT_STREAM),  # urql's
        (f"text/event-stream;q=0.5, {APOLLO_SUBSCRIPTION}", Media.MULTIPART_SUBSCRIPTION),
        ("application/json", None),
        ("*/*", None),
    ],
)
def test_subscription_stream(accept: str, expected: Media | None) -> None:
    assert subscription_stream(accept) is expected
