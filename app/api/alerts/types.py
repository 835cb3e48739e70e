"""GraphQL types of webhooks: the object (never its secret), its user errors."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.errors import UserError
from app.api.node import Node, register_node
from app.api.orgs.notifications import NotificationKind
from app.api.pagination import Connection, connection, created_page, cursor_by_created
from app.domain import webhooks
from app.domain.ids import encode_id

WebhookErrorCode = strawberry.enum(webhooks.WebhookErrorCode, name="WebhookErrorCode")


@strawberry.type(
    description="Where an organization's events are POSTed as JSON, signed with HMAC-SHA256 "
    "(headers Modelgate-Event-Id, Modelgate-Timestamp, Modelgate-Signature: v1=hex of "
    "HMAC(secret, timestamp + '.' + body)). The secret is write-only."
)
class Webhook(Node):
    url: str
    events: list[NotificationKind] = strawberry.field(  # type: ignore[valid-type]
        description="The event kinds sent; empty: every kind."
    )
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, webhook: webhooks.Webhook) -> Webhook:
        return cls(
            id=strawberry.ID(encode_id("Webhook", webhook.id)),
            url=webhook.url,
            events=list(webhook.events),
            enabled=webhook.enabled,
            created_at=webhook.created_at,
            updated_at=webhook.updated_at,
        )


@strawberry.type
class WebhookUserError(UserError):
    code: WebhookErrorCode  # type: ignore[valid-type]


def webhook_error(code: str, field: list[str] | None, message: str) -> WebhookUserError:
    return WebhookUserError(code=webhooks.WebhookErrorCode(code), field=field, message=message)


async def organization_webhooks(
    info: GraphQLInfo, organization_id: UUID, first: int | None, after: str | None
) -> Connection[Webhook]:
    page = await services(info).webhooks.list_for_organization(
        authenticated(info), organization_id, created_page(first, after)
    )
    return connection(page, Webhook.of, cursor_by_created, has_previous=after is not None)


async def _webhook(info: GraphQLInfo, webhook_id: UUID) -> Webhook | None:
    found = await services(info).webhooks.get(authenticated(info), webhook_id)
    return Webhook.of(found) if found else None


register_node("Webhook", _webhook)
