"""Images for providers that take only bytes (Gemini's `inlineData`, Bedrock's image blocks).

Every other provider fetches an image URL itself, so Modelgate never does. Where a provider needs the
bytes, the download is the one place Modelgate fetches a URL a caller chose: it goes through the same
outbound guard as a model URL (https only, no private addresses, the guarded resolver at connect
time), and its type and size are limited before the bytes reach the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.domain.calls import IMAGE_MEDIA_TYPES, MAX_IMAGE_BYTES, ImagePart, ProviderError, ProviderErrorCode
from app.providers.http import UpstreamHttp
from app.providers.outbound import UnsafeUpstreamError, check_url


@dataclass(frozen=True, slots=True)
class InlineImage:
    media_type: str
    data: bytes


def _refused(message: str) -> ProviderError:
    # The caller's input is at fault: a fallback would fetch the same URL, so it is not retried.
    return ProviderError(ProviderErrorCode.BAD_REQUEST, message, retryable=False)


def _image_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    return _refused(f"the image URL answered HTTP {status}")


async def inline_image(http: UpstreamHttp, image: ImagePart) -> InlineImage:
    """The image's bytes and media type: as given, or downloaded from its URL under the limits."""
    if image.data is not None:
        if image.media_type not in IMAGE_MEDIA_TYPES:
            raise _refused(f"image media type {image.media_type!r} is not supported")
        return InlineImage(image.media_type, image.data)
    if image.url is None:
        raise _refused("an image needs a URL or data")
    try:
        check_url(image.url, allow_private=http.allow_private)
    except UnsafeUpstreamError as exc:
        raise _refused(f"the image URL {exc}") from exc
    async with http.open(
        "GET", image.url, headers={"accept": ", ".join(sorted(IMAGE_MEDIA_TYPES))}, read_error=_image_error
    ) as response:
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in IMAGE_MEDIA_TYPES:
            raise _refused(f"the image URL answered {media_type or 'no content type'}, not an image")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
            raise _refused(f"the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
        data = bytearray()
        async for chunk in http.iter_bytes(response):
            data += chunk
            if len(data) > MAX_IMAGE_BYTES:  # a missing or false content-length is no way around it
                raise _refused(f"the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    return InlineImage(media_type, bytes(data))
