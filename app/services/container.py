"""Builds every service once per process (each from the repositories it needs), and runs the
background bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from app.channels.email import EmailSender, SmtpServer
from app.channels.webhook import WebhookSender
from app.config import Settings
from app.db import Database, DatabaseUnavailable
from app.providers.runtime import ProviderRuntime
from app.repositories.alert_scans import AlertScanRepository
from app.repositories.api_keys import ApiKeyRepository
from app.repositories.connections import ConnectionRepository
from app.repositories.deliveries import DeliveryRepository
from app.repositories.health import HealthRepository
from app.repositories.limits import RateLimitRepository, StreamSlotRepository
from app.repositories.models import ModelRepository
from app.repositories.organizations import OrganizationRepository, ProjectRepository
from app.repositories.outbox import OutboxRepository
from app.repositories.prompts import PromptRepository, PromptRunRepository
from app.repositories.quota import QuotaLeaseRepository
from app.repositories.secrets import SecretRepository
from app.repositories.system_prompts import SystemPromptRepository
from app.repositories.usage import UsageRepository
from app.repositories.webhooks import WebhookRepository
from app.secrets import KeyRing
from app.services.alert_relay import AlertRelay, RelayPolicy
from app.services.alert_scan import AlertScan
from app.services.api_key_auth import ApiKeyAuthenticator
from app.services.api_keys import ApiKeyService
from app.services.auth import Authenticator
from app.services.connections import ConnectionService
from app.services.credential_vault import CredentialVault
from app.services.credit_alerts import CreditAlerts
from app.services.drain_clock import DrainClock
from app.services.effective_prompts import EffectiveSystemPrompts
from app.services.gateway.attempts import Attempts
from app.services.gateway.resolution import Resolver
from app.services.gateway.service import Gateway
from app.services.health import ModelHealthTracker
from app.services.jwt_setup import jwt_authenticator
from app.services.limits import RateLimiter, StreamSlots
from app.services.model_cache import ModelCache
from app.services.model_checks import ReferenceChecker
from app.services.model_credentials import ModelCredentials
from app.services.models import ModelService
from app.services.notifications import (
    API_KEYS_TOPIC,
    CATALOG_TOPIC,
    MODEL_HEALTH_TOPIC,
    TENANCY_TOPIC,
    Notifications,
)
from app.services.prompt_runs import PromptRunner
from app.services.prompts import PromptService
from app.services.quota import QuotaReservations
from app.services.response_cache import ResponseCache
from app.services.revocation import RevocationWatch
from app.services.secret_rotation import SecretRotation
from app.services.system_prompts import SystemPromptService
from app.services.tenancy import OrganizationService, ProjectService
from app.services.tenancy_cache import TenancyCache
from app.services.usage import UsageRecorder, UsageReports
from app.services.webhooks import WebhookService

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Repositories:
    """The repositories several services share (the others belong to one service each)."""

    organizations: OrganizationRepository
    projects: ProjectRepository
    api_keys: ApiKeyRepository
    connections: ConnectionRepository
    system_prompts: SystemPromptRepository
    models: ModelRepository
    outbox: OutboxRepository

    @classmethod
    def over(cls, db: Database) -> _Repositories:
        return cls(
            organizations=OrganizationRepository(db),
            projects=ProjectRepository(db),
            api_keys=ApiKeyRepository(db),
            connections=ConnectionRepository(db),
            system_prompts=SystemPromptRepository(db),
            models=ModelRepository(db),
            outbox=OutboxRepository(db),
        )


class Services:
    """Every service of the process, built once. `db` is there for the unit of work the services
    share and for what inspects the database directly (operational commands, tests)."""

    def __init__(self, settings: Settings, db: Database, dsn: str) -> None:
        self.settings = settings
        self.db = db
        self.notifications = Notifications(db, dsn, timeout=settings.db_query_timeout)
        self.keyring = keyring_for(settings)
        repos = _Repositories.over(db)
        self._tenancy_and_access(repos)
        self._catalog(repos)
        self._calls(repos)
        self._alerts(repos)
        self._flusher: asyncio.Task[None] | None = None

    def _tenancy_and_access(self, repos: _Repositories) -> None:
        settings, db, notifications = self.settings, self.db, self.notifications
        self.organizations = OrganizationService(db, repos.organizations, notifications)
        self.projects = ProjectService(db, repos.projects, self.organizations, notifications)
        self.tenancy_cache = TenancyCache(
            repos.organizations, repos.projects, stale_for=settings.cache_stale_for
        )
        notifications.subscribe(TENANCY_TOPIC, self.tenancy_cache.invalidate)
        self.api_keys = ApiKeyService(
            db,
            repos.api_keys,
            repos.organizations,
            repos.projects,
            notifications,
            repos.outbox,
            default_rate_limit_per_minute=settings.rate_limit_per_minute,
        )
        self.key_auth = ApiKeyAuthenticator(repos.api_keys, stale_for=settings.cache_stale_for)
        notifications.subscribe(API_KEYS_TOPIC, self.key_auth.invalidate)
        self.auth = Authenticator(self.key_auth, jwt_authenticator(settings, repos.organizations))
        # After key_auth: a revoked key leaves the cache before open connections check it again.
        self.revocations = RevocationWatch(self.auth, notifications)

    def _catalog(self, repos: _Repositories) -> None:
        settings, db, notifications = self.settings, self.db, self.notifications
        self.system_prompts = SystemPromptService(
            db, repos.system_prompts, repos.organizations, notifications
        )
        self.system_prompt_texts = EffectiveSystemPrompts(self.system_prompts)
        self.vault = CredentialVault(self.keyring)
        self.connections = ConnectionService(
            db,
            repos.connections,
            repos.organizations,
            self.vault,
            notifications,
            allow_private_upstreams=settings.allow_private_upstreams,
        )
        self.model_credentials = ModelCredentials(self.vault, repos.models, repos.connections)
        checker = ReferenceChecker(
            repos.models,
            repos.projects,
            repos.connections,
            repos.system_prompts,
            allow_private_upstreams=settings.allow_private_upstreams,
        )
        self.models = ModelService(
            db,
            repos.models,
            repos.organizations,
            repos.projects,
            checker,
            self.model_credentials,
            notifications,
        )
        self.model_cache = ModelCache(
            repos.models, self.model_credentials, self.system_prompt_texts, stale_for=settings.cache_stale_for
        )
        notifications.subscribe(CATALOG_TOPIC, self.model_cache.invalidate)
        # Responses of catalog queries: the API layer reads and fills it (app/api/response_cache.py).
        self.response_cache = ResponseCache()
        for topic in (CATALOG_TOPIC, TENANCY_TOPIC):
            notifications.subscribe(topic, self.response_cache.invalidate)

    def _calls(self, repos: _Repositories) -> None:
        settings, db = self.settings, self.db
        self.health = ModelHealthTracker(db, HealthRepository(db), repos.outbox, self.notifications)
        self.notifications.subscribe(MODEL_HEALTH_TOPIC, self.health.invalidate)
        self.rate_limiter = RateLimiter(
            RateLimitRepository(db), default_per_minute=settings.rate_limit_per_minute
        )
        self.stream_slots = StreamSlots(
            db,
            StreamSlotRepository(db),
            default_cap=settings.max_concurrent_streams,
            lease_timeout=settings.stream_lease_timeout,
            idle_after=settings.stream_lease_idle,
        )
        self.quota = QuotaReservations(
            db,
            QuotaLeaseRepository(db),
            default_max_output_tokens=settings.quota_default_max_output_tokens,
            lease_timeout=settings.quota_lease_timeout,
            idle_after=settings.quota_lease_idle,
            lease_wait=settings.db_acquire_timeout,
        )
        usage = UsageRepository(db)
        self.usage = UsageRecorder(
            usage, self.quota, totals_written=CreditAlerts(repos.outbox).totals_written
        )
        self.usage_reports = UsageReports(usage)
        self.providers = ProviderRuntime.create(settings.provider_config)
        self.drain = DrainClock(settings.drain_grace)
        attempts = Attempts(
            self.providers,
            self.health,
            retry_after_bound=settings.retry_after_bound,
            call_deadline=settings.call_deadline,
            stream_deadline=settings.stream_deadline,
        )
        resolver = Resolver(self.model_cache, self.tenancy_cache, self.models.clock)
        self.gateway = Gateway(
            resolver, attempts, self.usage, self.quota, self.rate_limiter, self.stream_slots, self.drain
        )
        self.prompts = PromptService(
            PromptRepository(db), repos.projects, repos.organizations, repos.models, clock=self.models.clock
        )
        self.prompt_runs = PromptRunner(self.prompts, PromptRunRepository(db), self.gateway)

    def _alerts(self, repos: _Repositories) -> None:
        settings, db = self.settings, self.db
        self.webhooks = WebhookService(
            db,
            WebhookRepository(db),
            repos.organizations,
            self.keyring,
            allow_private=settings.allow_private_webhooks,
        )
        self.alert_scan = AlertScan(AlertScanRepository(db), repos.outbox)
        self.alert_relay = AlertRelay(
            DeliveryRepository(db),
            self.webhooks,
            email_sender(settings),
            WebhookSender(allow_private=settings.allow_private_webhooks, timeout=settings.webhook_timeout),
            self.alert_scan,
            RelayPolicy(
                poll_interval=settings.alert_poll_interval,
                batch_size=settings.alert_batch_size,
                claim_timeout=settings.alert_claim_timeout,
                max_attempts=settings.alert_max_attempts,
                backoff_base=settings.alert_backoff_base,
                backoff_cap=settings.alert_backoff_cap,
                scan_interval=settings.alert_scan_interval,
            ),
        )

    def secret_rotation(self, batch_size: int) -> SecretRotation:
        """`rotate-secrets`: every stored secret sealed again under the key ring's first key."""
        return SecretRotation(SecretRepository(self.db), self.keyring, batch_size=batch_size)

    async def start(self) -> None:
        await self.notifications.start()
        await self.stream_slots.start()
        await self.quota.start()
        self._flusher = asyncio.create_task(self._flush_periodically(), name="bookkeeping-flush")
        self.alert_relay.start()

    async def stop(self) -> None:
        """Drains first (aiohttp's on_shutdown has done it already; then this returns at once):
        by its end every call has ended and metered what it used, so the providers close and
        usage is flushed last."""
        await self.drain.drain()
        await self.alert_relay.stop()
        await self.providers.close()
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        await self.quota.stop()
        await self.stream_slots.stop()
        await self.notifications.stop()

    async def flush(self) -> None:
        """Writes buffered bookkeeping now (also done every `flush_interval` seconds). Each write
        waits at most the database timeouts; what was not written is kept for the next flush."""
        for what, write in (
            ("record API key last use", self.key_auth.flush_last_use),
            ("write usage", self.usage.flush),
            ("forget past rate-limit windows", self.rate_limiter.prune),
        ):
            try:
                await write()
            except DatabaseUnavailable:
                log.warning("could not %s: the database did not answer; will retry", what)
            except Exception:
                log.exception("could not %s; will retry", what)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_interval)
            await self.flush()


def email_sender(settings: Settings) -> EmailSender | None:
    """MODELGATE_SMTP_URL's sender; None without one (email deliveries then wait in the outbox)."""
    if settings.smtp_url is None:
        return None
    server = SmtpServer.parse(settings.smtp_url.get_secret_value())
    return EmailSender(server, settings.smtp_from, timeout=settings.smtp_timeout)


def keyring_for(settings: Settings) -> KeyRing:
    """MODELGATE_SECRET_KEYS, else a development key made in the data directory."""
    if settings.secret_keys is not None:
        return KeyRing.parse(settings.secret_keys.get_secret_value())
    return KeyRing.development(settings.data_dir)
