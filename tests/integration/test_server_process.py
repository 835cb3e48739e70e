"""The server as users run it: a real process that starts, answers and stops on SIGTERM."""

from __future__ import annotations

import aiohttp

from tests.support.process import server_process


async def test_the_server_process_answers_and_exits_cleanly_on_sigterm(database_url: str) -> None:
    async with server_process(database_url) as server:
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/readyz") as response:
            assert response.status == 200
        code = await server.stop()
    assert code == 0
    assert not [r for r in server.log_records() if r.get("level") == "ERROR"]
