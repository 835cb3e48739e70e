"""The client examples in README.md's "Chat page and client examples" section, run as written
against a live server with the demo organization (only the address and the key are the test's):
curl for a query and for the SSE stream, Python `gql` over HTTP and WebSocket, Node `graphql-ws`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.services.demo import seed_demo
from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Chat page and client examples"
README_URL = "127.0.0.1:8000"
NODE_EXAMPLE = ROOT / "examples" / "node"


def readme_commands() -> list[str]:
    """The shell commands of the section's bash blocks, continuation lines joined."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(SECTION) :]
    section = section[: section.find("\n## ", len(SECTION))]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.startswith(("#", "export ")):
                commands.append(command.strip())
    return commands


def readme_command(marker: str) -> str:
    found = [c for c in readme_commands() if marker in c]
    assert len(found) == 1, f"README.md should have one command with {marker!r}: {found}"
    return found[0]


async def shell(command: str, key: str = "", within: float = 60) -> tuple[int, str, str]:
    """Runs `command` with bash at the repository's root, $KEY set; exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        cwd=ROOT,
        env={**os.environ, "KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def aimed_at(command: str, server: LiveServer) -> str:
    """A README command, calling the test server instead of `make run`'s."""
    command = command.replace(f"http://{README_URL}", server.url)
    command = command.replace(f"ws://{README_URL}", server.url.replace("http", "ws", 1))
    return command.replace(".venv/bin/python", sys.executable)


async def run(command: str, server: LiveServer, key: str) -> str:
    """Runs a README command against the test server with `key` as $KEY; its stdout."""
    command = aimed_at(command, server)
    status, out, err = await shell(command, key)
    assert status == 0, f"{command}\nexit {status}\n{out}\n{err}"
    return out


@pytest.fixture
async def key(server: LiveServer) -> str:
    """The "Demo project key" of `make run`'s demo organization."""
    keys = await seed_demo(server.services)
    assert keys is not None
    return keys.demo_project


def needs(program: str) -> None:
    if shutil.which(program) is not None:
        return
    reason = f"README example: `{program}` is not installed"
    if program == "node" and os.environ.get("MODELGATE_REQUIRE_NODE"):
        pytest.fail(f"{reason} (MODELGATE_REQUIRE_NODE is set)")  # CI must run it, not skip it
    pytest.skip(reason)


async def test_curl_query(server: LiveServer, key: str) -> None:
    needs("curl")
    body = json.loads(await run(readme_command("availableModels"), server, key))
    assert "errors" not in body
    assert {
        "name": "Demo echo",
        "provider": "ECHO",
        "lifecycleState": "ACTIVE",
        "accessTier": "STANDARD",
    } in body["data"]["availableModels"]


async def test_curl_sse_stream(server: LiveServer, key: str) -> None:
    needs("curl")
    out = (await run(readme_command("text/event-stream"), server, key)).replace("\r\n", "\n")
    events = re.findall(r"^event: (\w+)\n(?:data: (.*)\n)?", out, re.MULTILINE)
    assert events[-1][0] == "complete"
    stream = [json.loads(data)["data"]["chatStream"] for name, data in events if name == "next"]
    assert stream[0] == {"__typename": "ChatStreamStart"}
    assert "".join(e.get("text", "") for e in stream) == "Echo: Stream this"
    assert stream[-1]["__typename"] == "ChatStreamEnd"
    assert stream[-1]["usage"]["totalTokens"] == 5


async def test_curl_embeddings_offline(server: LiveServer, key: str) -> None:
    needs("curl")
    body = json.loads(await run(readme_command("/v1/embeddings"), server, key))
    first, second = (item["embedding"] for item in body["data"])
    assert len(first) == len(second) == 8
    assert first != second
    assert body["object"] == "list"


async def test_python_gql_query_and_chat(server: LiveServer, key: str) -> None:
    out = await run(readme_command("examples/graphql_query.py"), server, key)
    lines = out.splitlines()
    assert lines[0] == "Demo / Demo project"
    assert "  ECHO               Demo echo (project default)" in lines
    assert "Demo echo: Echo: Hello from gql!" in lines
    assert re.fullmatch(r"\[7 tokens, [0-9.]+ credits\]", lines[-1])


async def test_python_gql_stream(server: LiveServer, key: str) -> None:
    out = await run(readme_command("examples/chat_stream.py"), server, key)
    assert out.splitlines() == ["Echo: Hello!", "[STOP, 3 tokens]"]


@pytest.fixture
async def node_example() -> None:
    """Node and the example's pinned packages (installed with the README's own command if missing)."""
    needs("node")
    installed = NODE_EXAMPLE / "node_modules" / ".package-lock.json"
    lock = NODE_EXAMPLE / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    needs("npm")
    command = readme_command("npm ci")
    status, _, err = await shell(command, within=300)
    assert status == 0, f"{command} failed (is the npm registry reachable?)\n{err}"


async def test_node_graphql_ws_stream(server: LiveServer, key: str, node_example: None) -> None:
    out = await run(readme_command("examples/node/chat_stream.mjs"), server, key)
    assert out.splitlines() == ["Demo echo: Echo: Hello!", "[STOP, 3 tokens, 0.000000 credits]"]


async def test_node_example_reports_a_refused_key(server: LiveServer, node_example: None) -> None:
    command = aimed_at(readme_command("examples/node/chat_stream.mjs"), server)
    status, _, err = await shell(command, "mg_000000000000_not-a-key")
    assert (status, err.strip()) == (1, "closed: 4403 Forbidden")
