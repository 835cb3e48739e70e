"""How Modelgate reaches a Google model: its URL and its authentication. The wire format, shared by
both, is in `gemini.py`.

- Gemini API (`GeminiApiConnection`): `{modelUrl or https://generativelanguage.googleapis.com}/v1beta/
  models/{model}`, header `x-goog-api-key`. The Gemini API has one global endpoint, so the `location`
  setting does not change the URL.
- Vertex AI (`VertexConnection`): `https://{location}-aiplatform.googleapis.com/v1/projects/{projectId}/
  locations/{location}/publishers/{publisher}/models/{model}`; settings `location` (default
  us-central1; `global` uses aiplatform.googleapis.com), `projectId` (default: the service-account
  key's project), `publisher` (default google), `apiEndpoint` (or modelUrl) replacing the host.
  A modelUrl that already names the model (`…/models/{model}[:method]`) is used as is, for both.

Vertex authentication (OAuth 2.0 JWT bearer grant, RFC 7523): the model's `token` credential holds the
service-account key JSON as Google issues it. We sign a short RS256 assertion with its private key,
exchange it at the token endpoint (`ProviderConfig.google_oauth_url`, never the key's own `token_uri`,
which is user input) for an access token, and send `Authorization: Bearer …`. `GoogleTokenCache` (one
per process) keeps each token until shortly before it expires; concurrent calls for the same key wait
for one refresh instead of each signing and exchanging their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import jwt
import orjson

from app.domain.calls import ProviderError, ProviderErrorCode
from app.providers.base import ProviderTarget, error_from_exception
from app.providers.http import ErrorReader, UpstreamHttp
from app.providers.redact import safe_detail
from app.providers.runtime import ProviderRuntime

GEMINI_API_BASE_URL = "https://generativelanguage.googleapis.com"
GEMINI_API_VERSION = "v1beta"
VERTEX_API_VERSION = "v1"
VERTEX_DEFAULT_LOCATION = "us-central1"
_VERSIONED_BASE = re.compile(r"/v\d+(?:alpha|beta)?\d*$")
_LOCATION = re.compile(r"[a-z0-9-]+")

_JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_ASSERTION_LIFETIME_SECONDS = 3600  # the longest Google accepts
# Refresh this long before expiry, so a token is never sent in its last minutes (clock skew, long calls).
_REFRESH_MARGIN_SECONDS = 300.0


# --- Where the model lives and how to authenticate ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoogleEndpoint:
    model_url: str  # the model resource; methods are appended as `:method`
    headers: dict[str, str]
    secrets: tuple[str, ...]  # everything an error message must never show

    def url(self, method: str, *, sse: bool = False) -> str:
        return f"{self.model_url}:{method}" + ("?alt=sse" if sse else "")


class GoogleConnection(ABC):
    @abstractmethod
    async def endpoint(self) -> GoogleEndpoint: ...


class GeminiApiConnection(GoogleConnection):
    def __init__(self, target: ProviderTarget) -> None:
        self._target = target

    async def endpoint(self) -> GoogleEndpoint:
        base = self._target.model_url or GEMINI_API_BASE_URL
        model = self._target.provider_model_id.removeprefix("models/")
        model_url = _named_model_url(base) or f"{_versioned(base, GEMINI_API_VERSION)}/models/{model}"
        token = self._target.credentials.token
        headers = {"x-goog-api-key": token} if token else {}
        return GoogleEndpoint(model_url, headers, self._target.credentials.secrets())


class VertexConnection(GoogleConnection):
    def __init__(self, target: ProviderTarget, runtime: ProviderRuntime) -> None:
        self._target = target
        self._tokens = google_token_cache(runtime)

    async def endpoint(self) -> GoogleEndpoint:
        key = ServiceAccountKey.parse(self._target.credentials.token)
        model_url = self.model_url(key)
        access_token = await self._tokens.access_token(key)
        headers = {"authorization": f"Bearer {access_token}"}
        # Not the key JSON whole: its public parts (URLs, the account's email) appear in Google's own
        # messages, which would be redacted to nothing.
        return GoogleEndpoint(model_url, headers, (*key.secrets(), access_token))

    def model_url(self, key: ServiceAccountKey) -> str:
        settings = self._target.settings
        location = settings.get("location") or VERTEX_DEFAULT_LOCATION
        if not _LOCATION.fullmatch(location):  # it becomes part of the host name the token is sent to
            raise _bad_setting("location")
        host = settings.get("apiEndpoint") or self._target.model_url or _vertex_host(location)
        if not host.startswith(("https://", "http://")):
            host = f"https://{host}"  # Google's client libraries take apiEndpoint as a bare host name
        if named := _named_model_url(host):
            return named
        project = settings.get("projectId") or key.project_id
        if not project:
            raise _bad_setting("projectId")
        publisher = settings.get("publisher") or "google"
        model = self._target.provider_model_id.removeprefix("models/")
        return (
            f"{_versioned(host, VERTEX_API_VERSION)}/projects/{project}/locations/{location}"
            f"/publishers/{publisher}/models/{model}"
        )


def _bad_setting(name: str) -> ProviderError:
    return ProviderError(
        ProviderErrorCode.BAD_REQUEST, f"the Vertex AI model has no valid `{name}` setting", retryable=False
    )


def _vertex_host(location: str) -> str:
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _named_model_url(url: str) -> str | None:
    """A URL that already names the model (`…/models/{model}`, maybe with `:method` and a query),
    reduced to the model resource; None for an API base."""
    parts = urlsplit(url)
    if "/models/" not in parts.path:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path.split(":", 1)[0].rstrip("/"), "", ""))


def _versioned(base: str, version: str) -> str:
    base = base.rstrip("/")
    return base if _VERSIONED_BASE.search(base) else f"{base}/{version}"


# --- Vertex AI access tokens ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The parts of a service-account key JSON that signing needs. `repr` hides the private key."""

    client_email: str
    private_key: str = field(repr=False)
    private_key_id: str | None = None
    project_id: str | None = None

    @classmethod
    def parse(cls, key_json: str | None) -> ServiceAccountKey:
        if not key_json:
            raise _auth_failed("no service-account key is configured for this Vertex AI model")
        try:
            data = json.loads(key_json)
            key = cls(
                client_email=str(data["client_email"]),
                private_key=str(data["private_key"]),
                private_key_id=data.get("private_key_id"),
                project_id=data.get("project_id"),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            # `from None`: a JSON error carries the whole document, i.e. the key.
            raise _auth_failed("the Vertex AI credential is not a service-account key JSON") from None
        return key

    def secrets(self) -> tuple[str, ...]:
        """What an error message must never show: the private key and its id (sent in assertions)."""
        return tuple(s for s in (self.private_key, self.private_key_id) if s)

    @property
    def cache_key(self) -> str:
        # The private key is part of the identity: a key JSON that merely names another account's
        # email must not be handed that account's cached token.
        material = f"{self.client_email}\0{self.private_key}".encode()
        return hashlib.sha256(material).hexdigest()

    def assertion(self, *, audience: str, now: float) -> str:
        claims = {
            "iss": self.client_email,
            "scope": _CLOUD_PLATFORM_SCOPE,
            "aud": audience,
            "iat": int(now),
            "exp": int(now) + _ASSERTION_LIFETIME_SECONDS,
        }
        headers = {"kid": self.private_key_id} if self.private_key_id else None
        try:
            return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError):
            raise _auth_failed("the service-account private key cannot sign (not an RSA PEM key)") from None


@dataclass(frozen=True, slots=True)
class _AccessToken:
    value: str = field(repr=False)
    refresh_at: float


class GoogleTokenCache:
    """Access tokens per service-account key, refreshed one at a time per key."""

    def __init__(self, http: UpstreamHttp, token_url: str, clock: Callable[[], float]) -> None:
        self._http = http
        self._token_url = token_url
        self._clock = clock
        self._tokens: dict[str, _AccessToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def access_token(self, key: ServiceAccountKey) -> str:
        cached = self._fresh(key.cache_key)
        if cached is not None:
            return cached
        async with self._locks.setdefault(key.cache_key, asyncio.Lock()):
            # Whoever held the lock before us may have refreshed it already.
            cached = self._fresh(key.cache_key)
            if cached is not None:
                return cached
            token = await self._exchange(key)
            self._tokens[key.cache_key] = token
            return token.value

    def _fresh(self, cache_key: str) -> str | None:
        token = self._tokens.get(cache_key)
        return token.value if token is not None and self._clock() < token.refresh_at else None

    async def _exchange(self, key: ServiceAccountKey) -> _AccessToken:
        now = self._clock()
        assertion = key.assertion(audience=self._token_url, now=now)
        form = urlencode({"grant_type": _JWT_BEARER_GRANT, "assertion": assertion})
        try:
            async with self._http.open(
                "POST",
                self._token_url,
                headers={"content-type": "application/x-www-form-urlencoded"},
                raw_body=form.encode(),
                read_error=_token_error_reader((*key.secrets(), assertion)),
            ) as response:
                content = await self._http.read(response)
        except (ProviderError, aiohttp.ClientError, TimeoutError) as exc:
            raise _refresh_failed(exc) from exc
        try:
            payload = orjson.loads(content)
            value = str(payload["access_token"])
            expires_in = float(payload.get("expires_in", _ASSERTION_LIFETIME_SECONDS))
        except (ValueError, KeyError, TypeError):
            raise _auth_failed("the Google token endpoint answered without an access token") from None
        # Short-lived tokens (as a test endpoint may issue) are still reused for half their life.
        margin = min(_REFRESH_MARGIN_SECONDS, expires_in / 2)
        return _AccessToken(value=value, refresh_at=now + expires_in - margin)


def google_token_cache(runtime: ProviderRuntime) -> GoogleTokenCache:
    """The runtime's one token cache."""
    return runtime.shared(
        "google-oauth-tokens",
        lambda: GoogleTokenCache(runtime.http, runtime.config.google_oauth_url, runtime.clock),
    )


def _token_error_reader(secrets: tuple[str, ...]) -> ErrorReader:
    """Google's OAuth errors are `{"error": "invalid_grant", "error_description": "…"}`. A refused key
    is permanent; a busy or failing endpoint (429, 5xx) is worth another try."""

    def read(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        try:
            payload = orjson.loads(body)
            detail = ": ".join(str(payload[k]) for k in ("error", "error_description") if payload.get(k))
        except (ValueError, TypeError, AttributeError):
            detail = ""
        transient = status == 429 or status >= 500
        reason = f"HTTP {status}: {safe_detail(detail, secrets)}" if detail else f"HTTP {status}"
        return ProviderError(
            ProviderErrorCode.AUTH_FAILED,
            f"could not obtain a Vertex AI access token ({reason})",
            status=status,
            retryable=transient,
        )

    return read


def _refresh_failed(exc: BaseException) -> ProviderError:
    """Any failure to refresh is reported as AUTH_FAILED, keeping whether it is worth retrying."""
    if isinstance(exc, ProviderError) and exc.code == ProviderErrorCode.AUTH_FAILED:
        return exc
    cause = error_from_exception(exc)
    return ProviderError(
        ProviderErrorCode.AUTH_FAILED,
        f"could not obtain a Vertex AI access token: {cause.message}",
        status=cause.status,
        retryable=cause.retryable,
    )


def _auth_failed(message: str) -> ProviderError:
    return ProviderError(ProviderErrorCode.AUTH_FAILED, message, retryable=False)
