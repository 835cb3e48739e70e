"""Response headers of a call: who served it, and lifecycle warnings as HTTP deprecation headers.

- `x-modelgate-served-by`: the id of the model that answered (after a fallback or migration);
- `x-modelgate-warnings`: the warning codes, comma-separated (MODEL_DEPRECATED, MODEL_MIGRATED,
  FALLBACK_USED); their messages are in the body's `modelgate.warnings`;
- for a deprecated (or end-of-life, migrated) model: `Deprecation` (RFC 9745, `@<unix seconds>`:
  Modelgate does not record when a model was deprecated, so this is the time of the answer, or the
  end of life if that has passed), `Sunset` (RFC 8594, the end of life as an HTTP date) and
  `Link: </v1/models/{replacement id}>; rel="successor-version"` when the caller may use the
  replacement. The gateway's warnings carry all of it (`app.domain.gateway.CallWarning`).
"""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime

from app.domain.gateway import CallWarning, WarningCode
from app.domain.ids import model_global_id
from app.domain.models import EffectiveModel

SERVED_BY = "x-modelgate-served-by"
_LIFECYCLE = (WarningCode.MODEL_DEPRECATED, WarningCode.MODEL_MIGRATED)


def call_headers(served: EffectiveModel, warnings: tuple[CallWarning, ...]) -> dict[str, str]:
    headers = {SERVED_BY: model_global_id(served.record)}
    if not warnings:
        return headers
    headers["x-modelgate-warnings"] = ", ".join(w.code.value for w in warnings)
    lifecycle = next((w for w in warnings if w.code in _LIFECYCLE), None)
    if lifecycle is None or lifecycle.deprecated_since is None:
        return headers
    headers["Deprecation"] = f"@{int(lifecycle.deprecated_since.timestamp())}"
    if lifecycle.end_of_life_at is not None:
        headers["Sunset"] = format_datetime(lifecycle.end_of_life_at.astimezone(UTC), usegmt=True)
    if lifecycle.replacement is not None:
        successor = model_global_id(lifecycle.replacement.record)
        headers["Link"] = f'</v1/models/{successor}>; rel="successor-version"'
    return headers
