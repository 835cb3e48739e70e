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

WEB_DIR = Path(__file__).parent
ASSETS = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# The GraphiQL link sits between these markers in index.html and is cut when GraphiQL is off.
_GRAPHIQL_LINK = re.compile(r"<!-- graphiql -->.*?<!-- /graphiql -->", re.DOTALL)
# A Host header that is safe to repeat in the policy (aiohttp already refuses line breaks).
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def content_security_policy(host: str) -> str:
    # CSP level 3 lets 'self' cover ws/wss of the same host, but older browsers need them named.
    sockets = f" ws://{host} wss://{host}" if _SAFE_HOST.match(host) else ""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src 'self'{sockets}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _common_headers() -> dict[str, str]:
    return {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # Small files that change with each release: revalidate instead of serving stale code.
        "Cache-Control": "no-cache",
    }


def add_routes(app: web.Application, settings: Settings) -> None:
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    if not settings.graphiql:
        html = _GRAPHIQL_LINK.sub("", html)
    assets = {name: (WEB_DIR / name).read_bytes() for name in ASSETS}

    async def index(request: web.Request) -> web.Response:
        headers = _common_headers()
        headers["Content-Security-Policy"] = content_security_policy(request.host)
        return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets:
            return web.Response(status=404, text="Not Found")
        headers = _common_headers()
        headers["Content-Type"] = ASSETS[name]
        return web.Response(body=assets[name], headers=headers)

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", asset)
