"""A bounded store of whole query responses, emptied whenever what they were made from changes
(see app/api/response_cache.py for which responses qualify)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class ResponseCache:
    def __init__(
        self, *, ttl: float = 5.0, size: int = 2048, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[object, float]] = OrderedDict()
        self._generation = 0

    def get(self, key: Hashable) -> object | None:
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry[1] >= self.ttl:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, result: object, generation: int) -> None:
        if generation != self._generation:  # the catalog changed while this was executing
            return
        self._entries[key] = (result, self.clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    @property
    def generation(self) -> int:
        return self._generation

    def invalidate(self, _key: str | None = None) -> None:
        self._generation += 1
        self._entries.clear()
