"""Reducing upstream error text to something safe to show a caller.

Providers echo parts of the request or the key in error messages, whole or cut ("Incorrect API key
provided: sk-abcd…wxyz"). Before a message leaves the adapter:
- every run of 8 or more characters that also occurs in a secret sent on that call is replaced: a
  whole secret, a prefix, a middle part, each half of an ellipsis-joined echo (a secret shorter than
  8 characters is replaced where it occurs whole);
- whatever looks like a credential of any kind (bearer tokens, sk- keys, long opaque strings) too;
- only a short excerpt is kept.

Finding the runs is linear in the secrets plus the message: every 8-character window of the secrets
goes into a set, every window of the message is looked up, and overlapping hits merge into one span.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_SECRET_RUN = 8
_MAX_SCAN = 1000  # characters of an upstream message scanned: enough for the detail kept
_MAX_DETAIL = 300
_SECRET_LIKE = re.compile(
    r"(?i)("
    r"bearer\s+\S+"
    r"|sk-[a-z0-9_\-*]{4,}"
    r"|(?:api[-_ ]?key|token|secret)[\"']?\s*[:=]\s*\S+"
    r"|[A-Za-z0-9+/_\-]{32,}"
    r")"
)


def safe_detail(text: str, secrets: Iterable[str] = ()) -> str:
    text = redact_secrets(text[:_MAX_SCAN], secrets)
    text = _SECRET_LIKE.sub(REDACTED, text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every run of at least MIN_SECRET_RUN characters found in one of `secrets` replaced."""
    windows: set[str] = set()
    for secret in secrets:
        if len(secret) >= MIN_SECRET_RUN:
            windows.update(secret[i : i + MIN_SECRET_RUN] for i in range(len(secret) - MIN_SECRET_RUN + 1))
        elif secret:
            text = text.replace(secret, REDACTED)
    if not windows:
        return text
    spans: list[tuple[int, int]] = []
    for start in range(len(text) - MIN_SECRET_RUN + 1):
        if text[start : start + MIN_SECRET_RUN] in windows:
            if spans and start <= spans[-1][1]:  # overlaps or touches the span before: extend it
                spans[-1] = (spans[-1][0], start + MIN_SECRET_RUN)
            else:
                spans.append((start, start + MIN_SECRET_RUN))
    kept: list[str] = []
    copied = 0
    for start, end in spans:
        kept += (text[copied:start], REDACTED)
        copied = end
    kept.append(text[copied:])
    return "".join(kept)
