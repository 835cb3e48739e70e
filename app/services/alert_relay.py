"""The relay: sends the outbox's deliveries, on every instance, each at most once per try.

Each round claims a batch of due deliveries (`FOR UPDATE SKIP LOCKED`, so instances take different
rows) for `claim_timeout` seconds, sends them, and records each outcome: sent, due again after an
exponential backoff, or failed for good after `max_attempts` tries (or at once when trying again
cannot help). A claim whose instance died before recording its outcome expires and the delivery is
taken again; the one window for a repeat is a crash after a send and before its record, which is
why every email and webhook names its event id. Email deliveries are left pending while no SMTP
server is configured. Between rounds the relay also runs the periodic scan (app/services/alert_scan.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from app.channels import DeliveryFailed
from app.channels.email import EmailSender
from app.channels.webhook import WebhookSender
from app.db import DatabaseUnavailable
from app.domain.notifications import ClaimedDelivery, DeliveryChannel, retry_delay
from app.repositories.deliveries import DeliveryRepository
from app.services.alert_scan import AlertScan
from app.services.webhooks import WebhookService

log = logging.getLogger(__name__)

# On shutdown, sends under way get this long to finish and be recorded before they are cut.
_STOP_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    poll_interval: float
    batch_size: int
    claim_timeout: float
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    scan_interval: float


class AlertRelay:
    def __init__(
        self,
        deliveries: DeliveryRepository,
        webhooks: WebhookService,
        email: EmailSender | None,
        webhook_sender: WebhookSender,
        scan: AlertScan,
        policy: RelayPolicy,
    ) -> None:
        self.deliveries = deliveries
        self.webhooks = webhooks
        self.email = email
        self.webhook_sender = webhook_sender
        self.scan = scan
        self.policy = policy
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def channels(self) -> list[DeliveryChannel]:
        """What this instance can send: webhooks always, email when SMTP is configured."""
        return [DeliveryChannel.WEBHOOK] + ([DeliveryChannel.EMAIL] if self.email else [])

    async def relay_once(self) -> int:
        """One round: claims due deliveries and sends them; returns how many it claimed."""
        policy = self.policy
        claimed = await self.deliveries.claim(self.channels, policy.batch_size, policy.claim_timeout)
        await asyncio.gather(*(self._deliver(d) for d in claimed))
        return len(claimed)

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        try:
            await self._send(delivery)
        except DeliveryFailed as exc:
            await self._failed(delivery, str(exc), permanent=exc.permanent)
        except Exception:
            log.exception("an alert delivery failed unexpectedly", extra={"deliveryId": str(delivery.id)})
            await self._failed(delivery, "an internal error; see the server log", permanent=False)
        else:
            await self.deliveries.sent(delivery)

    async def _send(self, delivery: ClaimedDelivery) -> None:
        if delivery.channel is DeliveryChannel.EMAIL:
            assert self.email is not None  # claimed only when configured
            await self.email.send(delivery)
            return
        found = None if delivery.webhook_id is None else await self.webhooks.for_delivery(delivery.webhook_id)
        if found is None:
            raise DeliveryFailed("the webhook was deleted", permanent=True)
        webhook, secret = found
        if not webhook.enabled:
            raise DeliveryFailed("the webhook was disabled", permanent=True)
        await self.webhook_sender.send(delivery, webhook.url, secret)

    async def _failed(self, delivery: ClaimedDelivery, error: str, *, permanent: bool) -> None:
        policy = self.policy
        final = permanent or delivery.attempts >= policy.max_attempts
        retry_in = (
            None
            if final
            else retry_delay(delivery.attempts, base=policy.backoff_base, cap=policy.backoff_cap)
        )
        log.warning(
            "an alert delivery failed%s",
            "" if final else "; will retry",
            extra={"deliveryId": str(delivery.id), "attempt": delivery.attempts, "error": error},
        )
        await self.deliveries.failed(delivery, error, retry_in)

    # ---- the background loop ----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert relay")

    async def stop(self) -> None:
        """Lets a round under way finish (within a grace), then stops."""
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), _STOP_GRACE)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.webhook_sender.close()

    async def _run(self) -> None:
        next_scan = time.monotonic()
        while not self._stopping.is_set():
            claimed = 0
            try:
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + self.policy.scan_interval
                    await self.scan.run()
                claimed = await self.relay_once()
            except DatabaseUnavailable:
                log.warning("the alert relay could not reach the database; will retry")
            except Exception:
                log.exception("the alert relay failed a round; will retry")
            if claimed < self.policy.batch_size:  # a full batch: more may be due at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.policy.poll_interval)
