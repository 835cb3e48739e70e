"""The JavaScript GraphQL clients people use, unchanged, against a live server (node/clients.mjs):
each runs a query, the `chat` mutation and a `chatStream` subscription on the offline ECHO model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.contract.conftest import run_node

CLIENTS = [
    "apollo-client",  # HttpLink, and GraphQLWsLink (graphql-transport-ws) for subscriptions
    "apollo-client-multipart",  # HttpLink alone: multipart subscriptions
    "apollo-client-persisted",  # PersistedQueryLink (automatic persisted queries) before both links
    "urql",  # default exchanges, and subscriptionExchange over graphql-ws
    "urql-fetch-subscriptions",  # fetchExchange running subscriptions itself (SSE)
    "graphql-sse",  # distinct connections mode
    "graphql-sse-single-connection",
    "graphql-ws",
    "subscriptions-transport-ws",  # the legacy graphql-ws protocol
]


@pytest.mark.slow
@pytest.mark.parametrize("client", CLIENTS)
async def test_client_runs_a_query_a_mutation_and_a_subscription(
    server: LiveServer, demo_key: str, node_project: Path, client: str
) -> None:
    status, out, err = await run_node("clients.mjs", client, f"{server.url}/graphql", demo_key)
    assert status == 0, err
    result = json.loads(out)
    assert result["query"]["viewer"]["project"]["name"] == "Demo project"  # (Apollo and urql add __typename)
    chat = result["mutation"]["chat"]
    assert (chat["message"]["content"], chat["userErrors"]) == (f"Echo: Hello from {client}", [])
    events = result["stream"]
    kinds = [event["__typename"] for event in events]
    assert (kinds[0], kinds[-1]) == ("ChatStreamStart", "ChatStreamEnd"), kinds
    assert "".join(event.get("text", "") for event in events) == f"Echo: Stream to {client}"
    assert events[-1]["finishReason"] == "STOP"


async def test_apollo_client_runs_automatic_persisted_queries(
    server: LiveServer, demo_key: str, node_project: Path
) -> None:
    """The first hashed query is not found and sent again with its text; the second goes by its
    hash alone over GET; the mutation, by hash then with its text over POST."""
    status, out, err = await run_node(
        "clients.mjs", "apollo-client-persisted", f"{server.url}/graphql", demo_key
    )
    assert status == 0, err
    result = json.loads(out)
    assert result["query"]["viewer"]["project"]["name"] == "Demo project"
    assert result["mutation"]["chat"]["message"]["content"] == "Echo: Hello from apollo-client-persisted"
    assert [(w["method"], w["query"], w["status"], w["notFound"]) for w in result["wire"]] == [
        ("GET", False, 200, True),
        ("POST", True, 200, False),
        ("GET", False, 200, False),
        ("POST", False, 200, True),
        ("POST", True, 200, False),
    ]
