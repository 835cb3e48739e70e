"""The starter system catalog (app/catalog/starter_catalog.json) obeys DESIGN.md's model rules, so
`seed-catalog` can load every entry as it is."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

from app.domain.enums import ApiType, ModelGroup, Provider
from app.domain.models import AccessTier, Capability

CATALOG_FILE = Path(__file__).resolve().parents[2] / "app" / "catalog" / "starter_catalog.json"
FIELDS = {
    "name",
    "description",
    "provider",
    "providerModelId",
    "modelUrl",
    "modelGroup",
    "apiType",
    "contextWindow",
    "maxOutputTokens",
    "capabilities",
    "creditMultiplier",
    "accessTier",
    "isVisible",
    "isRecommended",
}


def load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(CATALOG_FILE.read_text())
    return document


MODELS: list[dict[str, Any]] = load()["models"]


def by_name(model: dict[str, Any]) -> str:
    return str(model["name"])


def test_the_file_is_versioned_and_lists_models() -> None:
    document = load()
    assert set(document) == {"version", "models"}
    assert document["version"] == 1
    assert len(MODELS) >= 10


def test_names_are_unique_ignoring_case() -> None:
    # The database's unique index is on lower(name) within the system catalog.
    names = [m["name"].lower() for m in MODELS]
    assert len(names) == len(set(names))


def test_each_provider_model_is_listed_once() -> None:
    pairs = [(m["provider"], m["providerModelId"]) for m in MODELS]
    assert len(pairs) == len(set(pairs))


@pytest.mark.parametrize("model", MODELS, ids=by_name)
def test_an_entry_has_exactly_the_system_model_fields(model: dict[str, Any]) -> None:
    assert set(model) == FIELDS


@pytest.mark.parametrize("model", MODELS, ids=by_name)
def test_an_entry_obeys_the_field_rules(model: dict[str, Any]) -> None:
    assert isinstance(model["name"], str)
    assert 1 <= len(model["name"]) <= 200
    assert model["name"] == model["name"].strip()
    assert isinstance(model["description"], str)
    assert 1 <= len(model["description"]) <= 2000
    assert model["provider"] in set(Provider)
    assert isinstance(model["providerModelId"], str)
    assert model["providerModelId"]
    # null: the provider's public API base.
    assert model["modelUrl"] is None or model["modelUrl"].startswith("https://")
    assert model["modelGroup"] in set(ModelGroup)
    assert model["apiType"] in set(ApiType)
    assert model["accessTier"] in set(AccessTier)
    assert isinstance(model["isVisible"], bool)
    assert isinstance(model["isRecommended"], bool)


@pytest.mark.parametrize("model", MODELS, ids=by_name)
def test_an_entry_has_valid_limits(model: dict[str, Any]) -> None:
    window, output = model["contextWindow"], model["maxOutputTokens"]
    assert type(window) is int
    assert 1 <= window <= 2_000_000
    if output is None:
        # Embeddings produce vectors, not tokens: no output limit applies.
        assert model["modelGroup"] == ModelGroup.EMBEDDING
    else:
        assert type(output) is int
        assert 1 <= output <= 200_000
        assert output <= window


@pytest.mark.parametrize("model", MODELS, ids=by_name)
def test_an_entry_has_known_capabilities_once_each(model: dict[str, Any]) -> None:
    capabilities = model["capabilities"]
    assert isinstance(capabilities, list)
    assert set(capabilities) <= set(Capability)
    assert len(capabilities) == len(set(capabilities))
    if model["modelGroup"] == ModelGroup.EMBEDDING:
        assert capabilities == []


@pytest.mark.parametrize("model", MODELS, ids=by_name)
def test_an_entry_has_a_non_negative_decimal_credit_multiplier(model: dict[str, Any]) -> None:
    # A string, so that no binary float rounding creeps into credits.
    assert isinstance(model["creditMultiplier"], str)
    try:
        multiplier = Decimal(model["creditMultiplier"])
    except InvalidOperation:
        pytest.fail(f"not a decimal: {model['creditMultiplier']!r}")
    assert multiplier.is_finite()
    assert multiplier >= 0


def test_there_is_exactly_one_echo_model_and_it_is_the_offline_demo() -> None:
    (echo,) = [m for m in MODELS if m["provider"] == Provider.ECHO]
    assert echo["providerModelId"] == "echo-1"
    assert echo["name"] == "Echo (demo)"
    assert echo["modelGroup"] == ModelGroup.CHAT
    assert echo["accessTier"] == AccessTier.STANDARD
    # It calls a demo tool, looks at images and answers in JSON, so those paths run offline too.
    assert echo["capabilities"] == [
        Capability.STREAMING,
        Capability.TOOLS,
        Capability.VISION,
        Capability.STRUCTURED_OUTPUT,
    ]
    assert (echo["contextWindow"], echo["maxOutputTokens"]) == (8192, 1024)
    assert Decimal(echo["creditMultiplier"]) == 0
    assert "offline" in echo["description"]
    assert "repeats your message" in echo["description"]


def test_the_catalog_covers_every_major_provider_with_chat_and_embeddings() -> None:
    for provider in (Provider.OPENAI, Provider.GOOGLE_GENAI, Provider.AWS_BEDROCK, Provider.MISTRAL):
        groups = {m["modelGroup"] for m in MODELS if m["provider"] == provider}
        assert groups == {ModelGroup.CHAT, ModelGroup.EMBEDDING}, provider
    # Anthropic has no embeddings endpoint.
    assert {m["modelGroup"] for m in MODELS if m["provider"] == Provider.ANTHROPIC} == {ModelGroup.CHAT}


def test_the_model_ids_the_wire_format_reference_names_are_included() -> None:
    ids = {m["providerModelId"] for m in MODELS}
    assert {
        "gpt-4o-mini",
        "gpt-4.1",
        "text-embedding-3-small",
        "claude-sonnet-4-5",
        "text-embedding-004",
        "us.amazon.nova-micro-v1:0",
        "amazon.titan-embed-text-v2:0",
        "mistral-embed",
    } <= ids


def test_premium_models_cost_more_than_every_standard_chat_model_of_their_provider() -> None:
    # PREMIUM marks the expensive flagships: a cheaper STANDARD sibling must exist.
    premiums = [m for m in MODELS if m["accessTier"] == AccessTier.PREMIUM]
    assert premiums
    for premium in premiums:
        siblings = [
            Decimal(m["creditMultiplier"])
            for m in MODELS
            if m["provider"] == premium["provider"]
            and m["modelGroup"] == ModelGroup.CHAT
            and m["accessTier"] == AccessTier.STANDARD
        ]
        assert siblings, premium["name"]
        assert Decimal(premium["creditMultiplier"]) > max(siblings), premium["name"]
