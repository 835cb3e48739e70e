"""The persisted query store: bounded by documents and by characters, least recently used out first,
one string object per document (what lets the parser cache find it without comparing texts)."""

from __future__ import annotations

import hashlib

import pytest

from app.api.errors import ErrorCode
from app.api.persisted_queries import PersistedQueries, PersistedQueryRefused


def ask(query: str) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


def known(store: PersistedQueries, query: str) -> bool:
    try:
        text = store.resolve(None, ask(query))
    except PersistedQueryRefused as refused:
        if refused.code is ErrorCode.PERSISTED_QUERY_NOT_FOUND:
            return False
        raise
    return text == query


def test_a_query_without_the_extension_passes_through() -> None:
    store = PersistedQueries()
    assert store.resolve("{ a }", None) == "{ a }"
    assert store.resolve("{ a }", {"other": 1}) == "{ a }"
    assert len(store) == 0


def test_the_kept_text_is_handed_out_as_one_object() -> None:
    store = PersistedQueries()
    first = "".join(["{ ", "a }"])
    second = "".join(["{ a", " }"])
    assert store.resolve(first, ask(first)) is first
    assert store.resolve(second, ask(second)) is first
    assert store.resolve(None, ask(first)) is first
    assert store.resolve("", ask(first)) is first


def test_the_least_recently_used_document_goes_first() -> None:
    store = PersistedQueries(max_documents=2)
    for query in ("{ a }", "{ b }"):
        store.resolve(query, ask(query))
    assert known(store, "{ a }")  # now the most recently used
    store.resolve("{ c }", ask("{ c }"))
    assert [known(store, q) for q in ("{ a }", "{ b }", "{ c }")] == [True, False, True]


def test_the_characters_kept_are_bounded() -> None:
    store = PersistedQueries(max_characters=30)
    big = "{ " + "a " * 10 + "}"  # 24 characters
    store.resolve(big, ask(big))
    store.resolve("{ b }", ask("{ b }"))
    store.resolve("{ c }", ask("{ c }"))  # 34 characters: the oldest goes
    assert [known(store, q) for q in (big, "{ b }", "{ c }")] == [False, True, True]
    huge = "{ " + "a " * 20 + "}"
    assert store.resolve(huge, ask(huge)) == huge  # runs, but is not kept
    assert not known(store, huge)


@pytest.mark.parametrize("query", [None, "{ a }"])
def test_a_hash_in_upper_case_is_refused(query: str | None) -> None:
    extensions = {
        "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(b"{ a }").hexdigest().upper()}
    }
    with pytest.raises(PersistedQueryRefused) as refused:
        PersistedQueries().resolve(query, extensions)
    assert (refused.value.status, refused.value.code) == (400, ErrorCode.BAD_USER_INPUT)
