"""Receivers of alert deliveries on loopback: a real SMTP server (aiosmtpd) and a webhook endpoint
that checks every signature it gets."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import orjson
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.domain.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.support.process import free_port


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())


class _Handler:
    def __init__(self, inbox: list[ReceivedMail], refused: frozenset[str]) -> None:
        self.inbox = inbox
        self.refused = refused

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.inbox.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 OK"


@contextlib.contextmanager
def smtp_server(refused: frozenset[str] = frozenset()) -> Any:
    """Yields (smtp_url, inbox): a plain SMTP server on a free loopback port, which refuses the
    `refused` recipients for good (550)."""
    inbox: list[ReceivedMail] = []
    port = free_port()
    controller = Controller(_Handler(inbox, refused), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()


@dataclass
class Hook:
    """One POST the webhook receiver got, and whether its signature checked out."""

    headers: dict[str, str]
    body: dict[str, Any]
    signature_valid: bool
    at: float  # monotonic


@dataclass
class WebhookReceiver:
    url: str
    secret: str = ""
    received: list[Hook] = field(default_factory=list)
    # The status each request is answered with, by its index (0: the first request).
    status_for: Callable[[int], int] = lambda _: 200
    # When set, each request waits for this event before it is answered (a receiver that hangs).
    hang: asyncio.Event | None = None

    def events(self, kind: str | None = None) -> list[Hook]:
        return [h for h in self.received if kind is None or h.body["type"] == kind]


@contextlib.asynccontextmanager
async def webhook_receiver(secret: str = "") -> AsyncIterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/hook", secret=secret)

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        index = len(receiver.received)
        valid = verify(
            receiver.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            raw,
            request.headers.get(SIGNATURE_HEADER, ""),
            now=time.time(),
        )
        receiver.received.append(Hook(dict(request.headers), orjson.loads(raw), valid, time.monotonic()))
        if receiver.hang is not None:
            await receiver.hang.wait()
        return web.Response(status=receiver.status_for(index), text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        if receiver.hang is not None:
            receiver.hang.set()
        await runner.cleanup()


async def eventually(check: Callable[[], Any], within: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.05)


__all__ = [
    "EVENT_ID_HEADER",
    "Hook",
    "ReceivedMail",
    "WebhookReceiver",
    "eventually",
    "smtp_server",
    "webhook_receiver",
]
