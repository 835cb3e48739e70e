"""Reducing upstream error text to something safe to show a caller.

Providers sometimes echo parts of the request or the key in error messages ("Incorrect API key
provided: sk-abc…"). Only a short, redacted excerpt of the upstream message leaves the adapter.
"""

from __future__ import annotations

import re

_MAX_DETAIL = 300
_SECRET_LIKE = re.compile(
    r"(?i)("
    r"bearer\s+\S+"
    r"|sk-[a-z0-9_\-*]{4,}"
    r"|(?:api[-_ ]?key|token|secret)[\"']?\s*[:=]\s*\S+"
    r"|[A-Za-z0-9+/_\-]{32,}"
    r")"
)


def safe_detail(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _SECRET_LIKE.sub("[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
