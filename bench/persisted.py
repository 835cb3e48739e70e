"""The persisted-operation path of scenario 1: the same `generate` as Modelgate's plain GraphQL target,
sent by its hash alone (Apollo's automatic persisted queries) after one request that registers it."""

from __future__ import annotations

import hashlib

import aiohttp
import orjson

from bench.scenarios import GENERATE, MESSAGE, HttpTarget

EXTENSIONS = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(GENERATE.encode()).hexdigest()}}


def _variables(model_id: str) -> dict[str, object]:
    return {"i": {"model": model_id, "prompt": MESSAGE}}


def persisted_target(modelgate: str, key: str, model_id: str) -> HttpTarget:
    body = {"extensions": EXTENSIONS, "variables": _variables(model_id)}
    return HttpTarget(
        "modelgate-persisted", f"{modelgate}/graphql", orjson.dumps(body).decode(), {"X-API-Key": key}, "w40"
    )


async def register(modelgate: str, key: str, model_id: str) -> None:
    """The text with its hash, once: what a client sends after its first `PersistedQueryNotFound`."""
    body = {"query": GENERATE, "extensions": EXTENSIONS, "variables": _variables(model_id)}
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{modelgate}/graphql", json=body, headers={"X-API-Key": key})
        answer = await response.json(content_type=None)
    assert "w40" in orjson.dumps(answer).decode(), answer
