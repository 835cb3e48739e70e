"""The chat page at `/` and its three static files, served by the server itself.

The page makes no request anywhere but this server, and the Content-Security-Policy says so: scripts,
styles and images from 'self' only, no inline code, and network access only to this host (HTTP for
queries, ws/wss for the chatStream subscription).
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from app.config import Settings
from app.web.graphiql_page import add_graphiql_routes
from app.web.policy import common_headers, content_security_policy

WEB_DIR = Path(__file__).parent
ASSETS = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# The GraphiQL link sits between these markers in index.html and is cut when GraphiQL is off.
_GRAPHIQL_LINK = re.compile(r"<!-- graphiql -->.*?<!-- /graphiql -->", re.DOTALL)


def add_routes(app: web.Application, settings: Settings) -> None:
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    if not settings.graphiql:
        html = _GRAPHIQL_LINK.sub("", html)
    assets = {name: (WEB_DIR / name).read_bytes() for name in ASSETS}

    async def index(request: web.Request) -> web.Response:
        headers = common_headers()
        headers["Content-Security-Policy"] = content_security_policy(request.host)
        return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets:
            return web.Response(status=404, text="Not Found")
        headers = common_headers()
        headers["Content-Type"] = ASSETS[name]
        return web.Response(body=assets[name], headers=headers)

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", asset)
    if settings.graphiql:
        add_graphiql_routes(app)
