"""Small value helpers shared by services."""

from __future__ import annotations

from typing import Final, TypeAlias, TypeVar

T = TypeVar("T")


class UnsetType:
    """Marks an update field the caller did not send (as opposed to sending null)."""

    _instance: UnsetType | None = None

    def __new__(cls) -> UnsetType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = UnsetType()

Maybe: TypeAlias = T | UnsetType


def apply(change: T | UnsetType, current: T) -> T:
    return current if isinstance(change, UnsetType) else change


def with_article(word: str) -> str:
    """ "a chat", "an embedding", "an Organization": for messages that name a kind of thing."""
    return f"{'an' if word[:1].upper() in 'AEIOU' else 'a'} {word}"
