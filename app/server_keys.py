"""Typed keys for values kept on the aiohttp application and on requests."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from app.api.websocket_handlers import LegacyWSHandler, TransportWSHandler
    from app.config import Settings
    from app.services.container import Services

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
SERVICES: web.AppKey[Services] = web.AppKey("services")
# Open GraphQL WebSockets' handlers, which close them on shutdown (aiohttp would otherwise wait for
# each to end).
WEBSOCKETS: web.AppKey[weakref.WeakSet[TransportWSHandler | LegacyWSHandler]] = web.AppKey("websockets")
REQUEST_ID = web.RequestKey("request_id", str)
# For the access log: the GraphQL operation's name and who called (a key prefix, never a secret).
OPERATION_NAME = web.RequestKey("operation_name", str)
CALLER = web.RequestKey("caller", str)
