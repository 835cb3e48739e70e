"""The one way Modelgate LISTENs to PostgreSQL: a dedicated connection on one channel, kept for as
long as `run` runs. It reconnects when the connection drops or the server stops answering its
probe within `timeout`, and then says so (`on_reconnect`): notifications may have been missed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg


class Listener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        on_message: Callable[[str], None],
        on_reconnect: Callable[[], None],
        *,
        probe_every: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.on_message = on_message
        self.on_reconnect = on_reconnect
        self.probe_every = probe_every  # also the pause before connecting again
        self.timeout = timeout  # for connecting, and for every statement on the connection
        self.ready = asyncio.Event()  # set once listening (the first time)

    async def run(self) -> None:
        first = True
        while True:
            try:
                conn = await asyncpg.connect(self.dsn, timeout=self.timeout, command_timeout=self.timeout)
            except (OSError, TimeoutError, asyncpg.PostgresError):
                await asyncio.sleep(self.probe_every)
                continue
            try:
                await conn.add_listener(self.channel, self._notified)
                if not first:
                    self.on_reconnect()
                first = False
                self.ready.set()
                while True:
                    await asyncio.sleep(self.probe_every)
                    await conn.execute("SELECT 1")  # notices a dead connection or a silent server
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            finally:
                conn.terminate()  # not close(): that would wait for a server that may not answer
            await asyncio.sleep(self.probe_every)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.on_message(payload)
