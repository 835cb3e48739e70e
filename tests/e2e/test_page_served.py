"""How the server serves the chat page and GraphiQL, without a browser: their security headers, their
static files, nothing that points elsewhere, and GraphiQL following the switch."""

from __future__ import annotations

import re

import aiohttp

from app.web.graphiql_page import GRAPHIQL_DIR
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
        async with http.get(f"{live.url}/graphiql/graphiql.min.js") as response:
            assert response.status == 404
    assert "GraphiQL" not in html
    assert 'href="/graphql"' not in html


def policy_of(response: aiohttp.ClientResponse) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


async def test_graphiql_is_served_from_this_server_under_the_same_policy(
    server: LiveServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{server.url}/") as response:
        chat_policy = policy_of(response)
    async with http.get(f"{server.url}/graphql", headers={"Accept": "text/html"}) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
        graphiql_policy = policy_of(response)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    # The chat page's policy, plus GraphiQL's fonts from this server.
    assert graphiql_policy == {**chat_policy, "font-src": "'self'"}
    assets = re.findall(r'(?:src|href)="(/graphiql/[^"]+)"', html)
    assert len(assets) == 8
    assert "unpkg" not in html
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == ["/static/icon.svg", *assets, "/"]  # "/": chat


async def test_graphiql_assets(server: LiveServer, http: aiohttp.ClientSession) -> None:
    expected = {
        "graphiql.min.js": "text/javascript; charset=utf-8",
        "react.production.min.js": "text/javascript; charset=utf-8",
        "graphiql.min.css": "text/css; charset=utf-8",
        "LICENSE.graphiql.txt": "text/plain; charset=utf-8",
    }
    fonts = sorted(GRAPHIQL_DIR.glob("font-*.woff2"))
    expected[fonts[0].name] = "font/woff2"
    for name, content_type in expected.items():
        async with http.get(f"{server.url}/graphiql/{name}") as response:
            assert response.status == 200, name
            assert response.headers["Content-Type"] == content_type
            assert await response.read() == (GRAPHIQL_DIR / name).read_bytes()
            etag = response.headers["ETag"]
        async with http.get(f"{server.url}/graphiql/{name}", headers={"If-None-Match": etag}) as response:
            assert response.status == 304
    for missing in ("index.html", "README.md", "..%2Froutes.py", "%2E%2E/graphiql_page.py"):
        async with http.get(f"{server.url}/graphiql/{missing}") as response:
            assert response.status == 404, missing


def test_graphiql_stylesheet_points_only_at_files_beside_it() -> None:
    css = (GRAPHIQL_DIR / "graphiql.min.css").read_text(encoding="utf-8")
    urls = re.findall(r"url\(([^)]*)\)", css)
    assert urls
    assert all((GRAPHIQL_DIR / url).is_file() for url in urls)
    for name in ("index.html", "modelgate-graphiql.js", "modelgate-graphiql.css"):
        text = (GRAPHIQL_DIR / name).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
