"""Webhook mutations, for organization admins (not project keys). The secret is write-only: given
on create or rotation, or generated and then shown once in that payload's `secret`."""

from __future__ import annotations

import strawberry

from app.api.alerts.types import Webhook, WebhookUserError, webhook_error
from app.api.context import GraphQLInfo, services
from app.api.errors import MutationFrame
from app.api.orgs.notifications import NotificationKind
from app.api.scalars import maybe_set
from app.domain import webhooks
from app.domain.auth import Principal
from app.domain.ids import decode_id
from app.domain.values import UNSET, UnsetType
from app.services.webhooks import WebhookChanges, WithSecret

_SIGNING_DOC = (
    "The signing secret (at least 24 characters). Leave it out to have one generated and shown once "
    "in the payload. Write-only."
)


@strawberry.input
class WebhookCreateInput:
    organization_id: strawberry.ID
    url: str = strawberry.field(description="An https URL on a public address.")
    events: list[NotificationKind] = strawberry.field(  # type: ignore[valid-type]
        default_factory=list, description="The event kinds to send; empty: every kind."
    )
    enabled: bool = True
    secret: str | None = strawberry.field(default=None, description=_SIGNING_DOC)


@strawberry.input(description="Fields left out are not changed.")
class WebhookUpdateInput:
    id: strawberry.ID
    url: str | None = strawberry.UNSET
    events: list[NotificationKind] | None = strawberry.UNSET  # type: ignore[valid-type]
    enabled: bool | None = strawberry.UNSET


@strawberry.input
class WebhookRotateSecretInput:
    id: strawberry.ID
    secret: str | None = strawberry.field(default=None, description=_SIGNING_DOC)


@strawberry.input
class WebhookDeleteInput:
    id: strawberry.ID


@strawberry.type
class WebhookSecretPayload:
    webhook: Webhook | None
    secret: str | None = strawberry.field(
        description="The generated secret, shown only here; null when you gave one (or on errors)."
    )
    user_errors: list[WebhookUserError]

    @classmethod
    def of(cls, done: WithSecret | None, errors: list[WebhookUserError]) -> WebhookSecretPayload:
        if done is None:
            return cls(webhook=None, secret=None, user_errors=errors)
        return cls(webhook=Webhook.of(done.webhook), secret=done.secret, user_errors=errors)


@strawberry.type
class WebhookUpdatePayload:
    webhook: Webhook | None
    user_errors: list[WebhookUserError]


@strawberry.type
class WebhookDeletePayload:
    deleted_webhook_id: strawberry.ID | None
    user_errors: list[WebhookUserError]


_FRAME = MutationFrame(webhook_error)


@strawberry.type
class AlertMutations:
    @strawberry.mutation(description="Needs organization:manage, not from a project key.")
    async def webhook_create(self, info: GraphQLInfo, input: WebhookCreateInput) -> WebhookSecretPayload:
        async def work(principal: Principal) -> WithSecret:
            organization_id = decode_id(input.organization_id, "Organization", ["input", "organizationId"])
            return await services(info).webhooks.create(
                principal,
                organization_id=organization_id,
                url=input.url,
                events=tuple(input.events),
                enabled=input.enabled,
                secret=input.secret,
            )

        return WebhookSecretPayload.of(*await _FRAME.run(info, input, work))

    @strawberry.mutation(description="Needs organization:manage, not from a project key.")
    async def webhook_update(self, info: GraphQLInfo, input: WebhookUpdateInput) -> WebhookUpdatePayload:
        async def work(principal: Principal) -> webhooks.Webhook:
            webhook_id = decode_id(input.id, "Webhook", ["input", "id"])
            events = maybe_set(input.events, ["input", "events"])
            changes = WebhookChanges(
                url=maybe_set(input.url, ["input", "url"]),
                events=UNSET if isinstance(events, UnsetType) else tuple(events),
                enabled=maybe_set(input.enabled, ["input", "enabled"]),
            )
            return await services(info).webhooks.update(principal, webhook_id, changes)

        updated, errors = await _FRAME.run(info, input, work)
        return WebhookUpdatePayload(webhook=Webhook.of(updated) if updated else None, user_errors=errors)

    @strawberry.mutation(
        description="Replaces the secret at once: deliveries from now on are signed with the new one. "
        "Needs organization:manage, not from a project key."
    )
    async def webhook_rotate_secret(
        self, info: GraphQLInfo, input: WebhookRotateSecretInput
    ) -> WebhookSecretPayload:
        async def work(principal: Principal) -> WithSecret:
            webhook_id = decode_id(input.id, "Webhook", ["input", "id"])
            return await services(info).webhooks.rotate_secret(principal, webhook_id, input.secret)

        return WebhookSecretPayload.of(*await _FRAME.run(info, input, work))

    @strawberry.mutation(
        description="Its deliveries not sent yet fail. Needs organization:manage, not from a project key."
    )
    async def webhook_delete(self, info: GraphQLInfo, input: WebhookDeleteInput) -> WebhookDeletePayload:
        async def work(principal: Principal) -> webhooks.Webhook:
            webhook_id = decode_id(input.id, "Webhook", ["input", "id"])
            return await services(info).webhooks.delete(principal, webhook_id)

        deleted, errors = await _FRAME.run(info, input, work)
        return WebhookDeletePayload(deleted_webhook_id=input.id if deleted else None, user_errors=errors)
