"""A fake upstream of every provider that speaks tools, with the system model that reaches it, for
the end-to-end matrices that run the same calls on each (`upstream_for`): the fake, the
`systemModelCreate` fields pointing at it, the server settings it needs (Vertex's token endpoint,
Bedrock's region) and the request bodies of its model calls, in its own wire format.

Bedrock is reached through botocore, so `upstream_for` points the AWS environment at its fake
(`use_fake_aws`); Vertex signs in with a test service account whose public key the fake checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.aleph_alpha_server import TOKEN as ALEPH_ALPHA_TOKEN
from tests.fakes.aleph_alpha_server import aleph_alpha_fake
from tests.fakes.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_server import anthropic_fake
from tests.fakes.bedrock_server import bedrock_fake, use_fake_aws
from tests.fakes.common import FakeServer
from tests.fakes.google_server import API_KEY as GEMINI_KEY
from tests.fakes.google_server import google_fake
from tests.fakes.openai_server import openai_fake_server
from tests.unit.providers.test_vertex import service_account_json

# Each provider's case id, and the wire format its fake speaks.
CHAT_COMPLETIONS, RESPONSES, ANTHROPIC, GEMINI, BEDROCK = (
    "chat-completions",
    "responses",
    "anthropic",
    "gemini",
    "bedrock",
)
WIRE_FORMATS = {
    "openai": CHAT_COMPLETIONS,
    "openai-responses": RESPONSES,
    "azure-openai": CHAT_COMPLETIONS,
    "mistral": CHAT_COMPLETIONS,
    "openai-compatible": CHAT_COMPLETIONS,
    "aleph-alpha-chat": CHAT_COMPLETIONS,
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
    "vertex": GEMINI,
    "bedrock": BEDROCK,
}
PROVIDERS = list(WIRE_FORMATS)


@dataclass
class Upstream:
    """A provider's fake and how a system model reaches it."""

    provider: str  # a key of WIRE_FORMATS
    fake: FakeServer
    model: dict[str, Any]  # systemModelCreate fields: provider, URL, settings, credential
    settings: dict[str, Any] = field(default_factory=dict)  # server Settings fields it needs

    @property
    def wire(self) -> str:
        return WIRE_FORMATS[self.provider]

    def bodies(self) -> list[Any]:
        """The request bodies of the model calls so far, oldest first (not Vertex's token requests)."""
        return [r.body for r in self.fake.requests if r.path != "/token"]


@cache
def _signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@asynccontextmanager
async def upstream_for(provider: str, monkeypatch: pytest.MonkeyPatch, home: Path) -> AsyncIterator[Upstream]:
    """The fake of `provider` (a key of WIRE_FORMATS), serving until the block ends."""
    if provider in ("openai", "openai-responses", "azure-openai", "mistral", "openai-compatible"):
        flavor = "mistral" if provider == "mistral" else "openai"
        async with openai_fake_server(reply="Hello.", flavor=flavor) as openai:
            yield Upstream(provider, openai, _openai_family_model(provider, openai.url))
    elif provider == "aleph-alpha-chat":
        async with aleph_alpha_fake() as aleph:
            model = {"provider": "ALEPH_ALPHA", "providerModelId": "llama-3.1-8b-instruct"}
            yield Upstream(provider, aleph, {**model, "modelUrl": aleph.url, "token": ALEPH_ALPHA_TOKEN})
    elif provider == "anthropic":
        async with anthropic_fake() as anthropic:
            model = {"provider": "ANTHROPIC", "providerModelId": "claude-sonnet-4-5"}
            yield Upstream(provider, anthropic, {**model, "modelUrl": anthropic.url, "token": ANTHROPIC_KEY})
    elif provider in ("gemini", "vertex"):
        async with google_fake() as google:
            model: dict[str, Any] = {"providerModelId": "gemini-2.0-flash", "modelUrl": None}
            if provider == "gemini":
                model |= {"provider": "GOOGLE_GENAI", "modelUrl": google.url, "token": GEMINI_KEY}
            else:
                google.service_account_public_key = _signing_key().public_key()
                model |= {
                    "provider": "GOOGLE_VERTEX_AI",
                    "providerSettings": {"location": "europe-west4", "apiEndpoint": google.url},
                    "token": service_account_json(_signing_key()),
                }
            yield Upstream(provider, google, model, {"google_oauth_url": f"{google.url}/token"})
    elif provider == "bedrock":
        async with bedrock_fake() as bedrock:
            use_fake_aws(monkeypatch, bedrock.url, home)
            nova = "us.amazon.nova-pro-v1:0"
            model = {"provider": "AWS_BEDROCK", "providerModelId": nova, "modelUrl": f"bedrock://{nova}"}
            yield Upstream(provider, bedrock, model, {"bedrock_region": "us-east-1"})
    else:
        raise ValueError(f"no fake for {provider!r}")


def _openai_family_model(provider: str, url: str) -> dict[str, Any]:
    """OpenAI (Chat Completions or Responses), an Azure deployment, Mistral, an OpenAI-compatible server."""
    model: dict[str, Any] = {
        "providerModelId": "gpt-4o",
        "modelUrl": f"{url}/v1",
        "token": "sk-test-0123456789",
    }
    if provider == "openai-responses":
        return {**model, "provider": "OPENAI", "apiType": "RESPONSES"}
    if provider == "azure-openai":
        return {
            **model,
            "provider": "AZURE_OPENAI",
            "modelUrl": None,
            "providerSettings": {
                "baseCustomUrl": url,
                "deploymentName": "gpt4o-prod",
                "apiVersion": "2024-10-21",
            },
        }
    if provider == "mistral":
        return {**model, "provider": "MISTRAL", "providerModelId": "mistral-large-latest"}
    if provider == "openai-compatible":
        return {**model, "provider": "OPENAI_COMPATIBLE"}
    return {**model, "provider": "OPENAI"}
