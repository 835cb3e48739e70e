"""What PostgreSQL can store, checked before a value reaches it: text without NUL, JSON that jsonb
and our encoder take, decimals that fit their column exactly, and instants in UTC.

Each check returns a message for the caller (never the value itself, which may be a credential), or
None when the value is fine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

# text and jsonb refuse U+0000; a lone surrogate has no UTF-8 form (JSON decoding and the GraphQL
# lexer refuse them already: this is the last line).
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
TEXT_PROBLEM = "must not contain the NUL character or unpaired surrogates"
# orjson (our jsonb encoder) writes whole numbers up to 64 bits and nests up to 255 levels.
JSON_MAX_DEPTH = 64
_JSON_INT_MIN, _JSON_INT_MAX = -(2**63), 2**63 - 1


def text_problem(value: str) -> str | None:
    return TEXT_PROBLEM if _FORBIDDEN.search(value) else None


def float_problem(value: float) -> str | None:
    return None if math.isfinite(value) else "must be a finite number"


def json_problems(value: object, depth: int = 0) -> Iterator[tuple[tuple[str, ...], str]]:
    """(path below `value`, message) for each part of a decoded JSON value that cannot be stored."""
    if isinstance(value, str):
        if problem := text_problem(value):
            yield (), problem
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not _JSON_INT_MIN <= value <= _JSON_INT_MAX:
            yield (), "whole numbers must fit in 64 bits"
    elif isinstance(value, float):
        if problem := float_problem(value):
            yield (), problem
    elif depth >= JSON_MAX_DEPTH:
        yield (), f"must not be nested more than {JSON_MAX_DEPTH} levels deep"
    elif isinstance(value, dict):
        for key, item in value.items():
            if text_problem(key):
                yield (), f"keys {TEXT_PROBLEM}"
                continue
            for path, problem in json_problems(item, depth + 1):
                yield (key, *path), problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for path, problem in json_problems(item, depth + 1):
                yield (str(index), *path), problem


@dataclass(frozen=True, slots=True)
class DecimalColumn:
    """A numeric(precision, scale) column, with the bounds the domain gives it: a value in range is
    stored exactly, and one with more decimal places than the column keeps is refused rather than
    rounded (1e-400 would be stored as 0). Precision at most 28, the decimal module's default."""

    precision: int
    scale: int
    minimum: Decimal = Decimal(0)
    maximum: Decimal | None = None  # None: the largest value the column holds

    @property
    def upper(self) -> Decimal:
        if self.maximum is not None:
            return self.maximum
        return Decimal(10) ** (self.precision - self.scale) - Decimal(10) ** -self.scale

    def problem(self, value: Decimal) -> str | None:
        # is_finite first: comparing a NaN raises; the range before the places: quantizing a huge
        # value raises too.
        if (
            value.is_finite()
            and self.minimum <= value <= self.upper
            and value == value.quantize(Decimal(10) ** -self.scale)
        ):
            return None
        places = f"at most {self.scale} decimal places"
        return f"must be a number from {self.minimum} to {self.upper:,} with {places}"


class InstantOutOfRange(ValueError):
    """A date and time that has no UTC form in the calendar (years 1-9999)."""


def utc_instant(moment: datetime) -> datetime:
    """`moment` in UTC; one without an offset is read as UTC (the rule for every datetime input)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise InstantOutOfRange("is outside the years 1-9999 in UTC") from exc
