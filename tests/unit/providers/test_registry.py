"""Every provider has an adapter; clientKey/secretKey models use the OpenAI wire format."""

import pytest
from aiohttp import web

from app.domain.calls import ProviderError
from app.domain.credentials import Credentials
from app.domain.enums import Provider
from app.providers.base import ProviderTarget
from app.providers.http import Timeouts, UpstreamHttp
from app.providers.openai_wire import OpenAIWireAdapter
from app.providers.registry import adapter_for
from app.providers.runtime import ProviderConfig, ProviderRuntime
from tests.support.loopback import loopback_app


@pytest.mark.parametrize("provider", list(Provider))
async def test_every_provider_has_an_adapter(provider: Provider) -> None:
    runtime = ProviderRuntime(UpstreamHttp.create(Timeouts(), allow_private=True), ProviderConfig())
    try:
        adapter = adapter_for(ProviderTarget(provider=provider, provider_model_id="m"), runtime)
        assert adapter.target.provider is provider
    finally:
        await runtime.close()


async def test_client_key_models_use_the_openai_wire_format() -> None:
    runtime = ProviderRuntime(UpstreamHttp.create(Timeouts(), allow_private=True), ProviderConfig())
    try:
        target = ProviderTarget(
            provider=Provider.OPENAI_COMPATIBLE,
            provider_model_id="m",
            model_url="https://llm.example.com/v1",
            credentials=Credentials(client_key="c", secret_key="s"),
        )
        assert isinstance(adapter_for(target, runtime), OpenAIWireAdapter)
    finally:
        await runtime.close()


async def test_the_shared_client_keeps_no_cookies() -> None:
    """A cookie one upstream answer sets is never sent with a later request (another organization's)."""
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("cookie"))
        response = web.json_response({})
        response.set_cookie("session", "abc", path="/")
        return response

    app = web.Application()
    app.router.add_post("/v1/x", answer)
    http = UpstreamHttp.create(Timeouts(), allow_private=True)
    async with loopback_app(app) as url:
        try:
            for _ in range(2):
                await http.post_json(f"{url}/v1/x", {}, headers={}, read_error=_never)
        finally:
            await http.close()
    assert seen == [None, None]


def _never(status: int, headers: object, body: bytes) -> ProviderError:
    raise AssertionError(f"unexpected HTTP {status}")
