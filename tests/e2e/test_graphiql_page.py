"""GraphiQL at `/graphql` in headless Chromium with every request that leaves the machine blocked:
the page, GraphiQL, React and the explorer come from this server, the key typed into the page goes
out as X-API-Key and in connection_init, and a query and a chatStream subscription show their results."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.services.demo import DemoKeys, seed_demo
from tests.conftest import LiveServer
from tests.e2e.conftest import DESKTOP, PageLog, watch

pytestmark = pytest.mark.browser

SCREENSHOT = Path("/tmp/graphiql-offline.png")
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
QUERY = "query Models { availableModels(modelGroup: CHAT) { name provider } }"
SUBSCRIPTION = """subscription Chat {
  chatStream(input: {messages: [{role: USER, content: "offline graphiql works"}]}) {
    __typename
    ... on ChatStreamDelta { text }
    ... on ChatStreamEnd { finishReason usage { totalTokens } }
    ... on ChatStreamError { code message }
  }
}"""


@pytest.fixture
async def keys(server: LiveServer) -> DemoKeys:
    seeded = await seed_demo(server.services)
    assert seeded is not None
    return seeded


@pytest.fixture
async def offline(browser: Any) -> AsyncIterator[tuple[Any, list[str]]]:
    """A browser profile in which every request to a host other than loopback is aborted (and noted)."""
    context = await browser.new_context(viewport=DESKTOP)
    outside: list[str] = []

    async def route(route: Any) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", route)
    try:
        yield context, outside
    finally:
        await context.close()


async def set_editor(page: Any, text: str) -> None:
    # GraphiQL 3's editors are CodeMirror 5 instances, reachable from their wrapper element.
    await page.evaluate(
        "text => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(text)", text
    )
    # GraphiQL parses the editor 100 ms after a change (debounced); it picks the transport (HTTP or
    # the socket) from that parse, as it would after a person's last keystroke.
    await page.wait_for_timeout(500)


async def response_text(page: Any) -> str:
    text: str = await page.evaluate(
        "() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
    )
    return text


async def test_graphiql_runs_a_query_and_a_subscription_with_no_network(
    server: LiveServer, keys: DemoKeys, offline: tuple[Any, list[str]]
) -> None:
    from playwright.async_api import expect

    context, outside = offline
    page = await context.new_page()
    log: PageLog = watch(page)
    posts: list[tuple[str, str | None]] = []  # (operation, X-API-Key)
    page.on(
        "request",
        lambda request: (
            posts.append((json.loads(request.post_data)["operationName"], request.headers.get("x-api-key")))
            if request.method == "POST"
            else None
        ),
    )

    response = await page.goto(f"{server.url}/graphql")
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "font-src 'self';" in policy

    await page.get_by_label("API key").fill(keys.demo_project)
    await page.get_by_role("button", name="Use key").click()
    await expect(page.locator("#mg-key-status")).to_contain_text("Key set for this tab")
    assert await page.evaluate("() => sessionStorage.getItem('modelgate.apiKey')") == keys.demo_project

    await expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible(timeout=15_000)
    await set_editor(page, QUERY)
    await page.locator(".graphiql-execute-button").click()
    await expect(page.locator(".graphiql-response")).to_contain_text("Demo echo", timeout=15_000)
    assert json.loads(await response_text(page))["data"]["availableModels"]

    await set_editor(page, SUBSCRIPTION)
    await page.locator(".graphiql-execute-button").click()
    await expect(page.locator(".graphiql-response")).to_contain_text("ChatStreamEnd", timeout=15_000)
    final = json.loads(await response_text(page))["data"]["chatStream"]
    assert final["finishReason"] == "STOP"
    assert final["usage"]["totalTokens"] > 0
    await page.screenshot(path=str(SCREENSHOT))

    # The subscription ran over graphql-transport-ws with the key in connection_init, and streamed.
    init = [f.message for f in log.frames if f.direction == "sent" and f.message["type"] == "connection_init"]
    assert [message["payload"] for message in init] == [{"apiKey": keys.demo_project}]
    deltas = [
        f.message["payload"]["data"]["chatStream"]["text"]
        for f in log.frames
        if f.direction == "received"
        and f.message["type"] == "next"
        and f.message["payload"]["data"]["chatStream"]["__typename"] == "ChatStreamDelta"
    ]
    assert len(deltas) > 1
    assert "".join(deltas).endswith("offline graphiql works")
    # Over HTTP: the schema, fetched again once the key was set, and the query carried the key.
    assert ("IntrospectionQuery", keys.demo_project) in posts
    assert [key for operation, key in posts if operation == "Models"] == [keys.demo_project]

    # Nothing tried to leave the machine, and nothing was refused by the page's own policy.
    assert outside == []
    server_host = urlsplit(server.url).netloc
    assert {urlsplit(url).netloc for url in log.requests + log.sockets} == {server_host}
    assert log.problems == []
