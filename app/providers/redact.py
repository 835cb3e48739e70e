"""Reducing upstream error text to something safe to show a caller.

Providers sometimes echo parts of the request or the key in error messages ("Incorrect API key
provided: sk-abc…"). Only a short, redacted excerpt of the upstream message leaves the adapter.
"""

from __future__ import annotations

import re

_MAX_DETAIL = 300
_SECRET_LIKE = re.compile(
    r"(?i)(bearer\s+\S+|sk-[a-z0-9_\-*]{4,}|(?:api[-_ ]?key|token|secret)[\"':= ]+\S+|[A-Za-z0-9+/_\-]{32,})"
)


def safe_detail(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _SECRET_LIKE.sub("[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
