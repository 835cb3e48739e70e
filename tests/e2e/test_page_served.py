"""How the server serves the chat page, without a browser: its security headers, its static files,
nothing that points elsewhere, and the GraphiQL link following the switch."""

from __future__ import annotations

import re

import aiohttp

from app.web.routes import ASSETS, WEB_DIR
from tests.conftest import LiveServer, make_settings, running_server


async def test_page_is_served_with_a_strict_content_security_policy(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
        policy = dict(
            part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";")
        )
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    host = server.url.removeprefix("http://")
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["style-src"] == policy["img-src"] == "'self'"
    assert policy["connect-src"] == f"'self' ws://{host} wss://{host}"
    assert policy["frame-ancestors"] == "'none'"
    assert '<script type="module" src="/static/chat.js">' in html
    assert 'href="/graphql"' in html  # GraphiQL


async def test_static_files(server: LiveServer, http: aiohttp.ClientSession) -> None:
    for name, content_type in ASSETS.items():
        async with http.get(f"{server.url}/static/{name}") as response:
            assert response.status == 200, name
            assert response.headers["Content-Type"] == content_type
            assert await response.read() == (WEB_DIR / name).read_bytes()
    for missing in ("routes.py", "index.html", "..%2Froutes.py", "%2E%2E/config.py"):
        async with http.get(f"{server.url}/static/{missing}") as response:
            assert response.status == 404, missing


def test_the_page_refers_to_nothing_outside_this_server() -> None:
    for name in ("index.html", *ASSETS):
        text = (WEB_DIR / name).read_text(encoding="utf-8")
        if name == "icon.svg":  # its XML namespace is a name, not a request
            text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
        assert "@import" not in text, name
        assert "url(" not in text, name
    assert "innerHTML" not in (WEB_DIR / "chat.js").read_text(encoding="utf-8")  # text only, never markup


async def test_graphiql_link_is_left_out_when_graphiql_is_off(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    async with running_server(make_settings(database_url, graphiql=False)) as live:
        async with http.get(f"{live.url}/") as response:
            html = await response.text()
        async with http.get(f"{live.url}/graphql", headers={"Accept": "text/html"}) as response:
            assert response.status == 404
    assert "GraphiQL" not in html
    assert 'href="/graphql"' not in html
