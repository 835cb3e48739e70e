"""The chat page at `/` in headless Chromium, against a live server with the demo organization:
connect with the demo project key, pick a model, watch the answer stream in, stop a stream, see
fallbacks and errors, and survive a dropped socket."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.e2e.conftest import DESKTOP, PHONE, Demo, PageLog, screenshot_path, seed_browser_demo, watch
from tests.support.catalog import uuid_of
from tests.support.gateway import usage_rows
from tests.support.graphql import GraphQLClient

pytestmark = pytest.mark.browser

LONG_MESSAGE = " ".join(f"word{i}" for i in range(40))  # 41 words back: 12 s at 300 ms a word
USAGE_LINE = re.compile(r"^\d+ tokens \(\d+ in, \d+ out\) · 0 credits$")  # ECHO costs nothing


@pytest.fixture
async def demo(server: LiveServer, gql: GraphQLClient) -> Demo:
    return await seed_browser_demo(server, gql)


@pytest.fixture
async def context(browser: Any, server: LiveServer) -> AsyncIterator[Any]:
    """A fresh browser profile, closed before the server stops (an open page would keep its
    WebSocket, and the server's shutdown would wait for it)."""
    fresh = await browser.new_context(viewport=DESKTOP)
    try:
        yield fresh
    finally:
        await fresh.close()


class ChatPage:
    """The page, driven the way a person would: labels, buttons and the keyboard."""

    def __init__(self, page: Any, expect: Any, log: PageLog) -> None:
        self.page = page
        self.expect = expect
        self.log = log

    @classmethod
    async def open(cls, context: Any, server: LiveServer) -> ChatPage:
        from playwright.async_api import expect

        expect.set_options(timeout=10_000)
        page = await context.new_page()
        log = watch(page)
        response = await page.goto(f"{server.url}/")
        assert response.status == 200
        assert "default-src 'none'" in response.headers["content-security-policy"]
        return cls(page, expect, log)

    async def connect(self, key: str) -> None:
        await self.page.get_by_label("API key").fill(key)
        await self.page.get_by_role("button", name="Connect").click()
        await self.expect(self.page.locator("#connection")).to_have_text("Connected")

    async def pick_model(self, label: str) -> None:
        await self.page.get_by_label("Model", exact=True).select_option(label=label)

    async def send(self, text: str) -> Any:
        """Types `text`, presses Enter; the new answer's list item."""
        box = self.page.get_by_label("Message", exact=True)
        await box.fill(text)
        await box.press("Enter")
        return self.page.locator(".message.assistant").last

    async def watch_answer(self, answer: Any, within: float = 15) -> list[str]:
        """Every distinct text the answer showed until its usage line appeared."""
        seen: list[str] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            text = await answer.locator(".content").text_content()
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            if await answer.locator(".usage").count():
                break
            await asyncio.sleep(0.005)
        seen.append(await answer.locator(".content").text_content())
        return [text for i, text in enumerate(seen) if i == 0 or text != seen[i - 1]]

    async def words_shown(self, answer: Any) -> int:
        return len((await answer.locator(".content").text_content()).split())

    async def until_words(self, answer: Any, count: int, within: float = 10) -> None:
        """Waits until the answer shows `count` words (polling closely: a word may take 40 ms)."""
        for _ in range(int(within / 0.01)):
            if await self.words_shown(answer) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the answer did not reach {count} words within {within} s")

    def subscriptions(self) -> list[dict[str, Any]]:
        """The chatStream inputs the page sent, in order."""
        return [f.message["payload"]["variables"]["input"] for f in self.log.sent("subscribe")]

    def assert_clean(self, server: LiveServer) -> None:
        """Nothing went anywhere but this server, and nothing broke (CSP violations are console errors)."""
        origin = server.url
        assert all(url.startswith(origin) for url in self.log.requests), self.log.requests
        ws_origin = origin.replace("http", "ws", 1)
        assert self.log.sockets
        assert all(url == f"{ws_origin}/graphql" for url in self.log.sockets)
        assert self.log.problems == []


async def test_chat_streams_the_answer_token_by_token(context: Any, server: LiveServer, demo: Demo) -> None:
    chat = await ChatPage.open(context, server)
    page, expect = chat.page, chat.expect

    await page.get_by_label("API key").fill("mg_nope_notakey")
    await page.get_by_role("button", name="Connect").click()
    await expect(page.locator("#connection")).to_have_text("The key was not accepted.")
    await page.screenshot(path=screenshot_path("chat-start"))

    await chat.connect(demo.keys.demo_project)
    assert await page.evaluate("sessionStorage.getItem('modelgate.apiKey')") == demo.keys.demo_project
    assert demo.keys.demo_project not in page.url
    await expect(page.get_by_label("Project")).to_have_value(demo.project_gid)
    await expect(page.get_by_label("Project")).to_be_disabled()  # the key is bound to it

    # The picker: grouped by provider, the project default chosen, lifecycle and tier badges.
    groups = await page.locator("#model optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert {"Echo (offline demo)", "OpenAI", "Anthropic"} <= set(groups)
    echo_group = page.locator('#model optgroup[label="Echo (offline demo)"] option')
    assert "Demo echo (project default)" in await echo_group.all_text_contents()
    await expect(page.get_by_label("Model", exact=True)).to_have_value(demo.models["Demo echo"])
    old = page.locator("#model option", has_text="Old echo")
    assert re.search(r"deprecated, end of life \d{4}-\d{2}-\d{2} → Demo echo", await old.text_content())
    await chat.pick_model("GPT-4.1 · premium")
    await expect(page.locator("#model-info .badge")).to_have_text(["Premium"])
    await page.get_by_label("Model", exact=True).select_option(demo.models["Old echo"])
    await expect(page.locator("#model-info")).to_contain_text(re.compile(r"Deprecated End of life on \d{4}-"))
    await expect(page.locator("#model-info")).to_contain_text("Use Demo echo instead. Old echo retires soon.")
    await chat.pick_model("Demo echo (project default)")

    # Demo echo sends a word every 40 ms: the page shows each one as it comes.
    message = "Streaming is nicer when you can watch every single word arrive on its own"
    answer = await chat.send(message)
    states = await chat.watch_answer(answer)
    final = f"Echo: {message}"
    assert states[-1] == final
    assert len(states) >= 5, states  # several intermediate states, not just the end
    assert all(final.startswith(state) for state in states), states
    assert [len(s.split()) for s in states] == sorted({len(s.split()) for s in states})
    await expect(answer.locator(".usage")).to_have_text(USAGE_LINE)
    await expect(answer.locator(".role")).to_have_text("Assistant · Demo echo")

    # Multi-turn, sent with Enter: the history goes with the next message.
    second = await chat.send("And now a second question")
    await expect(second.locator(".usage")).to_have_text(USAGE_LINE)
    await expect(second.locator(".content")).to_have_text("Echo: And now a second question")
    assert chat.subscriptions()[1]["messages"] == [
        {"role": "USER", "content": message},
        {"role": "ASSISTANT", "content": final},
        {"role": "USER", "content": "And now a second question"},
    ]
    assert chat.subscriptions()[1]["model"] == demo.models["Demo echo"]

    # Shift+Enter is a new line, not a send.
    box = page.get_by_label("Message", exact=True)
    await box.fill("first line")
    await box.press("Shift+Enter")
    await box.press_sequentially("second line")
    await expect(box).to_have_value("first line\nsecond line")
    await expect(page.locator(".message.assistant")).to_have_count(2)
    await box.fill("")

    await page.screenshot(path=screenshot_path("chat-desktop"))
    # At phone width: one column, no sideways scrolling, and the message box stays on screen.
    await page.set_viewport_size(PHONE)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.screenshot(path=screenshot_path("chat-phone-top"))
    await second.scroll_into_view_if_needed()
    await expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
    await expect(second.locator(".usage")).to_be_in_viewport()
    await page.screenshot(path=screenshot_path("chat-phone"))

    # A reload keeps the key for this tab and connects again.
    await page.reload()
    await expect(page.locator("#connection")).to_have_text("Connected")
    chat.assert_clean(server)


async def test_stop_cancels_the_stream_on_the_server(context: Any, server: LiveServer, demo: Demo) -> None:
    chat = await ChatPage.open(context, server)
    page, expect = chat.page, chat.expect
    await chat.connect(demo.keys.demo_project)
    await chat.pick_model("Slow echo")

    answer = await chat.send(LONG_MESSAGE)
    await expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    await chat.until_words(answer, 3)
    await page.get_by_role("button", name="Stop").click()
    stopped_at = asyncio.get_running_loop().time()
    shown = await answer.locator(".content").text_content()
    await expect(answer.locator(".note")).to_have_text("Stopped.")
    await expect(page.get_by_role("button", name="Stop")).to_be_disabled()

    # The page told the server: `complete` for the running subscription.
    (subscribe,) = chat.log.sent("subscribe")
    assert [f.message for f in chat.log.sent("complete")] == [
        {"id": subscribe.message["id"], "type": "complete"}
    ]

    # The server closed the stream: the call is metered as CANCELLED with only the words sent, and
    # nothing more arrives (at 300 ms a word, 1.5 s would be five more).
    slow_id = uuid_of(demo.models["Slow echo"])
    cancelled: list[dict[str, Any]] = []
    for _ in range(50):
        rows = await usage_rows(server.services)
        cancelled = [r for r in rows if r["requested_model_id"] == slow_id]
        if cancelled:
            break
        await asyncio.sleep(0.1)
    assert [r["status"] for r in cancelled] == ["CANCELLED"]
    assert 3 <= cancelled[0]["output_tokens"] < 20
    await asyncio.sleep(max(0.0, stopped_at + 1.5 - asyncio.get_running_loop().time()))
    assert await answer.locator(".content").text_content() == shown
    same_id = [f for f in chat.log.frames if f.message.get("id") == subscribe.message["id"]]
    assert [f for f in same_id if f.direction == "received" and f.at > stopped_at + 0.5] == []

    # The same socket serves the next question, and the stopped words are part of the history.
    second = await chat.send("after the stop")
    await expect(second.locator(".usage")).to_have_text(USAGE_LINE, timeout=15_000)
    assert chat.subscriptions()[1]["messages"][1] == {"role": "ASSISTANT", "content": shown}
    assert len(chat.log.sockets) == 1
    chat.assert_clean(server)


async def test_fallback_reset_and_errors_are_shown(context: Any, server: LiveServer, demo: Demo) -> None:
    chat = await ChatPage.open(context, server)
    page, expect = chat.page, chat.expect
    await chat.connect(demo.keys.demo_project)

    # Flaky echo fails after three words; its fallback starts over: the partial answer is replaced.
    await chat.pick_model("Flaky echo")
    answer = await chat.send("one two three four five six")
    await expect(answer.locator(".usage")).to_be_visible()
    await expect(answer.locator(".content")).to_have_text("Echo: one two three four five six")
    await expect(answer.locator(".note")).to_contain_text("Switched to Demo echo after an error")
    await expect(answer.locator(".role")).to_have_text("Assistant · Demo echo")

    # Broken echo always fails: a readable error, and the question goes back into the box.
    await chat.pick_model("Broken echo")
    failed = await chat.send("will this work?")
    await expect(failed.get_by_role("alert")).to_contain_text("PROVIDER_ERROR")
    await expect(page.get_by_label("Message", exact=True)).to_have_value("will this work?")
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    await page.screenshot(path=screenshot_path("chat-fallback-and-error"))
    chat.assert_clean(server)


async def test_reconnects_after_a_dropped_socket(context: Any, server: LiveServer, demo: Demo) -> None:
    chat = await ChatPage.open(context, server)
    page, expect = chat.page, chat.expect
    routes: list[Any] = []

    def through(route: Any) -> None:  # passes the page's socket through, so the test can cut it
        route.connect_to_server()
        routes.append(route)

    await page.route_web_socket(re.compile(r"/graphql$"), through)
    await chat.connect(demo.keys.demo_project)

    # Cut the socket mid-answer: the page reconnects with backoff and asks again.
    answer = await chat.send("please survive a dropped connection in the middle of this answer")
    await chat.until_words(answer, 3)
    await routes[0].close(code=1012, reason="Service Restart")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    await expect(page.locator("#connection")).to_have_text("Connected")
    await expect(answer.locator(".usage")).to_be_visible()
    await expect(answer.locator(".content")).to_have_text(
        "Echo: please survive a dropped connection in the middle of this answer"
    )
    await expect(answer.locator(".note")).to_have_text("The connection dropped; the question was sent again.")
    assert len(routes) == 2

    # An idle socket that drops comes back too, and the next message goes through it.
    await routes[1].close(code=1001, reason="Going Away")
    await expect(page.locator("#connection")).to_have_text("Connected")
    after = await chat.send("still here?")
    await expect(after.locator(".content")).to_have_text("Echo: still here?")
    assert len(routes) == 3


async def test_the_client_speaks_graphql_transport_ws(context: Any, server: LiveServer, demo: Demo) -> None:
    """The page's hand-written client against a scripted server: the key in connection_init, a pong
    for a ping, and an `error` message ending the subscription with a readable message."""
    chat = await ChatPage.open(context, server)
    page, expect = chat.page, chat.expect
    heard: list[dict[str, Any]] = []

    def scripted(ws: Any) -> None:
        def reply(raw: str | bytes) -> None:
            message = json.loads(raw)
            heard.append(message)
            if message["type"] == "connection_init":
                ws.send(json.dumps({"type": "connection_ack"}))
                ws.send(json.dumps({"type": "ping"}))
            elif message["type"] == "subscribe":
                start = {"__typename": "ChatStreamStart", "requestId": "r1", "servedBy": {"name": "Scripted"}}
                delta = {"__typename": "ChatStreamDelta", "text": "Partial answer"}
                for event in (start, delta):
                    ws.send(
                        json.dumps(
                            {"id": message["id"], "type": "next", "payload": {"data": {"chatStream": event}}}
                        )
                    )
                ws.send(
                    json.dumps(
                        {"id": message["id"], "type": "error", "payload": [{"message": "Server trouble."}]}
                    )
                )

        ws.on_message(reply)

    await page.route_web_socket(re.compile(r"/graphql$"), scripted)
    await chat.connect(demo.keys.demo_project)
    answer = await chat.send("hello?")
    await expect(answer.get_by_role("alert")).to_have_text("Server trouble.")
    await expect(answer.locator(".content")).to_have_text("Partial answer")
    await expect(answer.locator(".role")).to_have_text("Assistant · Scripted")
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert heard[0] == {"type": "connection_init", "payload": {"apiKey": demo.keys.demo_project}}
    assert {"type": "pong"} in heard
    assert [m["type"] for m in heard if m["type"] != "pong"] == ["connection_init", "subscribe"]


async def last_line_box(locator: Any) -> dict[str, float]:
    """The box of the last rendered line of an element's text."""
    box: dict[str, float] = await locator.evaluate(
        """element => {
            const range = document.createRange();
            range.selectNodeContents(element);
            const lines = [...range.getClientRects()];
            const last = lines[lines.length - 1];
            return { top: last.top, bottom: last.bottom };
        }"""
    )
    return box


async def test_at_phone_width_the_streaming_answer_stays_above_the_message_box(
    browser: Any, server: LiveServer, demo: Demo
) -> None:
    phone = await browser.new_context(viewport=PHONE)
    try:
        chat = await ChatPage.open(phone, server)
        page, expect = chat.page, chat.expect
        toggle = page.locator("#settings-toggle")
        await chat.connect(demo.keys.demo_project)

        # Connected: the settings fold into one line that says the model and the connection.
        await expect(page.locator("#settings-body")).to_be_hidden()
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await expect(toggle).to_contain_text("Demo echo · Connected")
        assert (await page.locator("#settings").bounding_box())["height"] < 70

        # Fill the screen, then stream a long answer from Slow echo (a word every 300 ms), picked
        # in the settings opened for it and folded again.
        for _ in range(2):
            earlier = await chat.send(LONG_MESSAGE)
            await expect(earlier.locator(".usage")).to_be_visible(timeout=15_000)
        await toggle.click()
        await expect(page.get_by_label("Model", exact=True)).to_be_visible()
        await chat.pick_model("Slow echo")
        await toggle.click()
        await expect(page.locator("#settings-body")).to_be_hidden()
        await expect(toggle).to_contain_text("Slow echo · Connected")
        answer = await chat.send(LONG_MESSAGE)
        composer = await page.locator("#composer").bounding_box()
        transcript = await page.locator("#transcript").bounding_box()
        assert composer["y"] + composer["height"] <= PHONE["height"] + 1  # the message box is on screen
        for words in (8, 16, 24):
            await chat.until_words(answer, words)
            line = await last_line_box(answer.locator(".content"))
            # The newest words are on screen, above the message box, inside the transcript.
            assert transcript["y"] <= line["top"], (words, line, transcript)
            assert line["bottom"] <= composer["y"] + 1, (words, line, composer)
        await page.screenshot(path="/tmp/chat-phone.png")

        # A reader who scrolls up to read stays where they are while the answer goes on.
        await page.locator("#transcript").evaluate("list => { list.scrollTop = 0; }")
        await chat.until_words(answer, 28)
        assert await page.locator("#transcript").evaluate("list => list.scrollTop") == 0
        await page.get_by_role("button", name="Stop").click()
        chat.assert_clean(server)
    finally:
        await phone.close()


async def test_credits_read_as_a_person_would(context: Any, server: LiveServer) -> None:
    chat = await ChatPage.open(context, server)
    shown = await chat.page.evaluate(
        """async () => {
            const { creditsText } = await import('/static/chat.js');
            return ['0.000000', '0.000070', '0.009999', '0.01', '1.000000', '1.200000', '12.345', '1234.5']
                .map(creditsText);
        }"""
    )
    assert shown == [
        "0 credits",
        "< 0.01 credits",
        "< 0.01 credits",
        "0.01 credits",
        "1 credit",
        "1.2 credits",
        "12.35 credits",
        "1,234.5 credits",
    ]


async def test_a_tool_call_is_shown_run_and_answered(context: Any, server: LiveServer, demo: Demo) -> None:
    chat = await ChatPage.open(context, server)
    page, expect = chat.page, chat.expect
    await chat.connect(demo.keys.demo_project)
    # Demo echo, the project default, has the TOOLS capability.
    await page.get_by_label("Offer a demo tool").check()

    await chat.send("Europe/Paris")
    call = page.locator(".message.assistant figure.tool-call")
    await expect(call.locator("figcaption")).to_have_text("Tool call · get_time")
    await expect(call.locator("pre")).to_have_text('{\n  "zone": "Europe/Paris"\n}')  # pretty
    await expect(call.locator(".tool-result")).to_contain_text("Result: ")
    result = (await call.locator(".tool-result").text_content()).removeprefix("Result: ")

    # The page ran the demo tool and sent its result: the model's next answer quotes it.
    answer = page.locator(".message.assistant").last
    await expect(answer.locator(".content")).to_have_text(f"Echo: get_time answered {result}")
    await expect(answer.locator(".usage")).to_be_visible()
    second = chat.subscriptions()[-1]
    assert [m["role"] for m in second["messages"]] == ["USER", "ASSISTANT", "TOOL"]
    assert second["messages"][1]["toolCalls"][0]["name"] == "get_time"
    await page.screenshot(path=screenshot_path("chat-tool-call"))
    chat.assert_clean(server)
