"""Who is emailed each event kind: an organization's alert emails get every event of the
organization (credits, end of life, keys, and trips with the model's notifyEmails), each address
once, delivered to a real SMTP server on loopback; the deliveries are written with the event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.config import Settings
from app.domain.alert_events import TripAudience
from app.domain.gateway import TripPolicy, UsageEvent
from app.domain.ids import encode_id
from app.services.container import Services
from tests.conftest import LiveServer, make_settings
from tests.support.alert_receivers import ReceivedMail, eventually, smtp_server
from tests.support.catalog import create_system_model, create_user_model, uuid_of
from tests.support.factories import Tenant
from tests.support.graphql import GraphQLClient
from tests.support.usage_events import paid_call

SENDER = "Modelgate <alerts@modelgate.test>"
ORG_EMAILS = ["ops@acme.test", "Finance@acme.test"]
OTHER_EMAILS = ["ops@other.test"]  # the other organization's list: never emailed here
SET_EMAILS = """mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) {
  userErrors { code field } } }"""
REVOKE = "mutation($input: ApiKeyRevokeInput!) { apiKeyRevoke(input: $input) { userErrors { code } } }"

Inbox = list[ReceivedMail]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def inbox(smtp: tuple[str, Inbox]) -> Inbox:
    return smtp[1]


@pytest.fixture
def settings(database_url: str, smtp: tuple[str, Inbox]) -> Settings:
    return make_settings(database_url, smtp_url=smtp[0], smtp_from=SENDER, alert_poll_interval=0.05)


@pytest.fixture
async def lists(gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant) -> None:
    """Both organizations have alert emails."""
    for owner, emails in ((tenant, ORG_EMAILS), (other_tenant, OTHER_EMAILS)):
        await set_alert_emails(gql, owner, emails)


async def set_alert_emails(gql: GraphQLClient, tenant: Tenant, emails: list[str]) -> None:
    payload = await gql.with_key(tenant.admin_key).mutate(
        SET_EMAILS, {"id": tenant.organization_gid, "alertEmails": emails}
    )
    assert payload["userErrors"] == []


def mails(inbox: Inbox, kind: str) -> dict[str, ReceivedMail]:
    """The mails of one event kind, by recipient (each mail has one)."""
    found: dict[str, ReceivedMail] = {}
    for mail in inbox:
        if mail.message["X-Modelgate-Event"] == kind:
            (recipient,) = mail.recipients
            assert recipient not in found, f"{recipient} got {kind} twice"
            found[recipient] = mail
    return found


async def delivered(inbox: Inbox, kind: str, recipients: list[str]) -> dict[str, ReceivedMail]:
    await eventually(lambda: len(mails(inbox, kind)) >= len(recipients), what=f"the {kind} mails")
    found = mails(inbox, kind)
    assert sorted(found) == sorted(recipients)
    for mail in found.values():
        assert mail.message["From"] == SENDER
        assert mail.message["To"] == mail.recipients[0]
    return found


async def email_deliveries(services: Services, kind: str) -> list[list[str]]:
    """Each event of `kind`: its email deliveries' addresses, as written."""
    rows = await services.db.fetch(
        """SELECT array_agg(d.email ORDER BY d.email) AS emails FROM notification_outbox n
           JOIN notification_deliveries d ON d.notification_id = n.id AND d.channel = 'EMAIL'
           WHERE n.kind = $1 GROUP BY n.id ORDER BY min(n.created_at)""",
        kind,
    )
    return [list(r["emails"]) for r in rows]


def usage(tenant: Tenant, credits: str) -> UsageEvent:
    return paid_call(tenant.organization.id, credits)


@pytest.mark.usefixtures("lists")
async def test_credits_at_80_and_100_percent_are_emailed_to_the_organizations_list(
    server: LiveServer, tenant: Tenant, other_tenant: Tenant, inbox: Inbox
) -> None:
    services = server.services
    for owner in (tenant, other_tenant):
        await services.db.execute(
            "UPDATE organizations SET monthly_credit_limit = 100 WHERE id = $1", owner.organization.id
        )
    services.usage.record(usage(tenant, "85"))
    services.usage.record(usage(other_tenant, "10"))
    await services.usage.flush()
    # Written with the usage: one delivery per address, before any is sent.
    assert await email_deliveries(services, "CREDITS_WARNING") == [sorted(ORG_EMAILS)]
    warning = await delivered(inbox, "CREDITS_WARNING", ORG_EMAILS)

    services.usage.record(usage(tenant, "20"))
    await services.usage.flush()
    exhausted = await delivered(inbox, "CREDITS_EXHAUSTED", ORG_EMAILS)

    for mail in warning.values():
        assert mail.message["Subject"].startswith("[Modelgate] 80 % of the monthly credit limit used")
        assert "The organization has used 85 of its 100 credits" in mail.text
        assert "What Modelgate did: Nothing yet" in mail.text
        assert "What to do: Raise the organization's monthly credit limit" in mail.text
        assert "<h3>What to do</h3>" in mail.html
    for mail in exhausted.values():
        assert mail.message["Subject"].startswith("[Modelgate] 100 % of the monthly credit limit used")
        assert "used 105 of its 100 credits" in mail.text
        assert "refused with QUOTA_EXCEEDED" in mail.text
    assert not any(r in OTHER_EMAILS for mail in inbox for r in mail.recipients)


@pytest.mark.usefixtures("lists")
async def test_an_end_of_life_notice_is_emailed_with_the_replacement(
    server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant, inbox: Inbox
) -> None:
    clock = Clock()
    server.services.alert_scan.clock = clock
    admin = gql.with_key(admin_key)
    replacement = await create_system_model(admin, "gpt-next")
    ending = await create_system_model(
        admin,
        "gpt-old",
        endOfLifeAt=(clock.now + timedelta(days=20)).isoformat(),
        deprecationNotice="gpt-old is retired by its provider.",
        replacementModelId=replacement["id"],
    )
    # The tenant uses it through a variant; the other organization does not use it.
    await create_user_model(
        gql.with_key(tenant.admin_key),
        organizationId=tenant.organization_gid,
        name="my-old",
        parentModelId=ending["id"],
    )
    assert await server.services.alert_scan.run() == 1
    assert await email_deliveries(server.services, "MODEL_END_OF_LIFE_SOON") == [sorted(ORG_EMAILS)]

    for mail in (await delivered(inbox, "MODEL_END_OF_LIFE_SOON", ORG_EMAILS)).values():
        assert mail.message["Subject"] == "[Modelgate] Model gpt-old reaches its end of life in 30 day(s)"
        assert "The model gpt-old, which you use, reaches its end of life on " in mail.text
        assert "gpt-old is retired by its provider." in mail.text
        assert "What to do: Move your calls to its replacement gpt-next before then." in mail.text
    assert len(inbox) == len(ORG_EMAILS)


@pytest.mark.usefixtures("lists")
async def test_an_expiring_key_is_emailed_to_the_organizations_list(
    server: LiveServer, tenant: Tenant, inbox: Inbox
) -> None:
    clock = Clock()
    server.services.alert_scan.clock = clock
    key, _ = await server.services.api_keys.create_unchecked(
        name="ci", organization_id=tenant.organization.id
    )
    await server.services.db.execute(
        "UPDATE api_keys SET expires_at = $2 WHERE id = $1", key.id, clock.now + timedelta(days=3)
    )
    assert await server.services.alert_scan.run() == 1
    for mail in (await delivered(inbox, "API_KEY_EXPIRING", ORG_EMAILS)).values():
        assert mail.message["Subject"].startswith("[Modelgate] API key ci expires on ")
        assert f"The API key ci ({key.prefix}…) expires on" in mail.text
        assert "What to do: Create a new key, move its users to it, then revoke the old one." in mail.text


@pytest.mark.usefixtures("lists")
async def test_a_revoked_key_is_emailed_to_the_list_of_the_moment_it_was_revoked(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, inbox: Inbox
) -> None:
    admin = gql.with_key(tenant.admin_key)
    first, _ = await server.services.api_keys.create_unchecked(
        name="leaked", organization_id=tenant.organization.id
    )
    second, _ = await server.services.api_keys.create_unchecked(
        name="old", organization_id=tenant.organization.id
    )
    assert (await admin.mutate(REVOKE, {"id": encode_id("ApiKey", first.id)}))["userErrors"] == []
    # The list changes: the event written before keeps its recipients, the next one has the new list.
    await set_alert_emails(gql, tenant, ["security@acme.test"])
    assert (await admin.mutate(REVOKE, {"id": encode_id("ApiKey", second.id)}))["userErrors"] == []
    assert await email_deliveries(server.services, "API_KEY_REVOKED") == [
        sorted(ORG_EMAILS),
        ["security@acme.test"],
    ]

    await eventually(lambda: len(mails(inbox, "API_KEY_REVOKED")) == 3, what="the revocation mails")
    by_key = {
        (mail.recipients[0], mail.message["Subject"])
        for mail in inbox
        if mail.message["X-Modelgate-Event"] == "API_KEY_REVOKED"
    }
    assert by_key == {
        ("ops@acme.test", "[Modelgate] API key leaked was revoked"),
        ("Finance@acme.test", "[Modelgate] API key leaked was revoked"),
        ("security@acme.test", "[Modelgate] API key old was revoked"),
    }
    revoked = next(m for m in inbox if m.recipients == ["security@acme.test"])
    assert f"The API key old ({second.prefix}…) was revoked at" in revoked.text
    assert "a revoked key cannot be restored" in revoked.text


async def test_a_trip_and_its_recovery_go_to_notify_emails_and_the_list_each_address_once(
    server: LiveServer, gql: GraphQLClient, tenant: Tenant, other_tenant: Tenant, inbox: Inbox
) -> None:
    await set_alert_emails(gql, tenant, ["OPS@acme.test", "cfo@acme.test"])
    await set_alert_emails(gql, other_tenant, OTHER_EMAILS)
    clock = Clock()
    health = server.services.health
    health.clock = clock
    model = await create_user_model(
        gql.with_key(tenant.admin_key),
        organizationId=tenant.organization_gid,
        name="support-bot",
        provider="OPENAI",
        providerModelId="gpt-4o",
    )
    model_id = uuid_of(model["id"])
    policy = TripPolicy(
        failed_requests=2, duration_minutes=5, notify_emails=("ops@acme.test", "oncall@acme.test")
    )
    audience = TripAudience(tenant.organization.id, "support-bot", policy.notify_emails, ("backup-bot",))
    for _ in range(policy.failed_requests):
        await health.record_failure(model_id, policy, "SERVER_ERROR", audience)
    # The model's own address first, as it was written; the list's OPS@ is the same person.
    everyone = ["ops@acme.test", "oncall@acme.test", "cfo@acme.test"]
    tripped = await delivered(inbox, "MODEL_TRIPPED", everyone)
    for mail in tripped.values():
        assert mail.message["Subject"].startswith("[Modelgate] Model support-bot is tripped until ")
        assert "fallbacks: backup-bot" in mail.text
    outbox: Any = await server.services.db.fetchval(
        "SELECT recipients FROM notification_outbox WHERE kind = 'MODEL_TRIPPED'"
    )
    assert outbox == everyone

    clock.now += timedelta(minutes=6)  # the trip is over: the next success is its recovery
    await health.health(model_id)  # read first, as a call does (the tracker may have let it go)
    await health.record_success(model_id, audience)
    assert await email_deliveries(server.services, "MODEL_RECOVERED") == [sorted(everyone)]
    recovered = await delivered(inbox, "MODEL_RECOVERED", everyone)
    assert all(m.message["Subject"] == "[Modelgate] Model support-bot recovered" for m in recovered.values())
    assert not any(r in OTHER_EMAILS for mail in inbox for r in mail.recipients)


async def test_a_system_models_trip_without_an_organization_goes_to_its_notify_emails_only(
    server: LiveServer, gql: GraphQLClient, admin_key: str, tenant: Tenant, inbox: Inbox
) -> None:
    await set_alert_emails(gql, tenant, ORG_EMAILS)
    model_id = uuid_of((await create_system_model(gql.with_key(admin_key), "shared"))["id"])
    policy = TripPolicy(failed_requests=1, duration_minutes=5, notify_emails=("platform@modelgate.test",))
    shared = TripAudience(None, "shared", policy.notify_emails, ())
    await server.services.health.record_failure(model_id, policy, "TIMEOUT", shared)
    await delivered(inbox, "MODEL_TRIPPED", ["platform@modelgate.test"])
    assert await email_deliveries(server.services, "MODEL_TRIPPED") == [["platform@modelgate.test"]]
