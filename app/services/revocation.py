"""Revocation and expiry reach connections that outlive the moment their caller authenticated.

A WebSocket carries many operations, and a stream (over a WebSocket or SSE) runs for as long as
the answer takes. `CallerSession` keeps the credential the connection presented, to check it
again: at the start of every operation on it, and for each running stream whenever something may
have invalidated it. `RevocationWatch` knows when that is: an API key changed (revoked, or its
project deleted) on any instance, an organization or project changed, or the credential's own
expiry (a key's `expiresAt`, a JWT's `exp`) came. A stream whose caller fails the check is
interrupted at once, its upstream call closed, and it ends with a final event of the caller's
choosing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing, contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from app.db import DatabaseUnavailable
from app.domain.auth import Principal
from app.domain.errors import Unauthenticated
from app.domain.gateway import GatewayError, GatewayErrorCode, GatewayStreamEvent, StreamError
from app.services.auth import Authenticator, Credential
from app.services.notifications import API_KEYS_TOPIC, TENANCY_TOPIC, Notifications

log = logging.getLogger(__name__)

T = TypeVar("T")


class CallerSession:
    """A caller on a long-lived connection. Once its credential fails a check the session stays
    refused: a revoked or expired credential does not come back."""

    def __init__(self, credential: Credential, principal: Principal, generation: int) -> None:
        self.credential = credential
        self.principal = principal
        self.refused = False
        self.generation = generation  # RevocationWatch.generation when last checked

    def affected_by(self, topic: str, key: str | None) -> bool:
        """Whether a change of `key` in `topic` may have invalidated this credential."""
        if key is None:
            return True
        if topic == API_KEYS_TOPIC:
            return self.credential.api_key_prefix == key
        ids = (self.principal.organization_id, self.principal.project_id)
        return key in {str(i) for i in ids if i is not None}


class RevocationWatch:
    """Ends the running streams of callers whose credential stopped being valid, on this instance
    (the notifications reach every instance)."""

    def __init__(
        self,
        authenticator: Authenticator,
        notifications: Notifications,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.authenticator = authenticator
        self.clock = clock
        self.generation = 0  # counts changes, so that a stream can tell whether it missed one
        self._streams: dict[CallerSession, list[Callable[[], None]]] = {}
        self._expiries: dict[CallerSession, asyncio.TimerHandle] = {}
        self._checks: set[asyncio.Task[None]] = set()
        notifications.subscribe(API_KEYS_TOPIC, partial(self._changed, API_KEYS_TOPIC))
        notifications.subscribe(TENANCY_TOPIC, partial(self._changed, TENANCY_TOPIC))

    async def open(self, credential: Credential) -> CallerSession:
        """A session for `credential`; Unauthenticated when it does not authenticate."""
        generation = self.generation
        return CallerSession(credential, await self.authenticator.authenticate(credential), generation)

    async def check(self, session: CallerSession) -> Principal:
        """The caller as the credential authenticates now; Unauthenticated once it no longer does.
        Cheap for API keys (the key cache); a JWT is verified again."""
        if session.refused:
            raise Unauthenticated()
        generation = self.generation
        try:
            session.principal = await self.authenticator.authenticate(session.credential)
        except Unauthenticated:
            session.refused = True
            raise
        session.generation = max(session.generation, generation)
        return session.principal

    async def until_refused(
        self, session: CallerSession, events: AsyncGenerator[T], refused: Callable[[], T]
    ) -> AsyncGenerator[T]:
        """`events`, until the caller's credential is found revoked or expired: then `events` is
        closed (its upstream call with it) and `refused()` is the last event."""
        interrupt = _Interrupt()
        async with aclosing(events):
            with self._watching(session, interrupt.fire):
                if session.refused:
                    interrupt.fire()
                elif session.generation != self.generation:  # a change came since the last check
                    self._check_soon([session])
                while not interrupt.fired:
                    interrupt.arm()
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        return
                    except asyncio.CancelledError:
                        if not interrupt.was_the_cause():
                            raise
                        break
                    finally:
                        interrupt.disarm()
                    yield event
        yield refused()

    @contextmanager
    def _watching(self, session: CallerSession, on_refused: Callable[[], None]) -> Iterator[None]:
        callbacks = self._streams.setdefault(session, [])
        callbacks.append(on_refused)
        expires_at = session.principal.expires_at
        if session not in self._expiries and expires_at is not None:
            delay = (expires_at - self.clock()).total_seconds()
            self._expiries[session] = asyncio.get_running_loop().call_later(delay, self._refuse, session)
        try:
            yield
        finally:
            callbacks.remove(on_refused)
            if not callbacks:
                del self._streams[session]
                if expiry := self._expiries.pop(session, None):
                    expiry.cancel()

    def _changed(self, topic: str, key: str | None) -> None:
        self.generation += 1
        # One check per credential, however many streams (and sockets) use it: a change that
        # concerns every key (a project deleted) must not send each stream to the database.
        affected: dict[Credential, list[CallerSession]] = {}
        for session in self._streams:
            if session.affected_by(topic, key):
                affected.setdefault(session.credential, []).append(session)
        for sessions in affected.values():
            self._check_soon(sessions)

    def _check_soon(self, sessions: list[CallerSession]) -> None:
        task = asyncio.create_task(self._check(sessions), name="caller-check")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _check(self, sessions: list[CallerSession]) -> None:
        """Checks the credential the `sessions` share, and refuses them all if it fails."""
        try:
            principal = await self.check(sessions[0])
        except Unauthenticated:
            for session in sessions:
                self._refuse(session)
        except DatabaseUnavailable:
            # The key cache was just dropped and the database does not answer: new operations are
            # refused meanwhile (SERVICE_UNAVAILABLE), and the next change or operation checks again.
            log.warning("could not check a caller again after a change: the database is unavailable")
        else:
            for session in sessions[1:]:
                session.principal, session.generation = principal, sessions[0].generation

    def _refuse(self, session: CallerSession) -> None:
        session.refused = True
        for on_refused in list(self._streams.get(session, ())):
            on_refused()


def stream_refused() -> GatewayStreamEvent:
    """The last event of a gateway stream whose caller was refused."""
    return StreamError(
        GatewayError(GatewayErrorCode.UNAUTHENTICATED, "the credential was revoked or has expired")
    )


class _Interrupt:
    """Interrupts the task that awaits a stream's next event, and tells that cancellation apart
    from any other (the client going away), as asyncio.timeout does. No task or future is made per
    event (about a microsecond per event in all)."""

    def __init__(self) -> None:
        self.fired = False
        self._waiting: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._cancelled = False

    def arm(self) -> None:
        """The current task awaits the next event from now on: `fire` interrupts it."""
        task = asyncio.current_task()
        assert task is not None
        self._waiting, self._cancelling = task, task.cancelling()

    def disarm(self) -> None:
        self._waiting = None

    def fire(self) -> None:
        if self.fired:
            return
        self.fired = True
        if self._waiting is not None:  # else the stream stops when it next asks for an event
            self._cancelled = True
            self._waiting.cancel()

    def was_the_cause(self) -> bool:
        task = asyncio.current_task()
        return self._cancelled and task is not None and task.uncancel() <= self._cancelling
