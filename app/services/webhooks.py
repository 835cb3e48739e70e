"""Use cases for webhooks: organization admins (not project keys) manage them; another
organization's webhook reads exactly like a missing one. The secret is write-only: set on create
(or generated, then shown once), replaced by `rotate_secret`, sealed like stored credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from app.db import Database
from app.domain.auth import Permission, Principal
from app.domain.errors import AccessDenied, ErrorCollector, NotFoundError
from app.domain.notifications import NotificationKind
from app.domain.pagination import CreatedKey, Page, PageRequest
from app.domain.values import UNSET, Maybe, UnsetType
from app.domain.webhooks import (
    MAX_WEBHOOKS_PER_ORGANIZATION,
    URL_MAX_LENGTH,
    Webhook,
    WebhookErrorCode,
    check_events,
    check_secret,
    new_secret,
)
from app.providers.outbound import UnsafeUpstreamError, check_url
from app.repositories.organizations import OrganizationRepository
from app.repositories.webhooks import WebhookRepository
from app.secrets import KeyRing, SecretLocation
from app.services.permissions import require

_TABLE, _COLUMN = "webhooks", "secret_key_ciphertext"


@dataclass(frozen=True, slots=True)
class WebhookChanges:
    url: Maybe[str] = UNSET
    events: Maybe[tuple[NotificationKind, ...]] = UNSET
    enabled: Maybe[bool] = UNSET


@dataclass(frozen=True, slots=True)
class WithSecret:
    """A webhook and its secret: shown once, when it was generated (create, rotate)."""

    webhook: Webhook
    secret: str | None


class WebhookService:
    def __init__(
        self,
        db: Database,
        webhooks: WebhookRepository,
        organizations: OrganizationRepository,
        keyring: KeyRing,
        *,
        allow_private: bool,
    ) -> None:
        self.db = db
        self.webhooks = webhooks
        self.organizations = organizations
        self.keyring = keyring
        self.allow_private = allow_private

    async def list_for_organization(
        self, principal: Principal, organization_id: UUID, page: PageRequest[CreatedKey]
    ) -> Page[Webhook]:
        if not principal.can_access_organization(organization_id):
            return Page([], False)
        _require_admin(principal)
        return await self.webhooks.list_for_organization(organization_id, page)

    async def get(self, principal: Principal, webhook_id: UUID) -> Webhook | None:
        found = await self.webhooks.get(webhook_id)
        if found is None or not principal.can_access_organization(found.organization_id):
            return None
        if not principal.has(Permission.ORGANIZATION_MANAGE) or principal.project_id is not None:
            return None
        return found

    async def create(
        self,
        principal: Principal,
        *,
        organization_id: UUID,
        url: str,
        events: tuple[NotificationKind, ...] = (),
        enabled: bool = True,
        secret: str | None = None,
    ) -> WithSecret:
        if (
            not principal.can_access_organization(organization_id)
            or await self.organizations.get(organization_id) is None
        ):
            raise NotFoundError("organization", ["input", "organizationId"])
        _require_admin(principal)
        errors = ErrorCollector()
        self._check_url(errors, url)
        check_events(errors, events, "input", "events")
        if secret is not None:
            check_secret(errors, secret, "input", "secret")
        if await self.webhooks.count_for_organization(organization_id) >= MAX_WEBHOOKS_PER_ORGANIZATION:
            errors.add(
                WebhookErrorCode.OUT_OF_RANGE,
                f"an organization has at most {MAX_WEBHOOKS_PER_ORGANIZATION} webhooks",
                "input",
                "organizationId",
            )
        errors.raise_if_any()
        shown = new_secret() if secret is None else None
        webhook_id = uuid.uuid4()
        created = await self.webhooks.insert(
            webhook_id=webhook_id,
            organization_id=organization_id,
            url=url.strip(),
            events=events,
            enabled=enabled,
            secret_ciphertext=self._seal(webhook_id, secret or shown or ""),
        )
        return WithSecret(created, shown)

    async def update(self, principal: Principal, webhook_id: UUID, changes: WebhookChanges) -> Webhook:
        current = await self._managed(principal, webhook_id)
        errors = ErrorCollector()
        if not isinstance(changes.url, UnsetType):
            self._check_url(errors, changes.url)
        if not isinstance(changes.events, UnsetType):
            check_events(errors, changes.events, "input", "events")
        errors.raise_if_any()
        updated = await self.webhooks.update(
            current.id,
            url=None if isinstance(changes.url, UnsetType) else changes.url.strip(),
            events=None if isinstance(changes.events, UnsetType) else changes.events,
            enabled=None if isinstance(changes.enabled, UnsetType) else changes.enabled,
        )
        if updated is None:
            raise NotFoundError("webhook", ["input", "id"])
        return updated

    async def rotate_secret(self, principal: Principal, webhook_id: UUID, secret: str | None) -> WithSecret:
        """Replaces the secret at once: deliveries signed from now on use the new one."""
        current = await self._managed(principal, webhook_id)
        if secret is not None:
            errors = ErrorCollector()
            check_secret(errors, secret, "input", "secret")
            errors.raise_if_any()
        shown = new_secret() if secret is None else None
        updated = await self.webhooks.set_secret(current.id, self._seal(webhook_id, secret or shown or ""))
        if updated is None:
            raise NotFoundError("webhook", ["input", "id"])
        return WithSecret(updated, shown)

    async def delete(self, principal: Principal, webhook_id: UUID) -> Webhook:
        """Its pending deliveries fail (their history stays, without the webhook)."""
        current = await self._managed(principal, webhook_id)
        if not await self.webhooks.delete(webhook_id):
            raise NotFoundError("webhook", ["input", "id"])
        return current

    async def for_delivery(self, webhook_id: UUID) -> tuple[Webhook, str] | None:
        """The webhook and its secret in the clear, for the relay only."""
        found = await self.webhooks.secret_of(webhook_id)
        if found is None:
            return None
        webhook, ciphertext = found
        return webhook, self.keyring.decrypt(ciphertext, SecretLocation(_TABLE, webhook_id, _COLUMN))

    async def _managed(self, principal: Principal, webhook_id: UUID) -> Webhook:
        found = await self.webhooks.get(webhook_id)
        if found is None or not principal.can_access_organization(found.organization_id):
            raise NotFoundError("webhook", ["input", "id"])
        _require_admin(principal)
        return found

    def _check_url(self, errors: ErrorCollector, url: str) -> None:
        field = ("input", "url")
        if not url.strip():
            errors.add(WebhookErrorCode.REQUIRED, "must not be empty", *field)
            return
        if len(url) > URL_MAX_LENGTH:
            errors.add(WebhookErrorCode.TOO_LONG, f"must be at most {URL_MAX_LENGTH} characters", *field)
            return
        try:
            check_url(url.strip(), allow_private=self.allow_private)
        except UnsafeUpstreamError as exc:
            errors.add(WebhookErrorCode.UNSAFE_URL, str(exc), *field)

    def _seal(self, webhook_id: UUID, secret: str) -> bytes:
        return self.keyring.encrypt(secret, SecretLocation(_TABLE, webhook_id, _COLUMN))


def _require_admin(principal: Principal) -> None:
    require(principal, Permission.ORGANIZATION_MANAGE)
    if principal.project_id is not None:
        raise AccessDenied("a project key cannot manage its organization's alerts")
