"""GraphQL types of notifications: the messages written to an organization's outbox."""

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
    notifications.NotificationKind, description="MODEL_TRIPPED: a model failed and its fallbacks serve."
)


@strawberry.type(description="A message for people, e.g. a fallback's notifyEmails when its model trips.")
class Notification(Node):
    kind: NotificationKind  # type: ignore[valid-type]
    recipients: list[str]
    subject: str
    body: str
    payload: JSON = strawberry.field(description="The facts of the message, for programs.")
    created_at: datetime
    sent_at: datetime | None = strawberry.field(description="Null: not delivered yet.")

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
        )


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
