"""Tripping a model in the demo (`python -m app serve` as a subprocess, as `make run` starts it):
the steps of README "Alerts" send an email to a loopback SMTP server and a signed webhook to
`python -m app webhook-receiver`, which verifies it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.alert_receivers import ReceivedMail, eventually, smtp_server
from tests.support.graphql import GraphQLClient
from tests.support.process import REPO, free_port, server_process

SECRET = "whsec_demo_0123456789abcdefghijk"
MODELS = "{ availableModels(modelGroup: CHAT) { id name } }"
WEBHOOK = """mutation($org: ID!, $url: String!, $secret: String!) {
  webhookCreate(input: {organizationId: $org, url: $url, secret: $secret}) {
    userErrors { code message } } }"""
FAIL_OVER = """mutation($id: ID!, $fallback: ID!) {
  userModelUpdate(input: {id: $id, providerSettings: {failWith: "UPSTREAM_ERROR"},
    fallbacks: [{modelId: $fallback, failedRequests: 2, notifyEmails: ["ops@demo.example"]}]}) {
    userErrors { code field message } } }"""
VIEWER = "{ viewer { organization { id } } }"
CHAT = """mutation { chat(input: {messages: [{role: USER, content: "Hello"}]}) {
  servedBy { name } userErrors { code message } } }"""


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """`python -m app webhook-receiver` on a free port; the lines it prints, parsed."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "webhook-receiver",
        "--port",
        str(port),
        "--secret",
        SECRET,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), 30)
    assert first.decode().startswith("Webhook receiver: ")
    lines: list[dict[str, Any]] = []

    async def read() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            lines.append(orjson.loads(line))

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.5)  # the banner is printed before the port is bound
    try:
        yield f"http://127.0.0.1:{port}/modelgate", lines
    finally:
        process.terminate()
        await process.wait()
        await reader


async def test_a_trip_in_the_demo_sends_an_email_and_a_verified_webhook(
    database_url: str, tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    with smtp_server() as (smtp_url, inbox):
        env = {
            "MODELGATE_DATA_DIR": str(tmp_path),
            "MODELGATE_SMTP_URL": smtp_url,
            "MODELGATE_ALLOW_PRIVATE_WEBHOOKS": "true",
            "MODELGATE_ALERT_POLL_INTERVAL": "0.1",
        }
        async with server_process(database_url, env=env) as server, aiohttp.ClientSession() as http:
            keys = orjson.loads((tmp_path / "demo-keys.json").read_bytes())
            admin = GraphQLClient(http, server.url, keys["demo"])
            project = GraphQLClient(http, server.url, keys["project"])
            models = {m["name"]: m["id"] for m in (await project.data(MODELS))["availableModels"]}
            organization = (await admin.data(VIEWER))["viewer"]["organization"]["id"]
            created = await admin.data(WEBHOOK, {"org": organization, "url": url, "secret": SECRET})
            assert created["webhookCreate"]["userErrors"] == []
            updated = await admin.data(
                FAIL_OVER, {"id": models["Demo echo"], "fallback": models["Echo (demo)"]}
            )
            assert updated["userModelUpdate"]["userErrors"] == []

            for _ in range(2):
                chat = (await project.data(CHAT))["chat"]
                assert (chat["userErrors"], chat["servedBy"]["name"]) == ([], "Echo (demo)")

            def delivered() -> bool:
                return len(inbox) == 1 and len(received) == 1

            await eventually(delivered, within=20, what="the email and the webhook")
    mail: ReceivedMail = inbox[0]
    assert mail.recipients == ["ops@demo.example"]
    assert "Model Demo echo is tripped" in mail.message["Subject"]
    assert "fallbacks: Echo (demo)" in mail.text
    (hook,) = received
    assert hook["verified"] is True
    assert hook["type"] == "MODEL_TRIPPED"
    assert "Demo echo" in hook["subject"]
