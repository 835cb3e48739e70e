"""Browser fixtures: Debian's headless Chromium driven by Playwright, and a demo organization like the
one `make run` seeds, with a few more ECHO models to show every kind of stream."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.services.demo import DemoKeys, seed_demo
from tests.conftest import LiveServer
from tests.support.catalog import at, create_user_model
from tests.support.graphql import GraphQLClient

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# This machine's network is closed: without these, Chromium keeps trying to reach Google's hosts.
LAUNCH_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> Any:
    """Playwright's async API, or a skip that says what is missing."""
    if not CHROMIUM.exists():
        missing = (
            f"headless Chromium is not installed ({CHROMIUM} is missing); "
            "install it with `apt-get install -y chromium chromium-driver` (.ci/run does)"
        )
        if os.environ.get("MODELGATE_REQUIRE_BROWSER"):  # set by .ci/run, which installed it
            pytest.fail(missing)
        pytest.skip(f"browser test skipped: {missing}")
    return pytest.importorskip(
        "playwright.async_api", reason="browser test skipped: the playwright package is not installed"
    )


@dataclass
class Demo:
    keys: DemoKeys
    project_gid: str
    models: dict[str, str]  # name -> global id, of the models the tests use


DEMO_SETUP = """{ viewer { organization { id } project { id } }
  availableModels(modelGroup: CHAT) { id name kind provider } }"""


async def seed_browser_demo(server: LiveServer, client: GraphQLClient) -> Demo:
    """`make run`'s demo (catalog, organization, project whose default is "Demo echo", keys), plus:
    a slow ECHO model to press Stop on, one that fails over after three words, one that always
    fails, and a deprecated one."""
    keys = await seed_demo(server.services)
    assert keys is not None
    data = await client.with_key(keys.demo_project).data(DEMO_SETUP)
    organization_gid = data["viewer"]["organization"]["id"]
    project_gid = data["viewer"]["project"]["id"]
    models = {m["name"]: m for m in data["availableModels"]}
    echo = next(m for m in models.values() if m["provider"] == "ECHO" and m["kind"] == "SYSTEM")
    default = models["Demo echo"]["id"]
    admin = client.with_key(keys.demo_organization)

    async def add(name: str, **values: Any) -> str:
        model = await create_user_model(
            admin,
            organizationId=organization_gid,
            scope="PROJECT",
            projectId=project_gid,
            parentModelId=echo["id"],
            name=name,
            **values,
        )
        model_id: str = model["id"]
        return model_id

    ids = {
        "Demo echo": default,
        "Slow echo": await add("Slow echo", providerSettings={"wordDelayMs": "300"}),
        "Flaky echo": await add(
            "Flaky echo",
            providerSettings={"wordDelayMs": "30", "failWith": "OVERLOADED", "failAfterWords": "3"},
            fallbacks=[{"modelId": default, "failedRequests": 100}],
        ),
        "Broken echo": await add("Broken echo", providerSettings={"failWith": "BAD_REQUEST"}),
        "Old echo": await add(
            "Old echo",
            endOfLifeAt=at(30),
            replacementModelId=default,
            deprecationNotice="Old echo retires soon.",
        ),
    }
    return Demo(keys=keys, project_gid=project_gid, models=ids)


@dataclass
class Frame:
    at: float
    direction: str  # "sent" by the page or "received" from the server
    message: dict[str, Any]


@dataclass
class PageLog:
    """What the page did on the network and in its console."""

    requests: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def sent(self, kind: str) -> list[Frame]:
        return [f for f in self.frames if f.direction == "sent" and f.message.get("type") == kind]


def watch(page: Any) -> PageLog:
    log = PageLog()
    loop = asyncio.get_running_loop()

    def on_socket(ws: Any) -> None:
        log.sockets.append(ws.url)
        for event, direction in (("framesent", "sent"), ("framereceived", "received")):
            ws.on(
                event,
                lambda payload, d=direction: log.frames.append(Frame(loop.time(), d, json.loads(payload))),
            )

    page.on("request", lambda request: log.requests.append(request.url))
    page.on("websocket", on_socket)
    page.on("pageerror", lambda error: log.problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            log.problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    return log


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    playwright_api = require_chromium()
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{re.sub(r'[^a-z0-9-]', '-', name.lower())}.png"
