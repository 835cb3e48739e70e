"""Vertex AI (Provider GOOGLE_VERTEX_AI) against the fake Google server: the URL built from the
settings, OAuth access tokens from a service-account key (signed assertion, exchange, caching until
near expiry, one refresh for concurrent calls, failures as AUTH_FAILED), and `:predict` embeddings.
The service account's RSA key is generated here, per test session, and never written anywhere."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.domain.calls import ChatMessage, Finished, ProviderError, ProviderErrorCode, StreamFailed, Usage
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.base import ChatRequest, EmbedRequest, ProviderAdapter, ProviderTarget
from app.providers.gemini import google_adapter
from app.providers.google_auth import ServiceAccountKey, VertexConnection
from app.providers.runtime import ProviderRuntime
from tests.fakes.google_server import GoogleFake, fake_vector, google_fake
from tests.support.streams import collect, text_of

MODEL = "gemini-2.0-flash"
PROJECT = "fake-project"
CLIENT_EMAIL = f"modelgate-test@{PROJECT}.iam.gserviceaccount.com"
REQUEST = ChatRequest(
    messages=(ChatMessage(ChatRole.USER, "What is the capital of France?"),),
    system_prompt="You are a helpful chatbot.",
    temperature=0.5,
    max_tokens=100,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return _private_key()


def service_account_json(key: rsa.RSAPrivateKey, **changes: Any) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": "https://oauth2.googleapis.com/token",  # never used: the config names the endpoint
            **changes,
        }
    )


@pytest.fixture
async def fake(signing_key: rsa.RSAPrivateKey) -> AsyncIterator[GoogleFake]:
    async with google_fake() as fake:
        fake.service_account_public_key = signing_key.public_key()
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    """The runtimes' clock (see conftest.py)."""
    return FakeClock()


@pytest.fixture
def runtime_config(fake: GoogleFake) -> dict[str, Any]:
    """The runtimes exchange tokens at the fake (see conftest.py)."""
    return {"google_oauth_url": f"{fake.url}/token"}


def vertex_target(
    fake: GoogleFake,
    signing_key: rsa.RSAPrivateKey,
    *,
    settings: dict[str, str] | None = None,
    **changes: Any,
) -> ProviderTarget:
    fields: dict[str, Any] = {
        "provider": Provider.GOOGLE_VERTEX_AI,
        "provider_model_id": MODEL,
        "settings": {"location": "europe-west4", "apiEndpoint": fake.url, **(settings or {})},
        "credentials": Credentials(token=service_account_json(signing_key)),
        **changes,
    }
    return ProviderTarget(**fields)


@pytest.fixture
def adapter(fake: GoogleFake, signing_key: rsa.RSAPrivateKey, runtime: ProviderRuntime) -> ProviderAdapter:
    return google_adapter(vertex_target(fake, signing_key), runtime)


def model_path(method: str, *, location: str = "europe-west4", project: str = PROJECT) -> str:
    return f"/v1/projects/{project}/locations/{location}/publishers/google/models/{MODEL}:{method}"


def model_calls(fake: GoogleFake) -> list[Any]:
    return [r for r in fake.requests if r.path != "/token"]


async def test_complete_with_an_oauth_token(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    completion = await adapter.complete(REQUEST)

    assert completion.text == fake.reply
    assert completion.finish_reason == FinishReason.STOP
    assert completion.usage == Usage(13, 8)
    token_call, model_call = fake.requests
    assert token_call.path == "/token"
    assert token_call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert token_call.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    [claims] = fake.assertions
    assert claims["iss"] == CLIENT_EMAIL
    assert claims["aud"] == f"{fake.url}/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["kid"] == "0123456789abcdef"
    assert (model_call.path, model_call.query) == (model_path("generateContent"), {})
    assert model_call.headers["authorization"] == "Bearer ya29.fake-access-token-1"
    assert "x-goog-api-key" not in model_call.headers
    assert model_call.body == {
        "contents": [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}],
        "systemInstruction": {"parts": [{"text": "You are a helpful chatbot."}]},
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 100},
    }


async def test_stream_with_an_oauth_token(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    events = await collect(adapter.stream(REQUEST))

    assert text_of(events) == fake.reply
    assert events[-1] == Finished(FinishReason.STOP)
    [call] = model_calls(fake)
    assert (call.path, call.query) == (model_path("streamGenerateContent"), {"alt": "sse"})
    assert call.headers["authorization"] == "Bearer ya29.fake-access-token-1"


async def test_settings_shape_the_url(
    fake: GoogleFake, signing_key: rsa.RSAPrivateKey, runtime: ProviderRuntime
) -> None:
    settings = {"location": "us-east5", "projectId": "other-project", "publisher": "anthropic"}
    target = vertex_target(fake, signing_key, settings=settings)

    await google_adapter(target, runtime).complete(REQUEST)

    assert model_calls(fake)[0].path == (
        f"/v1/projects/other-project/locations/us-east5/publishers/anthropic/models/{MODEL}:generateContent"
    )


@pytest.mark.parametrize(
    ("settings", "model_url", "expected"),
    [
        (
            {},
            None,
            f"https://us-central1-aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/us-central1"
            f"/publishers/google/models/{MODEL}",
        ),
        (
            {"location": "global"},
            None,
            f"https://aiplatform.googleapis.com/v1/projects/{PROJECT}/locations/global"
            f"/publishers/google/models/{MODEL}",
        ),
        (
            {"location": "europe-west4", "apiEndpoint": "europe-west4-aiplatform.example.com"},
            None,
            f"https://europe-west4-aiplatform.example.com/v1/projects/{PROJECT}/locations/europe-west4"
            f"/publishers/google/models/{MODEL}",
        ),
        (
            {"location": "europe-west4"},
            "https://proxy.example/v1beta1",
            f"https://proxy.example/v1beta1/projects/{PROJECT}/locations/europe-west4"
            f"/publishers/google/models/{MODEL}",
        ),
        (
            {},
            "https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/publishers/google/models/"
            "gemini-3-flash-preview:generateContent",
            "https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/publishers/google/models/"
            "gemini-3-flash-preview",
        ),
    ],
)
def test_model_url(
    signing_key: rsa.RSAPrivateKey,
    runtime: ProviderRuntime,
    settings: dict[str, str],
    model_url: str | None,
    expected: str,
) -> None:
    target = ProviderTarget(
        provider=Provider.GOOGLE_VERTEX_AI,
        provider_model_id=MODEL,
        model_url=model_url,
        settings=settings,
    )
    key = ServiceAccountKey.parse(service_account_json(signing_key))

    assert VertexConnection(target, runtime).model_url(key) == expected


@pytest.mark.parametrize(
    ("settings", "key_changes"),
    [
        ({"location": "evil.example/x?"}, {}),
        ({}, {"project_id": None}),
    ],
)
async def test_bad_settings_are_bad_requests(
    fake: GoogleFake,
    signing_key: rsa.RSAPrivateKey,
    runtime: ProviderRuntime,
    settings: dict[str, str],
    key_changes: dict[str, Any],
) -> None:
    credentials = Credentials(token=service_account_json(signing_key, **key_changes))
    target = vertex_target(fake, signing_key, settings=settings, credentials=credentials)

    with pytest.raises(ProviderError) as raised:
        await google_adapter(target, runtime).complete(REQUEST)

    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.BAD_REQUEST, False)
    assert fake.requests == []


async def test_token_is_reused_until_near_expiry(
    fake: GoogleFake, adapter: ProviderAdapter, clock: FakeClock
) -> None:
    for _ in range(3):
        await adapter.complete(REQUEST)
    clock.now += 3599 - 300 - 1  # still outside the refresh margin
    await adapter.complete(REQUEST)
    assert fake.token_requests == 1

    clock.now += 2
    await adapter.complete(REQUEST)

    assert fake.token_requests == 2
    used = [call.headers["authorization"] for call in model_calls(fake)]
    assert used == ["Bearer ya29.fake-access-token-1"] * 4 + ["Bearer ya29.fake-access-token-2"]


async def test_short_lived_tokens_are_reused_for_half_their_life(
    fake: GoogleFake, adapter: ProviderAdapter, clock: FakeClock
) -> None:
    fake.token_lifetime = 60
    await adapter.complete(REQUEST)
    clock.now += 29
    await adapter.complete(REQUEST)
    assert fake.token_requests == 1

    clock.now += 2
    await adapter.complete(REQUEST)

    assert fake.token_requests == 2


async def test_concurrent_calls_share_one_refresh(
    fake: GoogleFake, signing_key: rsa.RSAPrivateKey, runtime: ProviderRuntime
) -> None:
    fake.token_delay = 0.2
    adapters = [google_adapter(vertex_target(fake, signing_key), runtime) for _ in range(5)]

    await asyncio.gather(*(a.complete(REQUEST) for a in adapters))

    assert fake.token_requests == 1
    assert {call.headers["authorization"] for call in model_calls(fake)} == {
        "Bearer ya29.fake-access-token-1"
    }


async def test_each_service_account_key_has_its_own_token(
    fake: GoogleFake, signing_key: rsa.RSAPrivateKey, runtime: ProviderRuntime
) -> None:
    # Same email, another private key: it must not be handed the first key's cached token.
    impostor = Credentials(token=service_account_json(_private_key()))
    await google_adapter(vertex_target(fake, signing_key), runtime).complete(REQUEST)

    with pytest.raises(ProviderError) as raised:
        await google_adapter(vertex_target(fake, signing_key, credentials=impostor), runtime).complete(
            REQUEST
        )

    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.AUTH_FAILED, False)
    assert "invalid_grant" in raised.value.message
    assert fake.token_requests == 2


@pytest.mark.parametrize(
    ("token_error", "retryable"),
    [
        ((400, "invalid_grant", "Invalid JWT Signature."), False),
        ((401, "invalid_client", "The OAuth client was not found."), False),
        ((503, "temporarily_unavailable", "Try again."), True),
    ],
)
async def test_refresh_failures_are_auth_failed(
    fake: GoogleFake, adapter: ProviderAdapter, token_error: tuple[int, str, str], retryable: bool
) -> None:
    fake.token_error = token_error

    with pytest.raises(ProviderError) as raised:
        await adapter.complete(REQUEST)
    [streamed] = await collect(adapter.stream(REQUEST))

    assert isinstance(streamed, StreamFailed)
    for error in (raised.value, streamed.error):
        assert (error.code, error.retryable) == (ProviderErrorCode.AUTH_FAILED, retryable)
        assert token_error[1] in error.message
    assert model_calls(fake) == []


async def test_token_endpoint_timeout_is_a_retryable_auth_failure(
    fake: GoogleFake, signing_key: rsa.RSAPrivateKey, quick_runtime: ProviderRuntime
) -> None:
    fake.token_delay = 5.0
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        await google_adapter(vertex_target(fake, signing_key), quick_runtime).complete(REQUEST)
    elapsed = time.monotonic() - started

    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.AUTH_FAILED, True)
    assert elapsed < 1.5


@pytest.mark.parametrize(
    "token",
    [
        None,
        "AIza-not-a-service-account-key",
        '{"client_email": "x@example.com"}',
        json.dumps(
            {
                "client_email": "x@example.com",
                "project_id": "p",
                "private_key": "-----BEGIN PRIVATE KEY-----\nSECRET",
            }
        ),
    ],
)
async def test_unusable_keys_are_auth_failed_without_leaking(
    fake: GoogleFake, signing_key: rsa.RSAPrivateKey, runtime: ProviderRuntime, token: str | None
) -> None:
    target = vertex_target(fake, signing_key, credentials=Credentials(token=token))

    with pytest.raises(ProviderError) as raised:
        await google_adapter(target, runtime).complete(REQUEST)

    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.AUTH_FAILED, False)
    assert fake.requests == []
    for text in (raised.value.message, repr(raised.value)):
        assert "SECRET" not in text
        assert "not-a-service-account" not in text


async def test_no_credential_in_model_errors(
    fake: GoogleFake, signing_key: rsa.RSAPrivateKey, adapter: ProviderAdapter
) -> None:
    await adapter.complete(REQUEST)  # obtains ya29.fake-access-token-1
    fake.error = (401, "UNAUTHENTICATED", "Bad token ya29.fake-access-token-1 for fake-project")

    with pytest.raises(ProviderError) as raised:
        await adapter.complete(REQUEST)

    assert raised.value.code == ProviderErrorCode.AUTH_FAILED
    assert "ya29.fake-access-token-1" not in raised.value.message
    assert "BEGIN PRIVATE KEY" not in repr(raised.value)


async def test_overloaded_vertex_is_retryable(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    fake.overloaded()

    with pytest.raises(ProviderError) as raised:
        await adapter.complete(REQUEST)

    assert (raised.value.code, raised.value.retryable, raised.value.status) == (
        ProviderErrorCode.OVERLOADED,
        True,
        503,
    )


async def test_embeddings_use_predict(
    fake: GoogleFake, signing_key: rsa.RSAPrivateKey, runtime: ProviderRuntime
) -> None:
    target = vertex_target(
        fake, signing_key, provider_model_id="text-embedding-005", model_group=ModelGroup.EMBEDDING
    )

    embeddings = await google_adapter(target, runtime).embed(EmbedRequest(texts=("hello world", "hi")))

    assert embeddings.vectors == [fake_vector("hello world"), fake_vector("hi")]
    assert embeddings.usage == Usage(input_tokens=3)
    [call] = model_calls(fake)
    assert call.path == (
        f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/text-embedding-005:predict"
    )
    assert call.headers["authorization"] == "Bearer ya29.fake-access-token-1"
    assert call.body == {"instances": [{"content": "hello world"}, {"content": "hi"}]}
