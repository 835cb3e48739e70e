"""Settings: environment variables prefixed MODELGATE_, plus DATABASE_URL."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.providers.http import Timeouts
from app.providers.runtime import ProviderConfig
from app.serving import ClientLimits

# Stytch B2B session JWTs carry the organization and roles under namespaced claims.
STYTCH_ORGANIZATION_CLAIM = ("https://stytch.com/organization", "organization_id")
STYTCH_ROLES_CLAIM = ("https://stytch.com/session", "roles")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELGATE_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MODELGATE_DATABASE_URL")
    )
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".data")
    log_level: str = "INFO"
    # Server processes on the one port (app/workers.py); unset: one per core this process may use.
    workers: int | None = Field(default=None, ge=1)

    # Database pool. A request waits at most `db_acquire_timeout` seconds for a connection and
    # `db_query_timeout` seconds for each statement, then gets SERVICE_UNAVAILABLE; cache entries
    # whose refresh fails meanwhile are served up to `cache_stale_for` seconds past their freshness.
    db_pool_min_size: int = 1
    db_pool_max_size: int = 20
    db_acquire_timeout: float = Field(default=5.0, gt=0)
    db_query_timeout: float = Field(default=5.0, gt=0)
    cache_stale_for: float = Field(default=300.0, ge=0)

    # GraphQL surface and limits.
    graphiql: bool = True
    introspection: bool = True
    field_suggestions: bool = True
    max_query_depth: int = 12
    max_query_aliases: int = 30
    max_query_tokens: int = 5000
    max_query_cost: int = 20000
    max_body_bytes: int = 1_000_000
    max_subscriptions_per_connection: int = 10

    # Secrets: "kid:base64key,…"; the first key encrypts. Unset: a development key in data_dir.
    secret_keys: SecretStr | None = None

    # JWT bearer tokens (an identity provider such as Stytch B2B).
    jwt_hs256_secret: SecretStr | None = None
    jwt_jwks_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_organization_claim: list[str] = Field(default_factory=lambda: list(STYTCH_ORGANIZATION_CLAIM))
    jwt_roles_claim: list[str] = Field(default_factory=lambda: list(STYTCH_ROLES_CLAIM))
    # Maps identity-provider role names to Modelgate roles (admin, developer, viewer).
    jwt_role_map: dict[str, str] = Field(
        default_factory=lambda: {"stytch_admin": "admin", "stytch_member": "developer"}
    )
    jwks_refetch_interval: float = 60.0

    # Provider calls.
    allow_private_upstreams: bool = False
    provider_connect_timeout: float = 5.0
    # A hung upstream is failed over within connect + first byte (30 s) by default.
    provider_first_byte_timeout: float = 25.0
    provider_idle_timeout: float = 30.0
    # How long one call may take in all, retries and fallbacks included, unless its model sets
    # callDeadlineSeconds: generate/chat/embed, and a chatStream from start to end.
    call_deadline: float = Field(default=120.0, gt=0)
    stream_deadline: float = Field(default=600.0, gt=0)
    # A provider's Retry-After longer than this skips the retry on the same model (fallbacks next).
    retry_after_bound: float = 5.0
    bedrock_region: str | None = None
    google_oauth_url: str = "https://oauth2.googleapis.com/token"

    # Client connections (app/serving.py): a request head must be complete this many seconds after its
    # first byte, its body after its head; a connection without a request is closed when idle this
    # long; connections beyond the cap are answered 503 and closed.
    client_header_timeout: float = Field(default=10.0, gt=0)
    client_body_timeout: float = Field(default=30.0, gt=0)
    client_idle_timeout: float = Field(default=75.0, gt=0)
    max_client_connections: int = Field(default=1000, gt=0)
    # Pooled connections to upstreams: each running stream holds one.
    upstream_max_connections: int = Field(default=1000, gt=0)

    # On SIGTERM: how long running calls may finish before their upstream requests are closed.
    drain_grace: float = 10.0

    # How often buffered bookkeeping (API key last use) is written.
    flush_interval: float = 5.0

    # Defaults for API keys and organizations that set no limit of their own; both limits hold
    # across instances through leases in PostgreSQL (see app/services/limits.py).
    rate_limit_per_minute: int = Field(default=600, gt=0)
    max_concurrent_streams: int = Field(default=50, gt=0)
    # An instance hands back stream slots it left unused this many seconds; a lease whose heartbeat
    # is older than the timeout belongs to a dead instance and stops counting.
    stream_lease_idle: float = Field(default=5.0, gt=0)
    stream_lease_timeout: float = Field(default=30.0, gt=0)
    # Monthly credit limits (app/services/quota.py): a call reserves its input estimate plus its
    # maxTokens, else its model's maxOutputTokens, else this. Leased credits unused this many seconds
    # are handed back; an instance silent past the timeout stops holding any.
    quota_default_max_output_tokens: int = Field(default=4096, gt=0)
    quota_lease_idle: float = Field(default=5.0, gt=0)
    quota_lease_timeout: float = Field(default=30.0, gt=0)

    # Alerts (app/services/alert_relay.py). No SMTP URL: email deliveries stay pending in the outbox.
    smtp_url: SecretStr | None = None  # smtp://[user:password@]host[:port][?starttls=true|false], smtps://…
    smtp_from: str = "Modelgate <modelgate@localhost>"
    smtp_timeout: float = Field(default=15.0, gt=0)
    webhook_timeout: float = Field(default=10.0, gt=0)
    # Webhook URLs on loopback, private or link-local addresses (and plain http): tests, on-prem.
    allow_private_webhooks: bool = False
    alert_poll_interval: float = Field(default=2.0, gt=0)
    alert_batch_size: int = Field(default=20, gt=0)
    # A claimed delivery not recorded within this (its instance died) is taken again.
    alert_claim_timeout: float = Field(default=60.0, gt=0)
    alert_max_attempts: int = Field(default=8, gt=0)
    alert_backoff_base: float = Field(default=30.0, gt=0)
    alert_backoff_cap: float = Field(default=3600.0, gt=0)
    alert_scan_interval: float = Field(default=300.0, gt=0)

    @property
    def worker_count(self) -> int:
        return self.workers or len(os.sched_getaffinity(0))

    @property
    def client_limits(self) -> ClientLimits:
        return ClientLimits(
            header_timeout=self.client_header_timeout,
            body_timeout=self.client_body_timeout,
            idle_timeout=self.client_idle_timeout,
            max_connections=self.max_client_connections,
        )

    @cached_property
    def provider_config(self) -> ProviderConfig:
        return ProviderConfig(
            timeouts=Timeouts(
                connect=self.provider_connect_timeout,
                first_byte=self.provider_first_byte_timeout,
                idle=self.provider_idle_timeout,
            ),
            allow_private_upstreams=self.allow_private_upstreams,
            bedrock_region=self.bedrock_region,
            google_oauth_url=self.google_oauth_url,
            max_connections=self.upstream_max_connections,
        )
