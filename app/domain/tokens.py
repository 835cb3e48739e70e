"""Token estimates for checks made before a provider is called (context window, streamed usage when
a provider reports none). About four characters a token, plus a little per message for roles."""

from __future__ import annotations

from collections.abc import Iterable

_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4


def estimate_tokens(text: str) -> int:
    return (len(text) + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN


def estimate_prompt_tokens(texts: Iterable[str]) -> int:
    return sum(estimate_tokens(t) + _TOKENS_PER_MESSAGE for t in texts)
