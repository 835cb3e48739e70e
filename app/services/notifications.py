"""Cross-instance cache invalidation over PostgreSQL LISTEN/NOTIFY.

Every instance keeps one listening connection on a single channel. A change publishes
`{"topic": …, "key": …}`; each instance calls the handlers registered for that topic. If the
listening connection drops, or the server stops answering its probe within `timeout`, it
reconnects and tells every handler to drop everything (`key` None), since notifications may have
been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable

import asyncpg
import orjson

from app.db import Database

log = logging.getLogger(__name__)

CHANNEL = "modelgate_changes"
# Topics. Catalog: models, connections and system prompts (any change may alter what a call uses).
CATALOG_TOPIC = "catalog"
API_KEYS_TOPIC = "api_key"
# Organizations and projects, which the gateway keeps in memory.
TENANCY_TOPIC = "tenancy"
# A model started failing, tripped or was reset (key: the model id).
MODEL_HEALTH_TOPIC = "model_health"
Handler = Callable[[str | None], None]


class Notifications:
    def __init__(self, db: Database, dsn: str, *, reconnect_delay: float = 1.0, timeout: float = 5.0) -> None:
        self.db = db
        self.dsn = dsn
        self.reconnect_delay = reconnect_delay
        self.timeout = timeout  # for connecting, and for every statement on the connection
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def subscribe(self, topic: str, handler: Handler) -> None:
        """`handler(key)` runs on every change of `topic`; `key` None means "everything"."""
        self._handlers[topic].append(handler)

    async def publish(self, topic: str, key: str | None) -> None:
        """Tells every instance (this one included) that `key` of `topic` changed; None: all of it."""
        self._dispatch(topic, key)  # this instance at once, the others through NOTIFY
        await self.db.notify(CHANNEL, orjson.dumps({"topic": topic, "key": key}).decode())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="notifications")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _dispatch(self, topic: str, key: str | None) -> None:
        for handler in self._handlers.get(topic, ()):
            handler(key)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            self._dispatch(str(message["topic"]), message.get("key"))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed change notification")

    async def _listen_forever(self) -> None:
        first = True
        while True:
            try:
                conn = await asyncpg.connect(self.dsn, timeout=self.timeout, command_timeout=self.timeout)
            except (OSError, TimeoutError, asyncpg.PostgresError):
                await asyncio.sleep(self.reconnect_delay)
                continue
            try:
                await conn.add_listener(CHANNEL, self._on_notify)
                if not first:
                    for topic in list(self._handlers):
                        self._dispatch(topic, None)
                first = False
                self._ready.set()
                while True:
                    await asyncio.sleep(self.reconnect_delay)
                    await conn.execute("SELECT 1")  # notices a dead connection or a silent server
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            finally:
                conn.terminate()  # not close(): that would wait for a server that may not answer
            await asyncio.sleep(self.reconnect_delay)
