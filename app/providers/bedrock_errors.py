"""Bedrock failures as ProviderErrors: botocore's ClientError codes (HTTP errors and in-stream
exception frames), botocore's connection and credential errors, and the raw aiohttp and
event-stream errors that surface while a ConverseStream body is read."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from botocore.eventstream import ParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    EventStreamError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)
from multidict import CIMultiDict

from app.domain.calls import ProviderError, ProviderErrorCode
from app.providers.http import code_for_status, status_error
from app.providers.redact import safe_detail

# Error codes as botocore reports them, HTTP errors in UpperCamel; in-stream exception frames use the
# lowerCamel union member name (throttlingException) and are looked up with the first letter raised.
_CODES = {
    "ThrottlingException": ProviderErrorCode.RATE_LIMITED,
    "ServiceQuotaExceededException": ProviderErrorCode.RATE_LIMITED,
    "ServiceUnavailableException": ProviderErrorCode.OVERLOADED,
    "ModelNotReadyException": ProviderErrorCode.OVERLOADED,
    "ValidationException": ProviderErrorCode.BAD_REQUEST,
    "ResourceNotFoundException": ProviderErrorCode.BAD_REQUEST,
    "AccessDeniedException": ProviderErrorCode.AUTH_FAILED,
    "UnrecognizedClientException": ProviderErrorCode.AUTH_FAILED,
    "InvalidSignatureException": ProviderErrorCode.AUTH_FAILED,
    "ExpiredTokenException": ProviderErrorCode.AUTH_FAILED,
    "InternalServerException": ProviderErrorCode.UPSTREAM_ERROR,
    "ModelErrorException": ProviderErrorCode.UPSTREAM_ERROR,
    "ModelStreamErrorException": ProviderErrorCode.UPSTREAM_ERROR,
    "ModelTimeoutException": ProviderErrorCode.TIMEOUT,
}

# Bedrock reports an oversized prompt as a plain ValidationException ("Input is too long for
# requested model.", "too many input tokens"); only the message tells it apart.
_CONTEXT_TOO_LONG = re.compile(r"(?i)too long|too many (input )?tokens|context (window|length)")


@asynccontextmanager
async def bedrock_errors(secrets: Callable[[], Awaitable[tuple[str, ...]]]) -> AsyncIterator[None]:
    """Re-raises whatever botocore or aiohttp raise inside the block as a ProviderError, its message
    redacted of `secrets()` (asked only on failure: AWS credentials may have been refreshed)."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        error = provider_error(exc, await secrets())
        if error is None:
            raise
        raise error from exc


def provider_error(exc: Exception, secrets: tuple[str, ...]) -> ProviderError | None:
    """The ProviderError for a Bedrock call's exception; None when the base mapping will do."""
    if isinstance(exc, ClientError):
        return _client_error(exc, secrets)
    if isinstance(exc, ReadTimeoutError | TimeoutError):
        return ProviderError(ProviderErrorCode.TIMEOUT, "the provider did not answer in time")
    if isinstance(exc, BotocoreConnectionError):
        return ProviderError(ProviderErrorCode.CONNECT_FAILED, "could not connect to the provider")
    if isinstance(exc, HTTPClientError | aiohttp.ClientError):
        return ProviderError(ProviderErrorCode.CONNECT_FAILED, "the connection to the provider failed")
    if isinstance(exc, ParserError):
        return ProviderError(ProviderErrorCode.MALFORMED_RESPONSE, "the provider sent a malformed event")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return ProviderError(
            ProviderErrorCode.AUTH_FAILED, "no usable AWS credentials for Bedrock", retryable=False
        )
    if isinstance(exc, NoRegionError):
        return ProviderError(
            ProviderErrorCode.BAD_REQUEST, "no AWS region is configured for Bedrock", retryable=False
        )
    if isinstance(exc, ParamValidationError):
        return ProviderError(
            ProviderErrorCode.BAD_REQUEST,
            f"Bedrock refused the request: {safe_detail(str(exc), secrets)}",
            retryable=False,
        )
    if isinstance(exc, BotoCoreError):
        return ProviderError(ProviderErrorCode.UPSTREAM_ERROR, "the Bedrock call failed")
    return None


def _client_error(exc: ClientError, secrets: tuple[str, ...]) -> ProviderError:
    error: dict[str, Any] = exc.response.get("Error", {})
    name = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    code = _CODES.get(name[:1].upper() + name[1:])
    if code is ProviderErrorCode.BAD_REQUEST and _CONTEXT_TOO_LONG.search(message):
        code = ProviderErrorCode.CONTEXT_TOO_LONG
    detail = f"{name}: {message}" if message else name
    if isinstance(exc, EventStreamError):
        return ProviderError(
            code or ProviderErrorCode.UPSTREAM_ERROR,
            f"the provider stream failed: {safe_detail(detail, secrets)}",
        )
    metadata: dict[str, Any] = exc.response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode") or 500)
    headers = CIMultiDict(metadata.get("HTTPHeaders") or {})
    # Without an x-amzn-ErrorType header botocore reports the bare status ("429") as the code.
    return status_error(status, headers, detail, code=code or code_for_status(status), secrets=secrets)
