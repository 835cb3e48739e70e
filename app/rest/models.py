"""GET /v1/models and GET /v1/models/{id}: the caller's `availableModels`, in OpenAI's shape.

`id` is the Modelgate model id (what `model` takes); Modelgate's own fields are under `modelgate`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from app.domain.gateway import ModelRef
from app.domain.ids import model_global_id
from app.domain.models import Capability, EffectiveModel, ModelKind
from app.rest.caller import Caller, caller_of
from app.rest.errors import RestError
from app.rest.responses import json_response


async def list_models(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    available = await _available(caller)
    ids = {m.id: model_global_id(m.record) for m in available}
    now = caller.services.models.clock()
    return json_response({"object": "list", "data": [model_object(m, ids, now) for m in available]})


async def retrieve_model(request: web.Request) -> web.StreamResponse:
    caller = await caller_of(request)
    wanted = request.match_info["model"]
    available = await _available(caller)
    ids = {m.id: model_global_id(m.record) for m in available}
    matches = [m for m in available if ModelRef.parse(wanted).matches(m)]  # as a call's `model` reads
    if len(matches) != 1:
        raise RestError(
            404,
            f"The model {wanted!r} does not exist or you do not have access to it",
            code="model_not_found",
            param="model",
        )
    return json_response(model_object(matches[0], ids, caller.services.models.clock()))


async def _available(caller: Caller) -> list[EffectiveModel]:
    return await caller.services.models.available(caller.principal, caller.project_id, None)


def model_object(model: EffectiveModel, ids: dict[Any, str], now: datetime) -> dict[str, Any]:
    record = model.record
    lifecycle = model.lifecycle(now)
    capabilities = model.capabilities
    return {
        "id": ids[model.id],
        "object": "model",
        "created": int(record.created_at.timestamp()),
        "owned_by": "system" if record.kind is ModelKind.SYSTEM else "organization",
        "modelgate": {
            "name": record.name,
            "description": record.description,
            "kind": record.kind.value,
            "provider": model.provider.value,
            "providerModelId": model.provider_model_id,
            "modelGroup": record.model_group.value,
            "apiType": model.api_type.value,
            "contextWindow": model.context_window,
            "maxOutputTokens": model.max_output_tokens,
            "capabilities": {c.value.lower(): c in capabilities for c in Capability},
            "creditMultiplier": str(model.credit_multiplier),
            "accessTier": model.access_tier.value,
            "lifecycleState": lifecycle.state.value,
            "endOfLifeAt": lifecycle.end_of_life_at.isoformat() if lifecycle.end_of_life_at else None,
            "deprecationNotice": lifecycle.deprecation_notice,
            # Named only when the caller may call the replacement.
            "replacementId": ids.get(lifecycle.replacement_model_id),
            "isRecommended": record.is_recommended,
            "isDefault": record.is_default,
        },
    }
