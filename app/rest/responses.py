"""The pieces every answer shares: JSON bodies, usage, finish reasons and Modelgate's extension."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from app.domain.calls import Usage
from app.domain.enums import FinishReason
from app.domain.gateway import CallWarning
from app.domain.ids import model_global_id
from app.domain.models import EffectiveModel

_FINISH_REASONS = {
    FinishReason.STOP: "stop",
    FinishReason.LENGTH: "length",
    FinishReason.CONTENT_FILTER: "content_filter",
    FinishReason.TOOL_CALLS: "tool_calls",
    FinishReason.CANCELLED: "stop",
}


def json_response(body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json", headers=headers)


def finish_reason(reason: FinishReason) -> str:
    return _FINISH_REASONS.get(reason, "stop")


def usage_object(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def modelgate_extension(
    request_id: str,
    requested: EffectiveModel,
    served: EffectiveModel,
    credits: Decimal,
    warnings: tuple[CallWarning, ...],
) -> dict[str, Any]:
    """What OpenAI's shape has no place for, under one namespaced key (the SDKs keep unknown
    fields: `completion.model_extra["modelgate"]`)."""
    return {
        "requestId": request_id,
        "model": model_global_id(requested.record),
        "servedBy": {"id": model_global_id(served.record), "name": served.record.name},
        "credits": str(credits),
        "warnings": [
            {
                "code": w.code.value,
                "message": w.message,
                "endOfLifeAt": w.end_of_life_at.isoformat() if w.end_of_life_at else None,
            }
            for w in warnings
        ],
    }
