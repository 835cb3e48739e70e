"""A small aiohttp app served on loopback for the length of a test block (fake upstreams, sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def loopback_app(app: web.Application) -> AsyncIterator[str]:
    """Serves `app` on 127.0.0.1 at a free port until the block ends; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
