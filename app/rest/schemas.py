"""Request bodies of the OpenAI-compatible API, with OpenAI's parameter names.

Only the shape is checked here (types, and parameters Modelgate cannot honour); the rules on the
values (temperature range, token limits, empty messages, …) are the gateway's. Parameters that only
tune sampling or bookkeeping (`user`, `seed`, `top_p`, penalties, `metadata`, …) are accepted and
ignored; parameters that would change the answer's shape (`n` > 1, `logprobs`, `stop`, audio) are
refused rather than silently dropped, and so is the deprecated `functions`/`function_call` (whose
answers have their own shape: `tools` replaces it). Unknown parameters are refused, as OpenAI does.
The messages, tools and response format are chat_messages.py's and chat_tools.py's.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StrictBool, field_validator

from app.rest.chat_messages import Message
from app.rest.chat_tools import Format, NamedTool, Tool

T = TypeVar("T")


def _refuse(value: T, name: str, *, unless: tuple[Any, ...] = (None,)) -> T:
    if value not in unless:
        raise ValueError(f"{name} is not supported by Modelgate")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    user: str | None = None  # ignored


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    include_usage: bool | None = None


class _Sampling(_Body):
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # Accepted and ignored: the gateway has no such knobs.
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    # Refused unless at their defaults.
    n: int | None = None
    stop: str | list[str] | None = None
    logprobs: Any = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only n=1 is supported")
        return value

    @field_validator("stop")
    @classmethod
    def _no_stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        return _refuse(value or None, "stop")

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: Any) -> Any:
        return _refuse(value, "logprobs", unless=(None, False))


class ChatCompletionRequest(_Sampling):
    messages: list[Message]
    max_completion_tokens: int | None = None
    # Accepted and ignored.
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    verbosity: str | None = None
    prediction: Any = None
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedTool | None = None
    parallel_tool_calls: StrictBool | None = None
    response_format: Format | None = None
    # Refused unless at their defaults.
    functions: list[Any] | None = None
    function_call: Any = None
    top_logprobs: int | None = None
    modalities: list[str] | None = None
    audio: Any = None

    @field_validator("functions", "function_call")
    @classmethod
    def _no_functions(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError("the deprecated function calling is not supported by Modelgate: use 'tools'")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _no_top_logprobs(cls, value: int | None) -> int | None:
        return _refuse(value, "top_logprobs")

    @field_validator("modalities")
    @classmethod
    def _text_modality(cls, value: list[str] | None) -> list[str] | None:
        return _refuse(value, "audio output", unless=(None, ["text"]))

    @field_validator("audio")
    @classmethod
    def _no_audio(cls, value: Any) -> Any:
        return _refuse(value, "audio output")

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    # Refused unless at their defaults.
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("give exactly one prompt")
        return value

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, value: bool | None) -> bool | None:
        return _refuse(value, "streaming on /v1/completions (use /v1/chat/completions)", unless=(None, False))

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, value: bool | None) -> bool | None:
        return _refuse(value, "echo", unless=(None, False))

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, value: str | None) -> str | None:
        return _refuse(value, "suffix")

    @field_validator("best_of")
    @classmethod
    def _one_best(cls, value: int | None) -> int | None:
        return _refuse(value, "best_of other than 1", unless=(None, 1))

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class EmbeddingRequest(_Body):
    input: str | list[str]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None

    @field_validator("dimensions")
    @classmethod
    def _no_dimensions(cls, value: int | None) -> int | None:
        return _refuse(value, "dimensions")

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.input,) if isinstance(self.input, str) else tuple(self.input)
