"""Who is calling and what they may do: permissions, roles, principals, API key format."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class Permission(StrEnum):
    MODELS_READ = "models:read"
    MODELS_CREATE = "models:create"
    MODELS_UPDATE = "models:update"
    MODELS_DELETE = "models:delete"
    CONNECTIONS_MANAGE = "connections:manage"
    PROMPTS_MANAGE = "prompts:manage"
    LLM_INVOKE = "llm:invoke"
    USAGE_READ = "usage:read"
    KEYS_MANAGE = "keys:manage"
    # Not in the original list: changing an organization's settings and its projects.
    ORGANIZATION_MANAGE = "organization:manage"
    PLATFORM_ADMIN = "platform:admin"


class Role(StrEnum):
    ADMIN = "ADMIN"
    DEVELOPER = "DEVELOPER"
    VIEWER = "VIEWER"


_VIEWER = frozenset({Permission.MODELS_READ, Permission.USAGE_READ})
_DEVELOPER = _VIEWER | {
    Permission.MODELS_CREATE,
    Permission.MODELS_UPDATE,
    Permission.PROMPTS_MANAGE,
    Permission.LLM_INVOKE,
}
_ADMIN = _DEVELOPER | {
    Permission.MODELS_DELETE,
    Permission.CONNECTIONS_MANAGE,
    Permission.KEYS_MANAGE,
    Permission.ORGANIZATION_MANAGE,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.DEVELOPER: _DEVELOPER,
    Role.ADMIN: _ADMIN,
}
ALL_PERMISSIONS = frozenset(Permission)


class PrincipalKind(StrEnum):
    API_KEY = "API_KEY"
    JWT = "JWT"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. Platform admins have no organization of their own."""

    kind: PrincipalKind
    permissions: frozenset[Permission]
    organization_id: UUID | None = None
    project_id: UUID | None = None
    api_key_id: UUID | None = None
    # What the access log may show: the key prefix or the JWT subject, never a secret.
    label: str = ""
    roles: tuple[Role, ...] = field(default_factory=tuple)
    rate_limit_per_minute: int | None = None
    # When the credential stops being valid (a key's expiry, a JWT's `exp`); None: never by itself.
    expires_at: datetime | None = None

    @property
    def is_platform_admin(self) -> bool:
        return Permission.PLATFORM_ADMIN in self.permissions

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions or self.is_platform_admin

    def can_access_organization(self, organization_id: UUID) -> bool:
        return self.is_platform_admin or self.organization_id == organization_id

    def can_access_project(self, organization_id: UUID, project_id: UUID) -> bool:
        if not self.can_access_organization(organization_id):
            return False
        return self.project_id is None or self.project_id == project_id


API_KEY_PREFIX = "mg"


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly made key: `plaintext` is shown once; only `prefix` and `secret_hash` are stored."""

    plaintext: str
    prefix: str
    secret_hash: bytes


def generate_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(30)
    return NewApiKey(f"{API_KEY_PREFIX}_{prefix}_{secret}", prefix, hash_secret(secret))


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_api_key(value: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None. The secret may itself contain '_'."""
    parts = value.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key (never its secret)."""

    id: UUID
    organization_id: UUID | None
    project_id: UUID | None
    name: str
    prefix: str
    secret_hash: bytes
    role: Role | None
    permissions: frozenset[Permission]
    is_platform_admin: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    rate_limit_per_minute: int | None  # None: the server's default

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def principal(self) -> Principal:
        permissions = ALL_PERMISSIONS if self.is_platform_admin else self.permissions
        return Principal(
            kind=PrincipalKind.API_KEY,
            permissions=permissions,
            organization_id=self.organization_id,
            project_id=self.project_id,
            api_key_id=self.id,
            label=f"key:{self.prefix}",
            roles=(self.role,) if self.role else (),
            rate_limit_per_minute=self.rate_limit_per_minute,
            expires_at=self.expires_at,
        )


# The operator's own authority, for CLI commands and first-start seeding (never a request).
OPERATOR = Principal(kind=PrincipalKind.API_KEY, permissions=ALL_PERMISSIONS, label="operator")
