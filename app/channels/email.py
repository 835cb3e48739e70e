"""Alert emails over SMTP (aiosmtplib): one message per recipient, plain text and HTML.

`MODELGATE_SMTP_URL` says where: `smtp://[user:password@]host[:port]` (port 25 by default; STARTTLS
when the server offers it, or always with `?starttls=true`, never with `?starttls=false`) or
`smtps://[user:password@]host[:port]` (TLS from the start, port 465 by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from app.channels import DeliveryFailed
from app.domain.notifications import ClaimedDelivery

# Headers unfolded up to SMTP's line limit: a long subject stays one line for every mail client.
_POLICY = SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class SmtpServer:
    hostname: str
    port: int
    use_tls: bool
    start_tls: bool | None  # None: when the server offers it
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        """Raises ValueError (without the URL, which may hold a password) when it is not valid."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("MODELGATE_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
        use_tls = parts.scheme == "smtps"
        starttls = parse_qs(parts.query).get("starttls", [""])[-1].lower()
        if starttls not in ("", "true", "false"):
            raise ValueError("the starttls option of MODELGATE_SMTP_URL must be true or false")
        if use_tls and starttls:
            raise ValueError("smtps:// is TLS from the start: starttls does not apply")
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            use_tls=use_tls,
            start_tls=None if not starttls else starttls == "true",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def message_for(delivery: ClaimedDelivery, sender: str) -> EmailMessage:
    assert delivery.email is not None
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = delivery.email
    message["Subject"] = f"[Modelgate] {delivery.subject}"
    message["Date"] = format_datetime(delivery.created_at)
    message["Message-ID"] = make_msgid(domain="modelgate")
    # The same on every try, so that a mail client can tell a repeat.
    message["X-Modelgate-Event-Id"] = str(delivery.notification_id)
    message["X-Modelgate-Event"] = delivery.kind.value
    message.set_content(delivery.body)
    message.add_alternative(delivery.html_body, subtype="html")
    return message


class EmailSender:
    def __init__(self, server: SmtpServer, sender: str, *, timeout: float) -> None:
        self.server = server
        self.sender = sender
        self.timeout = timeout

    async def send(self, delivery: ClaimedDelivery) -> None:
        server = self.server
        try:
            # As bytes: aiosmtplib would flatten a message object again, folding long headers.
            await aiosmtplib.send(
                bytes(message_for(delivery, self.sender)),
                sender=parseaddr(self.sender)[1],
                recipients=[delivery.email or ""],
                hostname=server.hostname,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.use_tls,
                start_tls=server.start_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"the mail server refused the recipient: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx: the server will not take it, however often asked; 4xx: try again later.
            raise DeliveryFailed(
                f"the mail server answered {exc.code}: {exc.message}", permanent=exc.code >= 500
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"could not reach the mail server: {exc or type(exc).__name__}") from exc
