"""Automatic persisted queries: Apollo's protocol, which Apollo Client, urql and Apollo's mobile
clients speak.

A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": …}` without the query
text (over GET too, so that CDNs may cache it). A hash this process knows is answered as if the
text had come; an unknown one gets the error `PersistedQueryNotFound` (code
`PERSISTED_QUERY_NOT_FOUND`, status 200 as Apollo Server answers it), and the client sends the text
with its hash once, which is checked (SHA-256 of the text, hex) and kept. Any other version, or a
hash that is not the text's, is refused (400, BAD_USER_INPUT).

The store is one bounded LRU per process (not shared between instances or workers: a client whose
hash another instance knows sends the text once more there). It hands out one `str` object per
document: the parser cache then finds it by a hash Python keeps in the string and an identity
comparison, and the validation and query-limit verdicts are cached per parsed document
(`app.api.schema`), so a persisted document is parsed, validated and costed once; its cost is
still charged on every request. A document is kept when its hash is right, before validation (as
GraphQL Yoga does): one that fails validation answers its cached errors each time it is sent.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from app.api.errors import ErrorCode

VERSION = 1
NOT_FOUND = "PersistedQueryNotFound"
MAX_DOCUMENTS = 2048
MAX_CHARACTERS = 16 * 2**20  # every kept text together: a bound on what hostile registrations hold
_HEX = frozenset("0123456789abcdef")


class PersistedQueryRefused(Exception):
    """A persisted query that cannot run: unknown (the client sends the text next), or malformed."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def formatted(self) -> dict[str, Any]:
        """The GraphQL error of a WebSocket message (the handler adds the request id)."""
        return {"message": str(self), "extensions": {"code": self.code.value}}


def _refused(message: str) -> PersistedQueryRefused:
    return PersistedQueryRefused(400, ErrorCode.BAD_USER_INPUT, message)


class PersistedQueries:
    """Query texts by SHA-256 hash, the least recently used dropped first."""

    def __init__(self, max_documents: int = MAX_DOCUMENTS, max_characters: int = MAX_CHARACTERS) -> None:
        self.max_documents = max_documents
        self.max_characters = max_characters
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._characters = 0

    def __len__(self) -> int:
        return len(self._texts)

    def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The query text to run: `query` itself when no persisted query is asked for."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        if not isinstance(persisted, Mapping) or persisted.get("version") != VERSION:
            raise _refused(f"Unsupported persisted query version: send `version: {VERSION}`.")
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or len(digest) != 64 or not _HEX.issuperset(digest):
            raise _refused("`persistedQuery.sha256Hash` must be a SHA-256 hash in lower-case hex.")
        if query is None or query == "":
            text = self._texts.get(digest)
            if text is None:
                raise PersistedQueryRefused(200, ErrorCode.PERSISTED_QUERY_NOT_FOUND, NOT_FOUND)
            self._texts.move_to_end(digest)
            return text
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise _refused("provided sha does not match query")
        return self._keep(digest, query)

    def _keep(self, digest: str, query: str) -> str:
        known = self._texts.get(digest)
        if known is not None:
            self._texts.move_to_end(digest)
            return known  # the kept object: the parser cache finds it without comparing texts
        size = len(query)
        if size > self.max_characters:
            return query  # runs, but is not kept
        self._texts[digest] = query
        self._characters += size
        while len(self._texts) > self.max_documents or self._characters > self.max_characters:
            _, dropped = self._texts.popitem(last=False)
            self._characters -= len(dropped)
        return query
