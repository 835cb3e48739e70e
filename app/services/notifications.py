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

import orjson

from app.db import Database
from app.listener import Listener

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
        self._listener = Listener(
            dsn, CHANNEL, self._on_message, self._on_reconnect, probe_every=reconnect_delay, timeout=timeout
        )
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, topic: str, handler: Handler) -> None:
        """`handler(key)` runs on every change of `topic`; `key` None means "everything"."""
        self._handlers[topic].append(handler)

    async def publish(self, topic: str, key: str | None) -> None:
        """Tells every instance (this one included) that `key` of `topic` changed; None: all of it."""
        self._dispatch(topic, key)  # this instance at once, the others through NOTIFY
        await self.db.notify(CHANNEL, orjson.dumps({"topic": topic, "key": key}).decode())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listener.run(), name="notifications")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listener.ready.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _dispatch(self, topic: str, key: str | None) -> None:
        for handler in self._handlers.get(topic, ()):
            handler(key)

    def _on_message(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            self._dispatch(str(message["topic"]), message.get("key"))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed change notification")

    def _on_reconnect(self) -> None:
        """Changes may have been missed while the connection was down: everything goes."""
        for topic in list(self._handlers):
            self._dispatch(topic, None)
