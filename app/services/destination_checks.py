"""Save-time checks of a destination (a model's or a connection's): every URL in it must be one the
outbound policy lets Modelgate call. The call-time guard checks again at connect time."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from app.domain.errors import CommonErrorCode, ErrorCollector
from app.domain.model_rules import url_settings
from app.providers.outbound import UnsafeUpstreamError, check_url

MODEL_URL_MAX = 2000


def check_destination_urls(
    errors: ErrorCollector,
    model_url: str | None,
    settings: Mapping[str, Any],
    *,
    allow_private: bool,
    code: StrEnum,
) -> None:
    urls = [("modelUrl", model_url)] if model_url else []
    urls += [(f"providerSettings.{key}", value) for key, value in url_settings(dict(settings))]
    for field, url in urls:
        if len(url) > MODEL_URL_MAX:
            errors.add(
                CommonErrorCode.TOO_LONG,
                f"must be at most {MODEL_URL_MAX} characters",
                "input",
                *field.split("."),
            )
        elif url.startswith("bedrock://"):
            continue  # an AWS model id, reached through the AWS SDK's own endpoint
        else:
            try:
                check_url(url, allow_private=allow_private)
            except UnsafeUpstreamError as exc:
                errors.add(code, str(exc), "input", *field.split("."))
