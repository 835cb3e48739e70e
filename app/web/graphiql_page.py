"""GraphiQL at `/graphql` for browsers, served entirely by Modelgate: the pinned GraphiQL, React and
explorer-plugin bundles in `app/web/graphiql/` (versions and how to update them in its README), the
page around them and its API-key field. No CDN, so it works offline, under the chat page's self-only
Content-Security-Policy (plus `font-src 'self'` for GraphiQL's fonts).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from app.web.policy import common_headers, content_security_policy

GRAPHIQL_DIR = Path(__file__).parent / "graphiql"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


class GraphiqlAsset:
    def __init__(self, path: Path) -> None:
        self.body = path.read_bytes()
        self.content_type = CONTENT_TYPES[path.suffix]
        # The bundles are megabytes: a browser revalidates them and gets 304 while they are unchanged.
        self.etag = f'"{hashlib.sha256(self.body).hexdigest()[:32]}"'


def _load_assets() -> dict[str, GraphiqlAsset]:
    return {
        path.name: GraphiqlAsset(path)
        for path in GRAPHIQL_DIR.iterdir()
        if path.is_file() and path.suffix in CONTENT_TYPES
    }


_PAGE = (GRAPHIQL_DIR / "index.html").read_bytes()


def graphiql_page(request: web.Request) -> web.Response:
    """What `GET /graphql` answers a browser (ModelgateView.render_graphql_ide)."""
    headers = common_headers()
    headers["Content-Security-Policy"] = content_security_policy(request.host, fonts=True)
    return web.Response(body=_PAGE, content_type="text/html", charset="utf-8", headers=headers)


def add_graphiql_routes(app: web.Application) -> None:
    assets = _load_assets()

    async def asset(request: web.Request) -> web.Response:
        found = assets.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404, text="Not Found")
        headers = common_headers()
        headers["ETag"] = found.etag
        if request.headers.get("If-None-Match") == found.etag:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = found.content_type
        return web.Response(body=found.body, headers=headers)

    app.router.add_get("/graphiql/{name}", asset)
