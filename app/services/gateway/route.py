"""Who serves a call, as the resolver decided it: the organization and project it is made in, the
model asked for, the primary that serves it (the requested model, or its replacement) and the
fallbacks; what each of them is asked (the call with its system prompt composed), the warnings
of whichever answers, and the limits checked on the primary before any provider is called."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from app.domain.gateway import (
    CallOperation,
    CallWarning,
    GatewayError,
    GatewayErrorCode,
    TripPolicy,
    WarningCode,
)
from app.domain.tenancy import Organization
from app.domain.tokens import estimate_input_tokens
from app.providers.base import ChatRequest
from app.services.gateway.requests import CallRequest
from app.services.model_cache import ResolvedModel


@dataclass(frozen=True, slots=True)
class Requested:
    """A call's organization, project and the model it asks for: enough to meter it."""

    organization: Organization
    project_id: UUID | None
    model: ResolvedModel


@dataclass(frozen=True, slots=True)
class Route:
    """Who serves a call: `primary` (the requested model, or its replacement), then fallbacks."""

    organization: Organization
    project_id: UUID | None
    requested: ResolvedModel
    primary: ResolvedModel
    fallbacks: tuple[ResolvedModel, ...]
    trip_policy: TripPolicy | None
    warnings: tuple[CallWarning, ...] = field(default=())
    _requests: dict[UUID, ChatRequest] = field(default_factory=dict, compare=False, repr=False)

    @property
    def models(self) -> tuple[ResolvedModel, ...]:
        return (self.primary, *self.fallbacks)

    def chat_request(self, model: ResolvedModel, call: CallRequest) -> ChatRequest:
        """What `model` is asked for `call`: its system prompt composed (the model's effective one
        first, then the caller's), once per model of the route (the context-window check, the
        quota estimate and the attempt share it)."""
        request = self._requests.get(model.model.id)
        if request is None:
            prompts = [p for p in (model.system_prompt, call.system_prompt) if p]
            request = ChatRequest(
                messages=call.messages,
                system_prompt="\n\n".join(prompts) or None,
                temperature=call.temperature,
                max_tokens=call.max_tokens,
                tools=call.tools,
                tool_choice=call.tool_choice,
                parallel_tool_calls=call.parallel_tool_calls,
                response_format=call.response_format,
            )
            self._requests[model.model.id] = request
        return request

    def warnings_for(self, served: ResolvedModel) -> tuple[CallWarning, ...]:
        """The route's warnings, and a fallback's when `served` is not the primary."""
        if served is self.primary:
            return self.warnings
        fallback = CallWarning(
            WarningCode.FALLBACK_USED,
            f"{self.primary.model.record.name} failed; served by its fallback {served.model.record.name}",
        )
        return (*self.warnings, fallback)


def check_limits(route: Route, call: CallRequest) -> None:
    """The output limit and the context window, on the model that will serve the call."""
    model = route.primary.model
    operation, max_tokens = call.operation, call.max_tokens
    if (
        max_tokens is not None
        and model.max_output_tokens is not None
        and max_tokens > model.max_output_tokens
    ):
        raise GatewayError(
            GatewayErrorCode.MAX_TOKENS_TOO_LARGE,
            f"{model.record.name} writes at most {model.max_output_tokens} tokens",
            field=("input", "maxTokens"),
        )
    if model.context_window is not None and operation is not CallOperation.EMBED:
        estimate = input_estimate(route.chat_request(route.primary, call))
        if estimate > model.context_window:
            raise GatewayError(
                GatewayErrorCode.CONTEXT_TOO_LONG,
                f"the input is about {estimate} tokens; "
                f"{model.record.name} takes at most {model.context_window}",
                field=("input", "messages" if operation is not CallOperation.GENERATE else "prompt"),
            )


def input_estimate(request: ChatRequest) -> int:
    """About how many tokens `request` sends: its texts, tool calls and definitions, and images."""
    return estimate_input_tokens(request.texts(), request.image_count)
