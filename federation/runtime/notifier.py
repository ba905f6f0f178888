"""Callbacks: telling the originating system how its application ended.

When an exchange ends (delivered, rejected, failed) and its source declared a ``callback`` URL in
partners.yaml, the journal marks it in the same transaction as the end state. This loop leases those
marks, POSTs the outcome (JSON, ``Idempotency-Key: <exchange id>:<state>`` so the source can discard
repeats, a lifecycle step that comes again numbered, and an end a replay brings again
(``<state>:<n>``, the n-th time it ended so), :func:`~federation.runtime.callbacks.step_key`;
signed in the Standard Webhooks format when the source declared a ``callback_secret``,
:mod:`~federation.domain.webhooks`, and never sent unsigned while that secret cannot be read; a
redirect is not followed) and records every try as an event of the exchange; failures are retried
as the retry strategy says (:data:`~federation.domain.retry.CALLBACKS` unless one is given), after
which the callback is abandoned (the outcome stays readable in the API). A try the journal could
not record (an outage) is logged and stays leased to this instance until its lease is over, then
is claimed and sent again under the same key; the loop pauses longer after each round that failed
and goes on: a journal outage or an unforeseen error never ends it. A callback support staff
resent (``tongban callback resend``) goes out as the message it resends, as its
``callback_replayed`` recorded it, even once a replay has brought the exchange to a new end, whose
own callback follows under its own key; a second resend as the first did. A callback of an end that
a replay replaced (retried once the replay landed, or taken by another instance as the replay freed
its lease) goes out as its ``replayed`` event recorded that end: every send under one key is the
same message. Every failed try counts toward the retry strategy, one journalled after a replay
took its lease too.

An application a partner filed whose service item reports in the partner's own dialect (a
``report:`` in partners.yaml and in its mapping) is told by a notice instead: mapped, sent over the
partner's protocol and judged by its reply rules and retry policy (:mod:`~federation.runtime.notices`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from adapters.httpio import failure_words, is_redirect, redirect_note
from federation.config.secrets import SecretError, SecretRef
from federation.domain.errors import JournalError, LeaseLost
from federation.domain.models import Direction, Event, Exchange, iso
from federation.domain.retry import CALLBACKS, Failure, RetryLater, RetryStrategy
from federation.domain.webhooks import RULE, signed_headers, signing_key
from federation.domain.words import shown_error
from federation.logging import MASK, bare_traceback, get_logger
from federation.runtime.breaker import Sleep
from federation.runtime.callbacks import Due, as_resent, due_callback
from federation.runtime.catalogue import Catalogue
from federation.runtime.delivery import standing_errors
from federation.runtime.events import cancelled, woken_or_timed_out
from federation.runtime.notices import Notices, Route, route_of
from federation.runtime.owed import state_of, step_of
from replay.journal import Journal

BACKOFF_CAP = 30.0  # seconds between rounds at most while the journal keeps failing


class Notifier:
    """Delivers callbacks for one broker instance."""

    def __init__(
        self,
        *,
        journal: Journal,
        catalogue: Callable[[], Catalogue],
        owner: str,
        poll_interval: float,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        retry: RetryStrategy = CALLBACKS,
        backoff_cap: float = BACKOFF_CAP,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.journal = journal
        self._catalogue = catalogue
        self.owner = owner
        self.poll_interval = poll_interval
        self._clock = clock
        self._timeout = timeout
        self._retry = retry
        self._backoff_cap = max(backoff_cap, poll_interval)
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._log = get_logger(component="notifier", owner=owner)
        self.notices = Notices(clock=clock)

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout, connect=min(3.0, self._timeout)),
            connector=aiohttp.TCPConnector(limit=32),
        )
        self._task = asyncio.create_task(self._loop(), name="notifier")

    async def stop(self) -> None:
        await cancelled(self._task)
        if self._session is not None:
            await self._session.close()
        await self.notices.close()

    def poke(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        """Claim what is due and send it, round after round, until stopped. A round the journal
        failed, or that failed in a way nobody foresaw, is logged and followed by a pause that
        doubles while it lasts (up to ``backoff_cap``): it never ends the loop, which nothing
        would start again (the broker would serve on, its callbacks silently stopped)."""
        failed = 0  # rounds in a row that failed
        while True:
            ok, more = await self._round()
            if not ok:
                failed = min(failed + 1, 64)  # 2.0 ** 1024 overflows: a night's outage got there
                await self._sleep(min(self.poll_interval * 2.0 ** (failed - 1), self._backoff_cap))
                continue
            failed = 0
            if more:
                continue
            self._wake.clear()
            await woken_or_timed_out(self._wake, self.poll_interval)

    async def _round(self) -> tuple[bool, bool]:
        """Claim and send what is due: whether the round went well, and whether it found work."""
        now = self._clock()
        try:
            due = await self.journal.claim_notifications(
                owner=self.owner, now=now, lease_until=now + 4 * self._timeout, limit=100
            )
        except JournalError as exc:
            self._log.warning("callback_claim_failed", error=str(exc))
            return False, False
        except Exception as exc:
            # the type only: a message could quote an application (personal data and all)
            self._log.error(
                "notifier_round_crashed", error=type(exc).__name__, exception=bare_traceback(exc)
            )
            return False, False
        if not due:
            return True, False
        sent = await asyncio.gather(*(self._guarded(ex) for ex in due))
        return all(sent), True

    async def _guarded(self, exchange: Exchange) -> bool:
        """:meth:`_notify`, its failure logged (not raised): False if it failed. What it did not
        journal stays leased to this instance until the lease is over, then is claimed again
        and sent under the same key."""
        try:
            await self._notify(exchange)
        except JournalError as exc:
            self._log.warning("callback_not_journalled", exchange_id=exchange.id, error=str(exc))
            return False
        except Exception as exc:
            self._log.error(
                "callback_crashed",
                exchange_id=exchange.id,
                error=type(exc).__name__,
                exception=bare_traceback(exc),
            )
            return False
        return True

    async def _notify(self, exchange: Exchange) -> None:
        """Tell the source how ``exchange`` ended (or moved on); record the try and what follows."""
        catalogue = self._catalogue()
        state = exchange.notify_state or exchange.state.value
        route = route_of(catalogue, exchange)
        if route is not None:  # the partner hears it in its own dialect
            await self._notice(route, exchange, state, exchange.notify_attempts + 1)
            return
        # A step's mark, or a replay's new end, may have been written over a resend's not yet
        # sent: the history says (any mark may be a replay's end, so it is read for every one).
        full = await self.journal.get(exchange.id)
        if full is not None:
            due = due_callback(full, state)
        else:
            due = Due(mark=state, tries=exchange.notify_attempts)
        if due.told:
            # its outcome is journalled (a try whose lease a replay freed left the mark pending):
            # sent again it would be built from the exchange as it now stands, under that key
            self._log.info("callback_already_told", exchange_id=exchange.id, state=due.mark)
            await self._write(exchange, [], done=True, next_at=None)
            return
        await self._callback(catalogue, exchange, due, full)

    async def _callback(
        self, catalogue: Catalogue, exchange: Exchange, due: Due, full: Exchange | None
    ) -> None:
        """One try at the JSON callback ``due`` names, journalled with what follows."""
        inbound = exchange.direction is Direction.INBOUND
        url = catalogue.config.callback_url(exchange.source, inbound=inbound)
        state, attempt = due.mark, due.tries + 1
        log = self._log.bind(exchange_id=exchange.id, source=exchange.source, attempt=attempt)
        now = self._clock()
        # a mark owed before the pending one: once ended, the pending one is due at once
        done, next_at = (True, None) if due.last else (False, now)
        if url is None:
            reason = "the source has no callback any more"
            await self._finish(
                exchange,
                "callback_abandoned",
                done=done,
                next_at=next_at,
                reason=reason,
                state=state,
            )
            return
        body = await self._due_body(exchange, due, full)
        secrets = catalogue.config.callback_secrets(exchange.source, inbound=inbound)
        status, error = await self._post(url, body, f"{exchange.id}:{state}", secrets)
        if error is None:
            await self._finish(
                exchange,
                "callback_delivered",
                done=done,
                next_at=next_at,
                status=status,
                state=state,
            )
            log.info("callback_delivered", state=state)
            return
        since = due.since if due.since is not None else exchange.updated_at
        decision = self._retry.decide(Failure(), attempt, now - since)
        if not isinstance(decision, RetryLater):
            await self._finish(
                exchange,
                "callback_abandoned",
                done=done,
                next_at=next_at,
                error=error,
                attempts=attempt,
                state=state,  # its mark: what `tongban callback resend` sends again
            )
            log.warning("callback_abandoned", attempts=attempt)
            return
        await self._finish(
            exchange,
            "callback_failed",
            done=False,
            next_at=now + decision.after,
            error=error,
            status=status,
            state=state,
        )
        log.info("callback_failed", delay_s=decision.after)

    async def _notice(self, route: Route, exchange: Exchange, state: str, attempt: int) -> None:
        """One try at a notice in the partner's dialect, journalled with what follows."""
        full = await self.journal.get(exchange.id) or exchange
        tried = await self.notices.attempt(route, full, state, attempt)
        await self._write(exchange, tried.events, done=tried.done, next_at=tried.next_at)

    async def _due_body(
        self, exchange: Exchange, due: Due, full: Exchange | None
    ) -> dict[str, Any]:
        """The JSON of the callback ``due`` names: one whose message is recorded (a resend's
        ``callback_replayed``, a replay's ``replayed``) is built from the first record,
        whatever the exchange has come to since (a replay's new end is a message of its own,
        under its own key)."""
        if due.resend is not None and full is not None:
            then = as_resent(full, due.resend)
            return await self._body(then, due.mark, then)
        return await self._body(exchange, due.mark, full)

    async def _body(
        self, exchange: Exchange, state: str, full: Exchange | None = None
    ) -> dict[str, Any]:
        """The callback's JSON for the mark ``state``: the outcome (``rejected:2`` tells
        ``rejected``), or a lifecycle step with every step so far (from ``full``, the exchange
        with its history, when read already)."""
        lifecycle = step_of(state) if state.startswith("lifecycle:") else None
        steps: list[dict[str, Any]] | None = None
        if lifecycle:
            # Updates arriving close together share one callback: it carries every step so far.
            if full is None:
                full = await self.journal.get(exchange.id)
            steps = full.lifecycle() if full is not None else None
        last_error, previous_error = standing_errors(exchange)  # a delivery supersedes it
        return {
            "exchange_id": exchange.id,
            "state": exchange.state.value if lifecycle else state_of(state),
            "lifecycle": lifecycle,
            "lifecycle_steps": steps,
            "partner": exchange.target,
            "service": exchange.service,
            "source": exchange.source,
            "idempotency_key": exchange.idempotency_key,
            "receipt": exchange.receipt,
            # the source filed the application: it reads the partner's words in clear
            "last_error": shown_error(last_error, clear=True, mask=MASK),
            "previous_error": shown_error(previous_error, clear=True, mask=MASK),
            "at": iso(exchange.updated_at),
        }

    async def _post(
        self, url: str, body: dict[str, Any], key: str, secrets: tuple[SecretRef, ...]
    ) -> tuple[int | None, str | None]:
        """POST the callback, signed when its receiver declared a secret (or two, while it is
        rotated): the HTTP status, and what went wrong (None: a 2xx)."""
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if secrets:
            signed = await self._signed(secrets, key, data)
            if isinstance(signed, str):
                return None, signed  # never sent unsigned: held until the secret can be read
            headers.update(signed)
        assert self._session is not None  # started
        try:
            async with self._session.post(
                url, data=data, headers=headers, allow_redirects=False
            ) as resp:
                await resp.content.read(64 * 1024)
                if is_redirect(resp.status):  # never followed: the body would go elsewhere
                    where = redirect_note(resp.status, resp.headers.get("Location"), url)
                    return resp.status, f"callback answered {where}, which is not followed"
                if not 200 <= resp.status < 300:
                    return resp.status, f"callback answered HTTP {resp.status}"
                return resp.status, None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # aiohttp's words for a reply it cannot read quote the reply's bytes (a header line
            # with an applicant's name): the journalled error, shown in clear in the history,
            # says what went wrong in our words only
            return None, f"{type(exc).__name__} ({failure_words(exc, 'the receiver')})"

    async def _signed(
        self, secrets: tuple[SecretRef, ...], key: str, data: bytes
    ) -> dict[str, str] | str:
        """The Standard Webhooks headers for ``data``, signed now with each secret (``webhook-id``
        is the idempotency key, the same on every retry); or why it cannot be signed (the
        reference is named, the secret never). A callback goes with every signature declared or
        not at all: a receiver that still knows only the previous secret must not be sent one
        it refuses. A secret file is read off the event loop (a hung file system holds this
        callback, not the broker)."""
        keys = []
        for secret in secrets:
            try:
                signing = signing_key(await secret.load())
            except SecretError as exc:
                return f"not sent: {exc}"
            if signing is None:
                return f"not sent: secret {secret} is no Standard Webhooks signing secret: {RULE}"
            keys.append(signing)
        now = int(self._clock())
        return signed_headers(keys, msg_id=key, timestamp=now, body=data)

    async def _finish(
        self,
        exchange: Exchange,
        kind: str,
        *,
        done: bool,
        next_at: float | None = None,
        **data: Any,
    ) -> None:
        event = Event(
            exchange_id=exchange.id,
            kind=kind,
            at=self._clock(),
            data={k: v for k, v in data.items() if v is not None},
        )
        await self._write(exchange, [event], done=done, next_at=next_at)

    async def _write(
        self, exchange: Exchange, events: list[Event], *, done: bool, next_at: float | None
    ) -> None:
        try:
            await self.journal.finish_notification(
                exchange.id, events, owner=self.owner, done=done, next_at=next_at
            )
        except LeaseLost:
            # Another instance holds the mark now and tries again under the same key; what this
            # try did (it may have reached the receiver) is journalled all the same, the mark,
            # its lease and its next try left to the instance that holds it.
            self._log.info("callback_lease_lost", exchange_id=exchange.id)
            try:
                await self.journal.append(exchange.id, events)
            except JournalError as exc:
                kinds = [e.kind for e in events]
                self._log.error(
                    "callback_try_unjournalled",
                    exchange_id=exchange.id,
                    error=str(exc),
                    events=kinds,
                )
