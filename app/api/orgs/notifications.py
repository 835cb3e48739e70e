"""GraphQL types of notifications: the events written to an organization's outbox, and how their
deliveries (one per email recipient or webhook) went."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from app.api.context import GraphQLInfo, authenticated, services
from app.api.node import Node, register_node
from app.api.pagination import Connection, connection, created_page, cursor_by_created
from app.domain import notifications
from app.domain.ids import encode_id

NotificationKind = strawberry.enum(
    notifications.NotificationKind,
    description="MODEL_TRIPPED / MODEL_RECOVERED: a primary model failed over to its fallbacks, or "
    "answered again after its trip. CREDITS_WARNING / CREDITS_EXHAUSTED: 80 % / 100 % of the monthly "
    "credit limit used. MODEL_END_OF_LIFE_SOON: a model in use ends in 30, 7 or 1 days. "
    "API_KEY_EXPIRING: a key expires within 7 days. API_KEY_REVOKED: a key was revoked.",
)
DeliveryChannel = strawberry.enum(notifications.DeliveryChannel)
DeliveryState = strawberry.enum(
    notifications.DeliveryState,
    description="PENDING: not sent yet (maybe retrying, or waiting for an SMTP server to be "
    "configured). SENT: delivered. FAILED: given up after the last try.",
)


@strawberry.type(description="One recipient's copy of an event.")
class NotificationDelivery:
    channel: DeliveryChannel  # type: ignore[valid-type]
    email: str | None = strawberry.field(description="The recipient of an EMAIL delivery.")
    webhook_id: strawberry.ID | None = strawberry.field(
        description="The webhook of a WEBHOOK delivery; null once it was deleted."
    )
    state: DeliveryState  # type: ignore[valid-type]
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None = strawberry.field(description="When a PENDING delivery is tried next.")
    sent_at: datetime | None

    @classmethod
    def of(cls, delivery: notifications.Delivery) -> NotificationDelivery:
        pending = delivery.state is notifications.DeliveryState.PENDING
        return cls(
            channel=delivery.channel,
            email=delivery.email,
            webhook_id=strawberry.ID(encode_id("Webhook", delivery.webhook_id))
            if delivery.webhook_id
            else None,
            state=delivery.state,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at if pending else None,
            sent_at=delivery.sent_at,
        )


@strawberry.type(description="An event for people, e.g. a fallback's notifyEmails when its model trips.")
class Notification(Node):
    kind: NotificationKind  # type: ignore[valid-type]
    recipients: list[str] = strawberry.field(description="Its email recipients (webhooks aside).")
    subject: str
    body: str
    payload: JSON = strawberry.field(description="The facts of the event, for programs.")
    created_at: datetime
    sent_at: datetime | None = strawberry.field(
        description="When its last delivery was sent; null until all are."
    )
    domain: strawberry.Private[notifications.Notification]

    @classmethod
    def of(cls, notification: notifications.Notification) -> Notification:
        return cls(
            id=strawberry.ID(encode_id("Notification", notification.id)),
            kind=notification.kind,
            recipients=list(notification.recipients),
            subject=notification.subject,
            body=notification.body,
            payload=JSON(notification.payload),
            created_at=notification.created_at,
            sent_at=notification.sent_at,
            domain=notification,
        )

    @strawberry.field(
        description="PENDING while any delivery may still go out, else FAILED if any failed, "
        "else SENT; null: nobody to deliver to."
    )
    async def delivery_state(self, info: GraphQLInfo) -> DeliveryState | None:  # type: ignore[valid-type]
        return notifications.delivery_state(await info.context.loaders.deliveries.load(self.domain.id))

    @strawberry.field(description="The latest error of a delivery that is not sent.")
    async def last_error(self, info: GraphQLInfo) -> str | None:
        found = await info.context.loaders.deliveries.load(self.domain.id)
        return notifications.last_error([d for d in found if d.state is not notifications.DeliveryState.SENT])

    @strawberry.field
    async def deliveries(self, info: GraphQLInfo) -> list[NotificationDelivery]:
        return [
            NotificationDelivery.of(d) for d in await info.context.loaders.deliveries.load(self.domain.id)
        ]


async def organization_notifications(
    info: GraphQLInfo, organization_id: UUID, first: int | None, after: str | None
) -> Connection[Notification]:
    page = await services(info).health.notifications(
        authenticated(info), organization_id, created_page(first, after)
    )
    return connection(page, Notification.of, cursor_by_created, has_previous=after is not None)


async def _notification(info: GraphQLInfo, notification_id: UUID) -> Notification | None:
    found = await services(info).health.notification(authenticated(info), notification_id)
    return Notification.of(found) if found else None


register_node("Notification", _notification)
