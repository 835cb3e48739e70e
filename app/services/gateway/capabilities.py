"""The capabilities a call needs from the model that serves it: tools (tool definitions, or tool
calls and results in the conversation) need TOOLS, images need VISION, a JSON Schema answer needs
STRUCTURED_OUTPUT. Checked on the primary before any provider is called; a fallback lacking one is
skipped (it could only fail)."""

from __future__ import annotations

from collections.abc import Mapping

from app.domain.calls import ResponseFormatType
from app.domain.enums import ChatRole
from app.domain.gateway import GatewayError, GatewayErrorCode
from app.domain.models import Capability, EffectiveModel
from app.services.gateway.requests import CallRequest

# How a refusal names what is missing, e.g. "Demo echo does not support tools (capability TOOLS)".
_WHAT = {
    Capability.TOOLS: "tools",
    Capability.VISION: "images",
    Capability.STRUCTURED_OUTPUT: "a JSON Schema answer",
}

Needs = Mapping[Capability, tuple[str, ...]]  # each needed capability, and the input field needing it


def needed(call: CallRequest) -> Needs:
    """What `call` needs, each with the first input field that needs it."""
    needs: dict[Capability, tuple[str, ...]] = {}
    if call.tools:
        needs[Capability.TOOLS] = ("input", "tools")
    for index, message in enumerate(call.messages):
        at = ("input", "messages", str(index))
        if message.tool_calls or message.role is ChatRole.TOOL:
            needs.setdefault(Capability.TOOLS, at)
        if message.images:
            needs.setdefault(Capability.VISION, (*at, "parts"))
    if call.response_format is not None and call.response_format.type is ResponseFormatType.JSON_SCHEMA:
        needs[Capability.STRUCTURED_OUTPUT] = ("input", "responseFormat")
    return needs


def has_all(model: EffectiveModel, needs: Needs) -> bool:
    return set(needs) <= model.capabilities


def require_all(model: EffectiveModel, needs: Needs) -> None:
    for capability, field in needs.items():
        if capability not in model.capabilities:
            raise GatewayError(
                GatewayErrorCode.CAPABILITY_NOT_SUPPORTED,
                f"{model.record.name} does not support {_WHAT[capability]} (capability {capability}); "
                "choose a model that has it",
                field=field,
            )
