"""The webhook signature: what the sender signs is what README "Alerts"' verification snippet (run
as written) accepts; a changed body, another secret or an old timestamp is refused."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.domain.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, verify

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec_unit_0123456789abcdefghijkl"
BODY = b'{"id":"e1","type":"MODEL_TRIPPED","data":{"modelName":"support-bot"}}'


@pytest.fixture(scope="module")
def readme_verify() -> Callable[..., bool]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Alerts") :]
    (snippet,) = re.findall(r"```python\n(.*?)```", section[: section.index("\n## ", 3)], re.DOTALL)
    namespace: dict[str, object] = {}
    exec(snippet, namespace)  # noqa: S102 (the README's own example)
    found = namespace["verify"]
    assert callable(found)
    return found  # type: ignore[no-any-return]


def headers(secret: str, at: int, body: bytes = BODY) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(at), SIGNATURE_HEADER: signature(secret, at, body)}


def test_the_readme_snippet_accepts_what_modelgate_signs(readme_verify: Callable[..., bool]) -> None:
    now = int(time.time())
    assert readme_verify(SECRET, headers(SECRET, now), BODY)
    assert verify(SECRET, str(now), BODY, headers(SECRET, now)[SIGNATURE_HEADER], now=now)


@pytest.mark.parametrize(
    ("case", "secret", "age", "body"),
    [
        ("another secret", "whsec_other_0123456789abcdefghij", 0, BODY),
        ("a changed body", SECRET, 0, BODY.replace(b"support-bot", b"other-bot")),
        ("an old timestamp (a replay)", SECRET, 301, BODY),
    ],
)
def test_the_snippet_and_verify_refuse(
    readme_verify: Callable[..., bool], case: str, secret: str, age: int, body: bytes
) -> None:
    now = int(time.time())
    signed = headers(secret, now - age)
    assert not readme_verify(SECRET, signed, body), case
    assert not verify(SECRET, signed[TIMESTAMP_HEADER], body, signed[SIGNATURE_HEADER], now=now), case


def test_the_signed_string_is_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, BODY) == f"v1={expected}"
