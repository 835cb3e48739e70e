"""MODELGATE_SMTP_URL: where alert emails go, and how (STARTTLS when offered, required, never; or
TLS from the start); a wrong URL is refused without repeating it (it may hold a password)."""

from __future__ import annotations

import pytest

from app.channels.email import SmtpServer


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", SmtpServer("mail.example.com", 25, False, None, None, None)),
        (
            "smtp://mail.example.com:587?starttls=true",
            SmtpServer("mail.example.com", 587, False, True, None, None),
        ),
        ("smtp://127.0.0.1:1025?starttls=false", SmtpServer("127.0.0.1", 1025, False, False, None, None)),
        ("smtps://mail.example.com", SmtpServer("mail.example.com", 465, True, None, None, None)),
        (
            "smtps://alerts%40acme.test:p%40ss@mail.example.com:2465",
            SmtpServer("mail.example.com", 2465, True, None, "alerts@acme.test", "p@ss"),
        ),
    ],
)
def test_the_url_says_where_and_how(url: str, expected: SmtpServer) -> None:
    assert SmtpServer.parse(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@mail.example.com",
        "smtp://",
        "smtp://user:hunter2@mail.example.com?starttls=maybe",
        "smtps://user:hunter2@mail.example.com?starttls=true",
    ],
)
def test_a_wrong_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ValueError, match=r"MODELGATE_SMTP_URL|starttls") as refused:
        SmtpServer.parse(url)
    assert "hunter2" not in str(refused.value)
