"""Redaction: no run of 8 or more characters of a credential sent upstream comes back in an error,
whole or cut, for every provider adapter against its fake (whose error message echoes the key)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.domain.calls import ChatMessage, ProviderError, ProviderErrorCode
from app.domain.credentials import Credentials
from app.domain.enums import ApiType, ChatRole, ModelGroup, Provider
from app.providers.base import ChatRequest, ProviderAdapter, ProviderTarget
from app.providers.google_auth import ServiceAccountKey
from app.providers.http import Timeouts, UpstreamHttp
from app.providers.redact import redact_secrets, safe_detail
from app.providers.registry import adapter_for
from app.providers.runtime import ProviderConfig, ProviderRuntime
from tests.fakes.aleph_alpha_server import TOKEN as ALEPH_TOKEN
from tests.fakes.aleph_alpha_server import aleph_alpha_fake
from tests.fakes.anthropic_server import anthropic_fake
from tests.fakes.bedrock_server import bedrock_fake, use_fake_aws
from tests.fakes.google_server import GoogleFake, google_fake
from tests.fakes.openai_server import FakeError, openai_fake_server
from tests.support.streams import collect_result

OPENAI_KEY = "sk-proj-Zq3v9XkP2mW7rT1yB8nL4cD6fH0jG5sA2eQ9uI7oK3pR1tY8"
ANTHROPIC_KEY = "sk-ant-api03-Hk7Qp2Lm9Xv4Tz1Rw8Bn5Cd3Fg6Jh0Ks-Pq7Wm2Xt9Lz4AA"
GEMINI_KEY = "AIzaSyD4kL9mQ2xR7vT1wB8nC3pF6hJ0gK5sE2u"
CLIENT_KEY = "client-7f3a9c2e5b1d8f40"
SECRET_KEY = "secret-b84e1c7a3f9d2605e7c1"
AWS_ACCESS_KEY = "AKIAIOSFODNN7FAKEKEY"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKEKEYKEY"
AWS_SESSION_TOKEN = "IQoJb3JpZ2luX2VjEFAKE0000SESSIONTOKENv1Lz9mQ2xR7vT1wB8nC3pF6h"
OPENAI_CREDENTIALS = Credentials(token=OPENAI_KEY)
PRIVATE_KEY_ID = "3f9d2605e7c1b84e1c7a3f9d2605e7c1b84e1c7a"
REQUEST = ChatRequest(messages=(ChatMessage(ChatRole.USER, "Hi"),), max_tokens=16)
TIMEOUTS = Timeouts(connect=2, first_byte=5, idle=5)

# How upstreams echo a key: cut after a prefix, a piece from its middle, both ends joined by an
# ellipsis (as OpenAI shows keys), or whole.
ECHOES: dict[str, Callable[[str], str]] = {
    "truncated": lambda key: f"Incorrect API key provided: {key[:12]}...",
    "middle": lambda key: f"the key containing {key[len(key) // 2 - 5 : len(key) // 2 + 5]} is revoked",
    "ellipsis": lambda key: f"invalid key {key[:9]}…{key[-9:]} for this project",
    "whole": lambda key: f"invalid key {key}",
}


def assert_no_run(text: str, secrets: tuple[str, ...]) -> None:
    """No 8-character run of any secret occurs in `text`."""
    for secret in secrets:
        for start in range(len(secret) - 7):
            assert secret[start : start + 8] not in text, (secret[start : start + 8], text)


# --- the algorithm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
def test_every_echo_of_a_secret_is_redacted(echo: Callable[[str], str]) -> None:
    detail = safe_detail(echo(OPENAI_KEY), (OPENAI_KEY,))
    assert_no_run(detail, (OPENAI_KEY,))
    assert "[redacted]" in detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key Zq3v9XkP2mW7 refused", "key [redacted] refused"),  # a run from the middle
        ("key Zq3v9Xk refused", "key Zq3v9Xk refused"),  # 7 characters: below the bar
        ("a Zq3v9XkP b 2mW7rT1yB c", "a [redacted] b [redacted] c"),  # two runs stay two
        ("Zq3v9XkP2mW7rT1yB8nL", "[redacted]"),  # overlapping windows merge into one span
        ("Zq3v9XkPuI7oK3pR1tY8", "[redacted]"),  # adjacent runs from two places too
        ("no secret here at all", "no secret here at all"),
    ],
)
def test_runs_are_found_and_merged(text: str, expected: str) -> None:
    assert redact_secrets(text, (OPENAI_KEY,)) == expected


def test_short_secrets_are_replaced_whole() -> None:
    assert redact_secrets("token abc123 rejected", ("abc123",)) == "token [redacted] rejected"


def test_a_key_echoed_across_its_line_breaks_is_redacted() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    echoed = "bad key: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
    detail = safe_detail(echoed.replace("ASC B", "ASCB"), (pem,))
    assert_no_run(detail, tuple(pem.split()))


def test_a_20_kb_secret_is_handled() -> None:
    secret = "".join(f"{i:05x}" for i in range(4000))  # 20,000 characters
    detail = safe_detail(f"upstream saw {secret[7000:7300]} and {secret[19990:]}", (secret,))
    assert detail == "upstream saw [redacted] and [redacted]"


# --- every adapter against its fake ----------------------------------------------------------------


@dataclass
class Upstream:
    adapter: ProviderAdapter
    fail_with: Callable[[str], None]  # the fake answers every request with an error with this message
    echoed: tuple[str, ...]  # the credentials that went upstream, which the fake echoes


MakeRuntime = Callable[..., ProviderRuntime]
UpstreamFactory = Callable[[MakeRuntime, pytest.MonkeyPatch, Path], AbstractAsyncContextManager[Upstream]]


@pytest.fixture
async def make_runtime() -> AsyncIterator[MakeRuntime]:
    made: list[ProviderRuntime] = []

    def make(clock: Callable[[], float] = time.time, **config: Any) -> ProviderRuntime:
        http = UpstreamHttp.create(TIMEOUTS, allow_private=True)
        config = {"timeouts": TIMEOUTS, "allow_private_upstreams": True, **config}
        made.append(ProviderRuntime(http, ProviderConfig(**config), clock=clock))
        return made[-1]

    yield make
    for runtime in made:
        await runtime.close()


def _target(provider: Provider, url: str | None, credentials: Credentials, **fields: Any) -> ProviderTarget:
    return ProviderTarget(
        provider=provider, provider_model_id="model-1", model_url=url, credentials=credentials, **fields
    )


def _openai_family(
    provider: Provider, credentials: Credentials = OPENAI_CREDENTIALS, **fields: Any
) -> UpstreamFactory:
    @asynccontextmanager
    async def start(make: MakeRuntime, _: pytest.MonkeyPatch, __: Path) -> AsyncIterator[Upstream]:
        async with openai_fake_server(flavor="mistral" if provider is Provider.MISTRAL else "openai") as fake:
            if provider is Provider.AZURE_OPENAI:
                url, settings = None, {"baseCustomUrl": fake.url}
            else:
                url, settings = f"{fake.url}/v1", {}
            target = _target(provider, url, credentials, settings=settings, **fields)

            def fail_with(message: str) -> None:
                fake.error = FakeError(401, message, type="invalid_request_error", code="invalid_api_key")

            yield Upstream(adapter_for(target, make()), fail_with, credentials.secrets())

    return start


@asynccontextmanager
async def _anthropic(make: MakeRuntime, _: pytest.MonkeyPatch, __: Path) -> AsyncIterator[Upstream]:
    async with anthropic_fake() as fake:
        fake.api_key = ANTHROPIC_KEY
        target = _target(Provider.ANTHROPIC, fake.url, Credentials(token=ANTHROPIC_KEY))

        def fail_with(message: str) -> None:
            fake.error = (401, "authentication_error", message)

        yield Upstream(adapter_for(target, make()), fail_with, (ANTHROPIC_KEY,))


@asynccontextmanager
async def _gemini(make: MakeRuntime, _: pytest.MonkeyPatch, __: Path) -> AsyncIterator[Upstream]:
    async with google_fake() as fake:
        fake.api_key = GEMINI_KEY
        target = _target(Provider.GOOGLE_GENAI, fake.url, Credentials(token=GEMINI_KEY))
        yield Upstream(adapter_for(target, make()), _google_failure(fake), (GEMINI_KEY,))


def _google_failure(fake: GoogleFake) -> Callable[[str], None]:
    def fail_with(message: str) -> None:
        fake.error = (401, "UNAUTHENTICATED", message)

    return fail_with


def _service_account(key: rsa.RSAPrivateKey) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": PRIVATE_KEY_ID,
            "private_key": pem,
            "client_email": "modelgate@fake-project.iam.gserviceaccount.com",
        }
    )


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@asynccontextmanager
async def _vertex(make: MakeRuntime, _: pytest.MonkeyPatch, __: Path) -> AsyncIterator[Upstream]:
    key = _signing_key()
    async with google_fake() as fake:
        fake.service_account_public_key = key.public_key()
        target = _target(
            Provider.GOOGLE_VERTEX_AI,
            None,
            Credentials(token=_service_account(key)),
            settings={"location": "europe-west4", "apiEndpoint": fake.url},
        )
        adapter = adapter_for(target, make(google_oauth_url=f"{fake.url}/token"))
        await adapter.complete(REQUEST)  # obtains the access token the fake will echo
        yield Upstream(adapter, _google_failure(fake), (fake.issued_tokens[0], PRIVATE_KEY_ID))


@asynccontextmanager
async def _aleph_alpha(make: MakeRuntime, _: pytest.MonkeyPatch, __: Path) -> AsyncIterator[Upstream]:
    async with aleph_alpha_fake() as fake:
        target = _target(
            Provider.ALEPH_ALPHA, fake.url, Credentials(token=ALEPH_TOKEN), model_group=ModelGroup.COMPLETION
        )

        def fail_with(message: str) -> None:
            fake.error = (401, message, "UNAUTHENTICATED")

        yield Upstream(adapter_for(target, make()), fail_with, (ALEPH_TOKEN,))


@asynccontextmanager
async def _bedrock(make: MakeRuntime, monkeypatch: pytest.MonkeyPatch, home: Path) -> AsyncIterator[Upstream]:
    async with bedrock_fake() as fake:
        use_fake_aws(monkeypatch, fake.url, home)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
        monkeypatch.setenv("AWS_SESSION_TOKEN", AWS_SESSION_TOKEN)
        target = _target(Provider.AWS_BEDROCK, None, Credentials(token="iam", platform_identity=True))

        def fail_with(message: str) -> None:
            fake.error = (403, "UnrecognizedClientException", message)

        runtime = make(bedrock_region="us-east-1")
        yield Upstream(adapter_for(target, runtime), fail_with, (AWS_ACCESS_KEY, AWS_SESSION_TOKEN))


UPSTREAMS: dict[str, UpstreamFactory] = {
    "openai-chat": _openai_family(Provider.OPENAI),
    "openai-responses": _openai_family(Provider.OPENAI, api_type=ApiType.RESPONSES),
    "azure-openai": _openai_family(Provider.AZURE_OPENAI),
    "mistral": _openai_family(Provider.MISTRAL),
    "client-and-secret-key": _openai_family(
        Provider.OPENAI_COMPATIBLE, credentials=Credentials(client_key=CLIENT_KEY, secret_key=SECRET_KEY)
    ),
    "anthropic": _anthropic,
    "gemini": _gemini,
    "vertex": _vertex,
    "aleph-alpha": _aleph_alpha,
    "bedrock": _bedrock,
}


@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
@pytest.mark.parametrize("upstream", UPSTREAMS.values(), ids=UPSTREAMS.keys())
async def test_an_upstream_error_echoing_a_key_is_redacted(
    upstream: UpstreamFactory,
    echo: Callable[[str], str],
    make_runtime: MakeRuntime,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    async with upstream(make_runtime, monkeypatch, tmp_path) as up:
        up.fail_with(" / ".join(echo(secret) for secret in up.echoed))
        with pytest.raises(ProviderError) as raised:
            await up.adapter.complete(REQUEST)
        streamed = (await collect_result(up.adapter.stream(REQUEST))).error
    for error in (raised.value, streamed):
        assert isinstance(error, ProviderError)
        assert error.code is ProviderErrorCode.AUTH_FAILED
        assert "[redacted]" in error.message
        for text in (error.message, str(error), repr(error)):
            assert_no_run(text, up.echoed)


async def test_a_token_endpoint_echoing_the_key_id_or_the_assertion_is_redacted(
    make_runtime: MakeRuntime,
) -> None:
    now = 1_700_000_000.0  # the runtime's clock, so that the assertion it will sign is known
    key_json = _service_account(_signing_key())
    async with google_fake() as fake:
        assertion = ServiceAccountKey.parse(key_json).assertion(audience=f"{fake.url}/token", now=now)
        signature = assertion.rsplit(".", 1)[1]
        fake.token_error = (
            400,
            "invalid_grant",
            f"key {PRIVATE_KEY_ID[:10]}... signed {signature[:20]}...{signature[-12:]} is not valid",
        )
        target = _target(
            Provider.GOOGLE_VERTEX_AI,
            None,
            Credentials(token=key_json),
            settings={"location": "europe-west4", "apiEndpoint": fake.url},
        )
        adapter = adapter_for(target, make_runtime(google_oauth_url=f"{fake.url}/token", clock=lambda: now))
        with pytest.raises(ProviderError) as raised:
            await adapter.complete(REQUEST)
        assert fake.requests[0].body["assertion"] == assertion
    assert raised.value.code is ProviderErrorCode.AUTH_FAILED
    assert "could not obtain a Vertex AI access token" in raised.value.message
    assert_no_run(raised.value.message, (PRIVATE_KEY_ID, signature))
