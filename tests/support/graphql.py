"""A small GraphQL-over-HTTP client for tests: real HTTP against the live test server."""

from __future__ import annotations

from typing import Any

import aiohttp


class GraphQLClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, key: str | None = None) -> None:
        self.session = session
        self.base_url = base_url
        self.key = key

    def with_key(self, key: str | None) -> GraphQLClient:
        return GraphQLClient(self.session, self.base_url, key)

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        all_headers = {"X-API-Key": self.key} if self.key else {}
        all_headers.update(headers or {})
        async with self.session.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=all_headers,
        ) as response:
            body: dict[str, Any] = await response.json()
            body["_status"] = response.status
            body["_request_id"] = response.headers.get("X-Request-Id")
            return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The data of a query that must succeed without top-level errors."""
        body = await self.post(query, variables)
        assert "errors" not in body, body.get("errors")
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, query: str, input: dict[str, Any]) -> dict[str, Any]:
        """The payload of a one-field mutation taking `$input` (top-level errors fail the test)."""
        data = await self.data(query, {"input": input})
        (payload,) = data.values()
        result: dict[str, Any] = payload
        return result


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]
