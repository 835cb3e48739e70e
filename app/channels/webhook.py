"""Signed webhook POSTs (headers and signing: app/domain/webhooks.py), through the outbound guard:
the URL is checked again before each try, and each address it resolves to at connect time."""

from __future__ import annotations

import time

import aiohttp
import orjson

from app.channels import DeliveryFailed
from app.domain.notifications import ClaimedDelivery
from app.domain.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from app.providers.outbound import UnsafeUpstreamError, check_url, resolver_kwargs

_SHOWN_BODY = 200  # of a refusing receiver's answer, in the delivery's last error


def webhook_body(delivery: ClaimedDelivery) -> bytes:
    """The JSON a receiver gets: the event, what it says, and its facts (`data`)."""
    return orjson.dumps(
        {
            "id": str(delivery.notification_id),
            "type": delivery.kind.value,
            "createdAt": delivery.created_at.isoformat(),
            "organizationId": str(delivery.organization_id) if delivery.organization_id else None,
            "subject": delivery.subject,
            "text": delivery.body,
            "data": delivery.payload,
        }
    )


class WebhookSender:
    def __init__(self, *, allow_private: bool, timeout: float) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(**resolver_kwargs(allow_private=self.allow_private))
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def send(self, delivery: ClaimedDelivery, url: str, secret: str) -> None:
        try:
            check_url(url, allow_private=self.allow_private)
        except UnsafeUpstreamError as exc:
            raise DeliveryFailed(f"the webhook URL {exc}", permanent=True) from exc
        body = webhook_body(delivery)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Modelgate-Webhooks/1",
            EVENT_ID_HEADER: str(delivery.notification_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        }
        try:
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return
                answer = (await response.content.read(_SHOWN_BODY)).decode(errors="replace")
                raise DeliveryFailed(f"the receiver answered {response.status}: {answer}".strip())
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"could not reach the receiver: {exc or type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
