"""Connection setup of the OpenAI family (app/providers/openai_endpoints.py): base URLs, the full
endpoint URLs a modelUrl may hold, auth placement, Azure's URL shapes, and dialects."""

from __future__ import annotations

import pytest

from app.domain.calls import ProviderError, ProviderErrorCode
from app.domain.credentials import Credentials
from app.domain.enums import ApiType, Provider
from app.providers.openai_endpoints import (
    COMPATIBLE_DIALECT,
    MISTRAL_DIALECT,
    OPENAI_DIALECT,
    resolve_endpoint,
)
from tests.fakes.openai_server import TOKEN, make_target

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("provider", "model_url", "base"),
    [
        (Provider.OPENAI, None, "https://api.openai.com/v1"),
        (Provider.MISTRAL, None, "https://api.mistral.ai/v1"),
        (Provider.OPENAI, "https://api.openai.com/v1/", "https://api.openai.com/v1"),
        (Provider.OPENAI, "https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1"),
        (Provider.OPENAI, "https://proxy.example/v1/completions", "https://proxy.example/v1"),
        (Provider.OPENAI, "https://proxy.example/v1/embeddings/", "https://proxy.example/v1"),
        (Provider.OPENAI, "https://proxy.example/openai/v1/responses", "https://proxy.example/openai/v1"),
        (Provider.OPENAI_COMPATIBLE, "https://vllm.example:8443/v1", "https://vllm.example:8443/v1"),
    ],
)
def test_base_url(provider: Provider, model_url: str | None, base: str) -> None:
    endpoint = resolve_endpoint(make_target(provider, model_url))
    assert endpoint.base_url == base
    assert endpoint.url("chat/completions") == f"{base}/chat/completions"
    assert endpoint.headers == BEARER


def test_query_of_a_model_url_is_kept() -> None:
    endpoint = resolve_endpoint(make_target(Provider.OPENAI_COMPATIBLE, "https://h.example/v1?tenant=a%20b"))
    assert endpoint.url("embeddings") == "https://h.example/v1/embeddings?tenant=a+b"


def test_dialects() -> None:
    assert resolve_endpoint(make_target(Provider.OPENAI, None)).dialect == OPENAI_DIALECT
    assert resolve_endpoint(make_target(Provider.AZURE_OPENAI, "https://r.example")).dialect == OPENAI_DIALECT
    assert resolve_endpoint(make_target(Provider.MISTRAL, None)).dialect == MISTRAL_DIALECT
    compatible = resolve_endpoint(make_target(Provider.OPENAI_COMPATIBLE, "https://h.example"))
    assert compatible.dialect == COMPATIBLE_DIALECT
    assert OPENAI_DIALECT.output_limit_field == "max_completion_tokens"
    assert MISTRAL_DIALECT.output_limit_field == COMPATIBLE_DIALECT.output_limit_field == "max_tokens"


def test_compatible_settings_override_model_url_model_and_auth_header() -> None:
    target = make_target(
        Provider.OPENAI_COMPATIBLE,
        "https://ignored.example/v1",
        model="catalog-name",
        settings={
            "baseCustomUrl": "https://apim.example/llm/v1/chat/completions",
            "customModel": "llama-3.1-8b-instruct",
            "customAuthHeader": "Ocp-Apim-Subscription-Key",
        },
    )
    endpoint = resolve_endpoint(target)
    assert endpoint.base_url == "https://apim.example/llm/v1"
    assert endpoint.model == "llama-3.1-8b-instruct"
    assert endpoint.headers == {"Ocp-Apim-Subscription-Key": TOKEN}


def test_custom_model_for_openai() -> None:
    target = make_target(Provider.OPENAI, None, settings={"customModel": "ft:gpt-4o-mini:org::abc"})
    assert resolve_endpoint(target).model == "ft:gpt-4o-mini:org::abc"


def test_client_and_secret_key_headers() -> None:
    credentials = Credentials(client_key="client-1", secret_key="secret-2")
    default = resolve_endpoint(make_target(Provider.OPENAI, "https://gw.example/v1", credentials=credentials))
    assert default.headers == {"X-Client-Key": "client-1", "X-Secret-Key": "secret-2"}
    named = resolve_endpoint(
        make_target(
            Provider.OPENAI_COMPATIBLE,
            "https://gw.example/v1",
            credentials=credentials,
            settings={"clientKeyHeader": "X-Api-Client", "secretKeyHeader": "X-Api-Secret"},
        )
    )
    assert named.headers == {"X-Api-Client": "client-1", "X-Api-Secret": "secret-2"}


def test_no_credentials_no_auth_header() -> None:
    target = make_target(Provider.OPENAI_COMPATIBLE, "http://127.0.0.1:8000/v1", credentials=Credentials())
    assert resolve_endpoint(target).headers == {}


def test_headers_are_not_in_the_repr() -> None:
    assert TOKEN not in repr(resolve_endpoint(make_target(Provider.OPENAI, None)))


@pytest.mark.parametrize(
    ("settings", "api_type", "url"),
    [
        (
            {"resourceName": "contoso", "deploymentName": "gpt4o-prod", "apiVersion": "2025-01-01-preview"},
            ApiType.CHAT_COMPLETION,
            "https://contoso.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
            "?api-version=2025-01-01-preview",
        ),
        (
            {"resourceName": "contoso", "deploymentName": "gpt4o-prod"},
            ApiType.CHAT_COMPLETION,
            "https://contoso.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
            "?api-version=2024-10-21",
        ),
        (
            {"resourceName": "contoso", "apiVersion": "2024-10-21"},  # deployment named by the model id
            ApiType.CHAT_COMPLETION,
            "https://contoso.openai.azure.com/openai/deployments/gpt-4o-mini/chat/completions"
            "?api-version=2024-10-21",
        ),
        (
            {"resourceName": "contoso"},
            ApiType.CHAT_COMPLETION,
            "https://contoso.openai.azure.com/openai/v1/chat/completions",
        ),
        (
            {"resourceName": "contoso", "deploymentName": "d", "apiVersion": "2025-03-01-preview"},
            ApiType.RESPONSES,
            "https://contoso.openai.azure.com/openai/responses?api-version=2025-03-01-preview",
        ),
        (
            {"resourceName": "ignored", "baseCustomUrl": "https://gw.example/azure/", "deploymentName": "d"},
            ApiType.CHAT_COMPLETION,
            "https://gw.example/azure/openai/deployments/d/chat/completions?api-version=2024-10-21",
        ),
        (
            {"baseCustomUrl": "https://gw.example/openai"},
            ApiType.CHAT_COMPLETION,
            "https://gw.example/openai/v1/chat/completions",
        ),
    ],
)
def test_azure_urls(settings: dict[str, str], api_type: ApiType, url: str) -> None:
    target = make_target(Provider.AZURE_OPENAI, None, settings=settings, api_type=api_type)
    endpoint = resolve_endpoint(target)
    operation = "responses" if api_type is ApiType.RESPONSES else "chat/completions"
    assert endpoint.url(operation) == url
    assert endpoint.headers == {"api-key": TOKEN}


@pytest.mark.parametrize(
    "model_url",
    [
        "https://contoso.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01",
        "https://contoso.openai.azure.com/openai/deployments/gpt4o",
    ],
)
def test_azure_full_deployment_url_as_model_url(model_url: str) -> None:
    endpoint = resolve_endpoint(make_target(Provider.AZURE_OPENAI, model_url))
    assert endpoint.base_url == "https://contoso.openai.azure.com/openai/deployments/gpt4o"
    assert endpoint.query["api-version"] in ("2024-06-01", "2024-10-21")


def test_azure_v1_url_as_model_url() -> None:
    endpoint = resolve_endpoint(make_target(Provider.AZURE_OPENAI, "https://c.openai.azure.com/openai/v1/"))
    assert endpoint.url("embeddings") == "https://c.openai.azure.com/openai/v1/embeddings"


@pytest.mark.parametrize(
    ("provider", "model_url", "settings"),
    [
        (Provider.OPENAI_COMPATIBLE, None, {}),
        (Provider.AZURE_OPENAI, None, {}),
        (Provider.AZURE_OPENAI, None, {"resourceName": "evil.example/#"}),
        (Provider.OPENAI_COMPATIBLE, "https://h.example", {"customAuthHeader": "X-Key\r\nInjected: 1"}),
        (Provider.OPENAI, None, {"clientKeyHeader": "bad header"}),
    ],
)
def test_unusable_settings_are_bad_requests(
    provider: Provider, model_url: str | None, settings: dict[str, str]
) -> None:
    credentials = Credentials(client_key="c", secret_key="s") if "clientKeyHeader" in settings else None
    target = make_target(provider, model_url, settings=settings, credentials=credentials)
    with pytest.raises(ProviderError) as caught:
        resolve_endpoint(target)
    assert caught.value.code is ProviderErrorCode.BAD_REQUEST
    assert caught.value.retryable is False


def test_credentials_with_line_breaks_are_refused_without_showing_them() -> None:
    target = make_target(Provider.OPENAI, None, credentials=Credentials(token="sk-abc\r\nX-Evil: 1"))
    with pytest.raises(ProviderError) as caught:
        resolve_endpoint(target)
    assert "sk-abc" not in str(caught.value)
