"""Every provider has an adapter; clientKey/secretKey models use the OpenAI wire format."""

import httpx
import pytest

from app.domain.credentials import Credentials
from app.domain.enums import Provider
from app.providers.base import ProviderTarget
from app.providers.http import Timeouts, UpstreamHttp
from app.providers.openai_wire import OpenAIWireAdapter
from app.providers.registry import adapter_for
from app.providers.runtime import ProviderConfig, ProviderRuntime


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
    runtime = ProviderRuntime(UpstreamHttp.create(Timeouts(), allow_private=True), ProviderConfig())
    try:
        request = httpx.Request("GET", "https://api.example.com/v1/models")
        response = httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"}, request=request)
        runtime.http.client.cookies.extract_cookies(response)
        assert dict(runtime.http.client.cookies) == {}
    finally:
        await runtime.close()
