"""Where a credential is sent: the fields and settings that decide a request's host, path prefix or
the headers that carry the credential, per provider.

A credential is bound to the destination its owner chose. A model that uses a credential its caller
did not supply (inherited from a parent system model, or from a connection) takes that owner's
destination whole and may not change any of these fields; at call time the provider target is built
from the destination of whichever row the credential came from, so no stored field can redirect it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from app.domain.credentials import CredentialChanges
from app.domain.enums import Provider
from app.domain.errors import ErrorCollector
from app.domain.models import ModelKind, ModelRecord

# Per provider, the provider settings that redirect a request or rename the headers carrying its
# credential. `modelUrl` (and the provider itself, which picks the public base URL) always does.
DESTINATION_SETTINGS: dict[Provider, frozenset[str]] = {
    Provider.OPENAI: frozenset({"clientKeyHeader", "secretKeyHeader"}),
    Provider.AZURE_OPENAI: frozenset({"resourceName", "deploymentName", "baseCustomUrl"}),
    Provider.GOOGLE_VERTEX_AI: frozenset({"location", "apiEndpoint", "projectId"}),
    Provider.GOOGLE_GENAI: frozenset({"location"}),
    Provider.OPENAI_COMPATIBLE: frozenset(
        {"baseCustomUrl", "customAuthHeader", "clientKeyHeader", "secretKeyHeader"}
    ),
    Provider.AWS_BEDROCK: frozenset({"region"}),
    Provider.ANTHROPIC: frozenset(),
    Provider.ALEPH_ALPHA: frozenset(),
    Provider.MISTRAL: frozenset(),
    Provider.ECHO: frozenset(),
}
# Every destination setting of any provider: what a stored row is stripped of before its own
# destination (or its credential owner's) is applied.
ALL_DESTINATION_SETTINGS = frozenset().union(*DESTINATION_SETTINGS.values())


@dataclass(frozen=True, slots=True)
class Destination:
    """A credential's destination: the model URL and the destination settings, nothing else."""

    model_url: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, provider: Provider | None, model_url: str | None, settings: Mapping[str, Any]) -> Destination:
        """The destination part of a row's fields (other settings are left out)."""
        keys = DESTINATION_SETTINGS.get(provider, frozenset()) if provider else frozenset()
        return cls(model_url, {k: str(v) for k, v in settings.items() if k in keys})


def destination_settings(provider: Provider | None, settings: Mapping[str, Any]) -> list[str]:
    """The names of the settings in `settings` that are destination settings for `provider`."""
    keys = DESTINATION_SETTINGS.get(provider, frozenset()) if provider else ALL_DESTINATION_SETTINGS
    return sorted(k for k in settings if k in keys)


def without_destination(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that cannot redirect a credential (temperature-like defaults, model names)."""
    return {k: v for k, v in settings.items() if k not in ALL_DESTINATION_SETTINGS}


def changed_destination_fields(
    before: tuple[Provider | None, str | None, Mapping[str, Any]],
    after: tuple[Provider | None, str | None, Mapping[str, Any]],
) -> list[str]:
    """The input fields (`provider`, `modelUrl`, `providerSettings.<key>`) whose change moves a row's
    credential to another destination; (provider, model URL, settings) before and after."""
    changed = []
    if before[0] is not after[0] and before[0] is not None:
        changed.append("provider")
    if before[1] != after[1]:
        changed.append("modelUrl")
    before_settings = Destination.of(after[0], None, before[2]).settings
    after_settings = Destination.of(after[0], None, after[2]).settings
    for key in sorted(set(before_settings) | set(after_settings)):
        if before_settings.get(key) != after_settings.get(key):
            changed.append(f"providerSettings.{key}")
    return changed


def credentials_for_move(
    errors: ErrorCollector,
    moved: list[str],
    stored: tuple[bool, bool],
    changes: CredentialChanges,
    code: StrEnum,
) -> CredentialChanges:
    """A stored credential never follows its row to a new destination: the caller sends it again
    (or clears it) in the same change, and whatever stored credential it does not send again is
    cleared. `stored` is (has token, has clientKey/secretKey)."""
    has_token, has_client_key = stored
    if not moved or not (has_token or has_client_key):
        return changes
    resent = changes.token is not None or changes.client_key is not None
    cleared = (not has_token or changes.clear_token) and (not has_client_key or changes.clear_client_keys)
    if not (resent or cleared):
        for name in moved:
            errors.add(
                code,
                "changes where the stored credential is sent: send the credential again (token, or "
                "clientKey and secretKey) in the same change, or clear it",
                "input",
                *name.split("."),
            )
        return changes
    return replace(
        changes,
        clear_token=changes.clear_token or (has_token and changes.token is None),
        clear_client_keys=changes.clear_client_keys or (has_client_key and changes.client_key is None),
    )


def check_model_destination(
    errors: ErrorCollector, model: ModelRecord, parent: ModelRecord | None, code: StrEnum
) -> None:
    """A model may set its own destination only when the credential it uses is its own: a variant
    keeps its parent's destination whole; a model using a connection takes the connection's
    credentials and endpoint (never credentials of its own as well); and the platform's own cloud
    identity (Bedrock's AWS credential chain) serves system models and their variants only."""
    provider = model.provider or (parent.provider if parent else None)
    if parent is not None:
        reason = "a variant sends its parent's credential only where the parent does: it cannot set this"
    elif model.connection_id is not None:
        reason = "a model using a connection takes the connection's endpoint: set this on the connection"
        if model.model_url:
            errors.add(code, reason, "input", "modelUrl")
        if model.has_token or model.has_client_key:
            errors.add(
                code,
                "a model using a connection is called with the connection's credentials: clear "
                "connectionId to use credentials of its own, or clear these",
                "input",
                "token" if model.has_token else "clientKey",
            )
    else:
        if model.kind is ModelKind.USER and provider is Provider.AWS_BEDROCK:
            errors.add(
                code,
                "AWS Bedrock is called with the platform's AWS identity: use a variant of a system "
                "Bedrock model (parentModelId)",
                "input",
                "provider",
            )
        return
    for key in destination_settings(provider, model.provider_settings):
        errors.add(code, reason, "input", "providerSettings", key)
