"""Downloading an image for a provider that takes only bytes: the outbound guard, the type and size
limits, and an upstream error all end in a clear, non-retryable refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.domain.calls import MAX_IMAGE_BYTES, ImagePart, ProviderError, ProviderErrorCode
from app.providers.inline_images import inline_image
from app.providers.runtime import ProviderRuntime
from tests.unit.providers.conftest import MakeRuntime

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
async def image_server() -> AsyncIterator[str]:
    async def png(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    async def huge(request: web.Request) -> web.StreamResponse:
        # Chunked, with no content-length: only counting the bytes can stop it.
        response = web.StreamResponse(headers={"content-type": "image/jpeg"})
        await response.prepare(request)
        for _ in range(MAX_IMAGE_BYTES // 65536 + 2):
            await response.write(b"\xff" * 65536)
        return response

    app = web.Application()
    app.router.add_get("/cat.png", png)
    app.router.add_get("/page", html)
    app.router.add_get("/huge.jpg", huge)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_a_url_is_downloaded_with_its_media_type(runtime: ProviderRuntime, image_server: str) -> None:
    image = await inline_image(runtime.http, ImagePart(url=f"{image_server}/cat.png"))
    assert (image.media_type, image.data) == ("image/png", PNG)


async def test_data_is_passed_through_without_a_download(runtime: ProviderRuntime) -> None:
    image = await inline_image(runtime.http, ImagePart(data=PNG, media_type="image/png"))
    assert image.data == PNG


@pytest.mark.parametrize(
    ("path", "message"),
    [("/page", "text/html, not an image"), ("/huge.jpg", "larger than 5 MB"), ("/missing", "HTTP 404")],
)
async def test_what_is_not_a_small_image_is_refused(
    runtime: ProviderRuntime, image_server: str, path: str, message: str
) -> None:
    with pytest.raises(ProviderError) as refused:
        await inline_image(runtime.http, ImagePart(url=image_server + path))
    assert refused.value.code is ProviderErrorCode.BAD_REQUEST
    assert not refused.value.retryable
    assert message in refused.value.message


async def test_a_private_address_is_refused_before_any_connection(
    make_runtime: MakeRuntime, image_server: str
) -> None:
    guarded = make_runtime(allow_private=False)
    with pytest.raises(ProviderError, match="the image URL must use https"):
        await inline_image(guarded.http, ImagePart(url=f"{image_server}/cat.png"))
    with pytest.raises(ProviderError, match="loopback, private or link-local"):
        await inline_image(guarded.http, ImagePart(url="https://169.254.169.254/latest/meta-data"))


async def test_data_of_an_unknown_type_is_refused(runtime: ProviderRuntime) -> None:
    with pytest.raises(ProviderError, match="not supported"):
        await inline_image(runtime.http, ImagePart(data=b"GIF", media_type="text/plain"))
