"""A Bedrock model registered the documented way: `modelUrl: "bedrock://<model-id>"` with the token
"iam" (the server's IAM chain), and no providerModelId: the model id is read from the URL. A URL and a
providerModelId that name different models are refused. The server's AWS identity is the platform's,
so Bedrock models are system models (organizations use them through variants)."""

from __future__ import annotations

import pytest

from app.domain.enums import Provider
from app.domain.models import bedrock_model_id
from tests.support.catalog import SYSTEM_CREATE, SYSTEM_UPDATE, system_model
from tests.support.graphql import GraphQLClient

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
PROFILE_ARN = "arn:aws:bedrock:eu-central-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku"


def bedrock(name: str, **values: object) -> dict[str, object]:
    return {"name": name, "provider": "AWS_BEDROCK", "modelGroup": "CHAT", "token": "iam", **values}


@pytest.fixture
def admin(gql: GraphQLClient, admin_key: str) -> GraphQLClient:
    return gql.with_key(admin_key)


async def test_a_system_model_takes_its_model_id_from_the_url(gql: GraphQLClient, admin_key: str) -> None:
    values = system_model("claude-haiku-bedrock", provider="AWS_BEDROCK", modelUrl=f"bedrock://{HAIKU}")
    del values["providerModelId"]
    payload = await gql.with_key(admin_key).mutate(SYSTEM_CREATE, {**values, "token": "iam"})
    assert payload["userErrors"] == []
    assert payload["model"]["providerModelId"] == HAIKU
    assert payload["model"]["modelUrl"] == f"bedrock://{HAIKU}"
    assert payload["model"]["hasToken"] is True


async def test_the_model_id_may_be_an_inference_profile(admin: GraphQLClient) -> None:
    payload = await admin.mutate(SYSTEM_CREATE, bedrock("haiku", modelUrl=f"bedrock://{HAIKU}"))
    assert payload["userErrors"] == []
    assert payload["model"]["providerModelId"] == HAIKU

    # An inference-profile ARN, percent-encoded in the URL as the adapter reads it.
    arn_url = "bedrock://" + PROFILE_ARN.replace("/", "%2F")
    payload = await admin.mutate(SYSTEM_CREATE, bedrock("profile", modelUrl=arn_url))
    assert payload["userErrors"] == []
    assert payload["model"]["providerModelId"] == PROFILE_ARN

    # Both, naming the same model: fine.
    same = bedrock("both", modelUrl=f"bedrock://{HAIKU}", providerModelId=HAIKU)
    assert (await admin.mutate(SYSTEM_CREATE, same))["userErrors"] == []


async def test_a_url_and_a_provider_model_id_that_disagree_are_refused(admin: GraphQLClient) -> None:
    conflict = bedrock("conflict", modelUrl=f"bedrock://{HAIKU}", providerModelId="amazon.nova-lite-v1:0")
    payload = await admin.mutate(SYSTEM_CREATE, conflict)
    assert payload["model"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "INVALID"
    assert error["field"] == ["input", "modelUrl"]
    assert HAIKU in error["message"]
    assert "amazon.nova-lite-v1:0" in error["message"]

    # Neither: still required.
    payload = await admin.mutate(SYSTEM_CREATE, bedrock("neither"))
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("REQUIRED", ["input", "providerModelId"])
    ]

    # An update that makes them disagree is refused too, and writes nothing.
    created = await admin.mutate(SYSTEM_CREATE, bedrock("later", modelUrl=f"bedrock://{HAIKU}"))
    model = created["model"]
    payload = await admin.mutate(
        SYSTEM_UPDATE,
        {
            "id": model["id"],
            "expectedUpdatedAt": model["updatedAt"],
            "providerModelId": "amazon.nova-lite-v1:0",
        },
    )
    assert [e["field"] for e in payload["userErrors"]] == [["input", "modelUrl"]]


@pytest.mark.parametrize(
    ("provider", "url", "expected"),
    [
        (Provider.AWS_BEDROCK, f"bedrock://{HAIKU}", HAIKU),
        (Provider.AWS_BEDROCK, f"bedrock://{HAIKU}/", HAIKU),
        (Provider.AWS_BEDROCK, "bedrock://", None),
        (Provider.AWS_BEDROCK, "https://bedrock-runtime.eu-central-1.amazonaws.com", None),
        (Provider.AWS_BEDROCK, None, None),
        (Provider.OPENAI, f"bedrock://{HAIKU}", None),
    ],
)
def test_bedrock_model_id(provider: Provider, url: str | None, expected: str | None) -> None:
    assert bedrock_model_id(provider, url) == expected
