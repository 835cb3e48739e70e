"""The relay delivers the outbox: a trip's email reaches a real SMTP server on loopback, its signed
webhook a receiver that checks the signature; a failing receiver is retried with backoff then
marked failed; without SMTP email stays pending; two instances deliver each event once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aiohttp
import pytest

from app.config import Settings
from app.domain.alert_events import TripAudience, api_key_revoked
from app.domain.gateway import TripPolicy
from app.services.container import Services
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.alert_receivers import ReceivedMail, eventually, smtp_server, webhook_receiver
from tests.support.catalog import create_user_model, uuid_of
from tests.support.factories import Tenant, make_tenant
from tests.support.graphql import GraphQLClient

EMAILS = ("ops@acme.test", "oncall@acme.test")
POLICY = TripPolicy(failed_requests=2, duration_minutes=5, notify_emails=EMAILS)
SECRET = "whsec_test_0123456789abcdefghijklmnop"
SENDER = "Modelgate <alerts@modelgate.test>"

WEBHOOK_CREATE = """mutation($input: WebhookCreateInput!) { webhookCreate(input: $input) {
  webhook { id } secret userErrors { code field message } } }"""
NOTIFICATIONS = """query($id: ID!) { organization(id: $id) { notifications(first: 20) { nodes {
  kind deliveryState lastError sentAt
  deliveries { channel email webhookId state attempts lastError nextAttemptAt sentAt } } } } }"""


@pytest.fixture
def smtp() -> Iterator[tuple[str, list[ReceivedMail]]]:
    with smtp_server() as server:
        yield server


def alert_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_from": SENDER,
        "allow_private_webhooks": True,
        "alert_poll_interval": 0.05,
        "alert_backoff_base": 0.2,
        "alert_max_attempts": 3,
    }
    return make_settings(database_url, **(values | overrides))


@pytest.fixture
def settings(database_url: str, smtp: tuple[str, list[ReceivedMail]]) -> Settings:
    return alert_settings(database_url, smtp_url=smtp[0])


async def add_webhook(gql: GraphQLClient, tenant: Tenant, url: str, **values: Any) -> str:
    payload = await gql.with_key(tenant.admin_key).mutate(
        WEBHOOK_CREATE, {"organizationId": tenant.organization_gid, "url": url, "secret": SECRET, **values}
    )
    assert payload["userErrors"] == []
    webhook_id: str = payload["webhook"]["id"]
    return webhook_id


async def trip(server: LiveServer, gql: GraphQLClient, tenant: Tenant) -> UUID:
    """Trips an organization model whose fallback is "backup-bot"; returns its id."""
    model = await create_user_model(
        gql.with_key(tenant.admin_key),
        organizationId=tenant.organization_gid,
        name="support-bot",
        provider="OPENAI",
        providerModelId="gpt-4o",
    )
    model_id = uuid_of(model["id"])
    audience = TripAudience(tenant.organization.id, "support-bot", EMAILS, ("backup-bot",))
    health = server.services.health
    for _ in range(POLICY.failed_requests):
        await health.record_failure(model_id, POLICY, "SERVER_ERROR", audience)
    return model_id


async def notifications(gql: GraphQLClient, tenant: Tenant) -> list[dict[str, Any]]:
    data = await gql.with_key(tenant.admin_key).data(NOTIFICATIONS, {"id": tenant.organization_gid})
    nodes: list[dict[str, Any]] = data["organization"]["notifications"]["nodes"]
    return nodes


async def test_a_trip_emails_each_recipient_and_posts_a_signed_webhook(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, smtp: tuple[str, list[ReceivedMail]]
) -> None:
    _, inbox = smtp
    async with webhook_receiver(SECRET) as receiver:
        webhook_id = await add_webhook(gql, tenant, receiver.url)
        model_id = await trip(server, gql, tenant)
        await eventually(lambda: len(inbox) == 2 and len(receiver.received) == 1, what="the deliveries")

        assert sorted(r for mail in inbox for r in mail.recipients) == sorted(EMAILS)
        for mail in inbox:
            assert mail.recipients == [mail.message["To"]]
            assert mail.message["From"] == SENDER
            assert mail.message["Subject"].startswith("[Modelgate] Model support-bot is tripped until ")
            assert "failed 2 times in a row (last error: SERVER_ERROR)" in mail.text
            assert "What Modelgate did: Until " in mail.text
            assert "fallbacks: backup-bot" in mail.text
            assert "What to do: Check the provider of support-bot" in mail.text
            assert "<h3>What Modelgate did</h3>" in mail.html
            assert "backup-bot" in mail.html

        (hook,) = receiver.received
        assert hook.signature_valid
        assert hook.body["type"] == "MODEL_TRIPPED"
        assert hook.body["organizationId"] == str(tenant.organization.id)
        assert hook.body["data"]["modelId"] == str(model_id)
        assert hook.body["data"]["fallbacks"] == ["backup-bot"]
        assert hook.headers["Modelgate-Event-Id"] == hook.body["id"]

    async def all_sent() -> bool:
        (event,) = await notifications(gql, tenant)
        return bool(event["deliveryState"] == "SENT" and event["sentAt"])

    await eventually(all_sent, what="the delivery state SENT")
    (event,) = await notifications(gql, tenant)
    assert sorted(
        (d["channel"], d["email"] or d["webhookId"], d["attempts"]) for d in event["deliveries"]
    ) == [
        ("EMAIL", "oncall@acme.test", 1),
        ("EMAIL", "ops@acme.test", 1),
        ("WEBHOOK", webhook_id, 1),
    ]
    assert {d["state"] for d in event["deliveries"]} == {"SENT"}


async def test_a_signature_under_another_secret_does_not_verify(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    """The receiver's check can fail: a receiver that knows another secret rejects the webhook."""
    async with webhook_receiver("whsec_someone_else_0123456789abcdef") as receiver:
        await add_webhook(gql, tenant, receiver.url)
        await trip(server, gql, tenant)
        await eventually(lambda: len(receiver.received) == 1, what="the webhook")
        assert not receiver.received[0].signature_valid


async def test_a_failing_receiver_is_retried_with_backoff_then_marked_failed(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    async with webhook_receiver(SECRET) as receiver:
        receiver.status_for = lambda _: 503
        await add_webhook(gql, tenant, receiver.url, events=["MODEL_TRIPPED"])
        await trip(server, gql, tenant)

        async def failed() -> bool:
            (event,) = await notifications(gql, tenant)
            return any(d["state"] == "FAILED" for d in event["deliveries"])

        await eventually(failed, what="the webhook delivery FAILED")
        assert len(receiver.received) == 3  # alert_max_attempts
        assert all(h.signature_valid for h in receiver.received)
        assert len({h.body["id"] for h in receiver.received}) == 1
        first, second, third = (h.at for h in receiver.received)
        # Backoff doubling from 0.2 s: 0.2 s, then 0.4 s.
        assert second - first >= 0.2
        assert third - second >= 0.4
    (event,) = await notifications(gql, tenant)
    (webhook,) = [d for d in event["deliveries"] if d["channel"] == "WEBHOOK"]
    assert webhook["attempts"] == 3
    assert webhook["lastError"].startswith("the receiver answered 503")
    assert webhook["nextAttemptAt"] is None
    assert event["deliveryState"] == "FAILED"
    assert event["lastError"].startswith("the receiver answered 503")


async def test_a_receiver_that_recovers_gets_the_event_on_a_later_try(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant
) -> None:
    async with webhook_receiver(SECRET) as receiver:
        receiver.status_for = lambda index: 500 if index == 0 else 204
        await add_webhook(gql, tenant, receiver.url)
        await trip(server, gql, tenant)

        async def sent() -> bool:
            (event,) = await notifications(gql, tenant)
            return any(d["channel"] == "WEBHOOK" and d["state"] == "SENT" for d in event["deliveries"])

        await eventually(sent, what="the webhook delivery SENT")
        assert len(receiver.received) == 2


async def test_without_smtp_email_stays_pending_and_webhooks_go_out(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    async with running_server(alert_settings(database_url)) as server, webhook_receiver(SECRET) as receiver:
        gql = GraphQLClient(http, server.url)
        tenant = await make_tenant(server.services, "Acme")
        await add_webhook(gql, tenant, receiver.url)
        await trip(server, gql, tenant)
        await eventually(lambda: len(receiver.received) == 1, what="the webhook")
        for _ in range(5):  # several relay rounds
            await server.services.alert_relay.relay_once()
        (event,) = await notifications(gql, tenant)
        emails = [d for d in event["deliveries"] if d["channel"] == "EMAIL"]
        assert [(d["state"], d["attempts"]) for d in emails] == [("PENDING", 0), ("PENDING", 0)]
        assert event["deliveryState"] == "PENDING"


async def revoked_key_events(services: Services, tenant: Tenant, count: int) -> set[str]:
    """`count` events written straight to the outbox, as a revocation writes them."""
    ids = set()
    for index in range(count):
        event = api_key_revoked(
            organization_id=tenant.organization.id,
            key_id=UUID(int=index + 1),
            key_name=f"key {index}",
            prefix=f"mg_{index}",
            revoked_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        written = await services.health.outbox.insert(event)
        assert written is not None
        ids.add(str(written))
    return ids


async def test_two_instances_deliver_each_event_once(database_url: str, http: aiohttp.ClientSession) -> None:
    settings = alert_settings(database_url, alert_batch_size=3)
    async with webhook_receiver(SECRET) as receiver:
        async with running_server(settings) as a, running_server(settings) as b:
            gql = GraphQLClient(http, a.url)
            tenant = await make_tenant(a.services, "Acme")
            await add_webhook(gql, tenant, receiver.url)
            ids = await revoked_key_events(a.services, tenant, 40)
            await eventually(lambda: len(receiver.received) >= 40, what="every webhook")
            # Both instances took part, and a few more rounds change nothing.
            for _ in range(3):
                assert await a.services.alert_relay.relay_once() == 0
                assert await b.services.alert_relay.relay_once() == 0
        assert sorted(h.body["id"] for h in receiver.received) == sorted(ids)
        assert all(h.signature_valid for h in receiver.received)


async def test_a_recipient_the_mail_server_refuses_fails_at_once_and_the_others_get_theirs(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    with smtp_server(refused=frozenset({"oncall@acme.test"})) as (smtp_url, inbox):
        async with running_server(alert_settings(database_url, smtp_url=smtp_url)) as server:
            gql = GraphQLClient(http, server.url)
            tenant = await make_tenant(server.services, "Acme")
            await trip(server, gql, tenant)

            async def settled() -> bool:
                (event,) = await notifications(gql, tenant)
                return all(d["state"] != "PENDING" for d in event["deliveries"])

            await eventually(settled, what="both email deliveries settled")
            (event,) = await notifications(gql, tenant)
    states = {d["email"]: (d["state"], d["attempts"]) for d in event["deliveries"]}
    assert states == {"ops@acme.test": ("SENT", 1), "oncall@acme.test": ("FAILED", 1)}
    refused = next(d for d in event["deliveries"] if d["email"] == "oncall@acme.test")
    assert "refused the recipient" in refused["lastError"]
    assert [mail.recipients for mail in inbox] == [["ops@acme.test"]]


async def test_the_outbound_guard_is_applied_again_when_sending(
    database_url: str, http: aiohttp.ClientSession
) -> None:
    """A webhook stored while private URLs were allowed is not called once they are not."""
    async with webhook_receiver(SECRET) as receiver:
        async with running_server(alert_settings(database_url, allow_private_webhooks=True)) as allowed:
            gql = GraphQLClient(http, allowed.url)
            tenant = await make_tenant(allowed.services, "Acme")
            await add_webhook(gql, tenant, receiver.url, events=["API_KEY_REVOKED"])
        async with running_server(alert_settings(database_url, allow_private_webhooks=False)) as strict:
            await revoked_key_events(strict.services, tenant, 1)
            gql = GraphQLClient(http, strict.url)

            async def failed() -> bool:
                (event,) = await notifications(gql, tenant)
                return bool(event["deliveryState"] == "FAILED")

            await eventually(failed, what="the webhook delivery FAILED")
            (event,) = await notifications(gql, tenant)
        assert receiver.received == []
    (delivery,) = event["deliveries"]
    assert delivery["attempts"] == 1
    assert delivery["lastError"] == "the webhook URL must use https"
