"""Response headers of a call: who served it, and lifecycle warnings as HTTP deprecation headers.

- `x-modelgate-served-by`: the id of the model that answered (after a fallback or migration);
- `x-modelgate-warnings`: the warning codes, comma-separated (MODEL_DEPRECATED, MODEL_MIGRATED,
  FALLBACK_USED); their messages are in the body's `modelgate.warnings`;
- for a deprecated (or end-of-life, migrated) model: `Deprecation` (RFC 9745, `@<unix seconds>`:
  Modelgate does not record when a model was deprecated, so this is the time of the answer, or the
  end of life if that has passed), `Sunset` (RFC 8594, the end of life as an HTTP date) and
  `Link: </v1/models/{replacement id}>; rel="successor-version"` when the caller may see the
  replacement.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from uuid import UUID

from app.domain.errors import AccessDenied
from app.domain.gateway import CallWarning, WarningCode
from app.domain.ids import model_global_id
from app.domain.models import EffectiveModel
from app.rest.caller import Caller

SERVED_BY = "x-modelgate-served-by"
_LIFECYCLE = (WarningCode.MODEL_DEPRECATED, WarningCode.MODEL_MIGRATED)


async def call_headers(
    caller: Caller, served: EffectiveModel, warnings: tuple[CallWarning, ...]
) -> dict[str, str]:
    headers = {SERVED_BY: model_global_id(served.record)}
    if not warnings:
        return headers
    headers["x-modelgate-warnings"] = ", ".join(w.code.value for w in warnings)
    lifecycle = next((w for w in warnings if w.code in _LIFECYCLE), None)
    if lifecycle is None:
        return headers
    now = caller.services.models.clock()
    end_of_life = lifecycle.end_of_life_at
    since = min(now, end_of_life) if end_of_life else now
    headers["Deprecation"] = f"@{int(since.timestamp())}"
    if end_of_life is not None:
        headers["Sunset"] = format_datetime(end_of_life.astimezone(UTC), usegmt=True)
    successor = await _successor(caller, served, lifecycle)
    if successor is not None:
        headers["Link"] = f'</v1/models/{successor}>; rel="successor-version"'
    return headers


async def _successor(caller: Caller, served: EffectiveModel, warning: CallWarning) -> str | None:
    replacement: UUID | None = warning.replacement_model_id
    if replacement is None:
        return None
    if replacement == served.id:  # migrated: the replacement answered
        return model_global_id(served.record)
    try:
        found = await caller.services.models.get(caller.principal, replacement)
    except AccessDenied:
        return None
    return model_global_id(found.record) if found else None
