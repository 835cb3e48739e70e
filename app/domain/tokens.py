"""Token estimates for checks made before a provider is called (context window, streamed usage when
a provider reports none). About four characters a token, plus a little per message for roles, and
a fixed figure per image."""

from __future__ import annotations

from collections.abc import Iterable

_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
# What an image is counted as before a provider says: providers differ (OpenAI ~765 for a 1024px
# image at high detail, Anthropic ~1600 at its largest, Gemini 258), so one round figure above most.
IMAGE_TOKENS = 1000


def estimate_tokens(text: str) -> int:
    return (len(text) + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN


def estimate_prompt_tokens(texts: Iterable[str]) -> int:
    return sum(estimate_tokens(t) + _TOKENS_PER_MESSAGE for t in texts)


def estimate_input_tokens(texts: Iterable[str], images: int = 0) -> int:
    """A request's input: its texts (tool definitions included) and its images."""
    return estimate_prompt_tokens(texts) + images * IMAGE_TOKENS
