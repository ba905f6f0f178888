"""The PostgreSQL journal's callback and notice marks: leasing those due, recording each try, and
keeping a try whose lease was lost meanwhile (``append``). ``replay/postgres.py`` is the rest.

As on SQLite (``replay/sqlite.py``), method for method; the SQL lives in ``replay/pgsql.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

from federation.domain.errors import JournalError, LeaseLost
from federation.domain.models import Event, Exchange
from replay import pgsql, rows
from replay.pgsql import Conn
from replay.pgwrite import GroupCommit
from replay.sets import MappingSets


class Notifications(GroupCommit):
    """Callback marks and appends of ``PostgresJournal``, written through its group commit."""

    sets: MappingSets

    async def claim_notifications(
        self, *, owner: str, now: float, lease_until: float, limit: int
    ) -> list[Exchange]:
        async def op(conn: Conn, _: pgsql.Chain) -> list[Exchange]:
            found = await conn.fetch(
                pgsql.CLAIM_NOTIFICATIONS, now, max(0, limit), owner, lease_until
            )
            found.sort(key=lambda r: (r["notify_at"], str(r["id"])))
            return await pgsql.exchanges(conn, found, {}, self.seal, self.sets)

        claimed: list[Exchange] = await self._late(op)
        return claimed

    async def finish_notification(
        self,
        exchange_id: str,
        events: Sequence[Event],
        *,
        owner: str,
        done: bool,
        next_at: float | None = None,
    ) -> None:
        give_up = done or next_at is None

        async def op(conn: Conn, chain: pgsql.Chain) -> None:
            # Sealed in the write, under the seal in force then (a rekey may come between).
            appended = rows.stored_events(self.seal, exchange_id, events)
            status = await conn.execute(
                pgsql.FINISH_NOTIFICATION, next_at, give_up, exchange_id, owner
            )
            if pgsql.affected(status) == 0:
                raise LeaseLost(
                    f"callback of exchange {exchange_id} is no longer leased to {owner}"
                )
            chain.add(appended)

        await self._late(op)

    async def append(self, exchange_id: str, events: Sequence[Event]) -> None:
        async def op(conn: Conn, chain: pgsql.Chain) -> None:
            # The row is share-locked to the commit: an archive cannot take it from under events
            # appended to its history.
            if await conn.fetchval(pgsql.HELD, exchange_id) is None:
                raise JournalError(f"no exchange {exchange_id}")
            chain.add(rows.stored_events(self.seal, exchange_id, events))

        await self._late(op)
