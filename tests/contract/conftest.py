"""Peer clients against a live server: the pinned Node project in node/ (graphql-http's server
audit, a matrix of JavaScript clients) and Python's gql.

Where Node is missing the Node tests skip, saying so; under MODELGATE_REQUIRE_NODE=1 (set by
.ci/run, which installs the project with `npm ci`) they fail instead."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from app.services.demo import seed_demo
from tests.conftest import LiveServer

NODE_PROJECT = Path(__file__).resolve().parent / "node"
MINIMUM_NODE = 20


def _missing(reason: str) -> NoReturn:
    if os.environ.get("MODELGATE_REQUIRE_NODE"):
        pytest.fail(f"{reason} (MODELGATE_REQUIRE_NODE is set)")
    pytest.skip(f"Node client test skipped: {reason}")


@pytest.fixture(scope="session")
def node_project() -> Path:
    """Node 20+ and this project's pinned packages (`npm ci` when missing or older than the lock)."""
    node = shutil.which("node")
    if node is None:
        _missing("Node.js is not installed (`apt-get install -y nodejs npm`)")
    # Node and npm as found on PATH, like a developer's shell would.
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    if int(version.strip().lstrip("v").split(".")[0]) < MINIMUM_NODE:
        _missing(f"Node {version.strip()} is older than {MINIMUM_NODE}")
    installed = NODE_PROJECT / "node_modules" / ".package-lock.json"
    lock = NODE_PROJECT / "package-lock.json"
    with _one_installer():
        if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
            npm = shutil.which("npm")
            if npm is None:
                _missing("npm is not installed")
            command = [npm, "ci", "--prefix", str(NODE_PROJECT), "--no-audit", "--no-fund"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
            assert done.returncode == 0, (
                f"{' '.join(command)} failed (is the npm registry reachable?)\n{done.stderr}"
            )
    return NODE_PROJECT


@contextlib.contextmanager
def _one_installer() -> Iterator[None]:
    """The test processes (pytest-xdist's workers) share node_modules: one installs, the others
    wait for it and find it installed."""
    with open(NODE_PROJECT / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


async def run_node(script: str, *args: str, within: float = 60) -> tuple[int, str, str]:
    """Runs one of node/'s scripts; its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(NODE_PROJECT / script),
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def demo_key(server: LiveServer) -> str:
    """The key of `make run`'s demo project, whose default is the offline ECHO model."""
    keys = await seed_demo(server.services)
    assert keys is not None
    return keys.demo_project
