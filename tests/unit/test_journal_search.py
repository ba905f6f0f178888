"""Search written once (replay/search.py): one Query, SQL per dialect, and the same in Python."""

from __future__ import annotations

from federation.domain.models import Direction, Exchange, State
from replay.journal import Query
from replay.search import POSTGRESQL, SQLITE, matches, search_sql

EVERY_FILTER = Query(
    states=("failed", "unconfirmed"),
    lifecycle=("accepted",),
    partner="hk",
    service="S",
    source="gd-portal",
    since=1_790_000_000.0,
    until=1_790_000_600.0,
    error="timeout",
    exchange_id="01X",
    idempotency_key="k",
    applicant_ref=b"r",
    before="01Z",
    limit=20,
)


def test_sqlite_and_postgresql_bind_the_same_values_in_their_own_marks() -> None:
    """SQLite expands lists into ``?`` marks; PostgreSQL numbers ``$n`` and binds lists whole."""
    lite, lite_args = search_sql(EVERY_FILTER, SQLITE)
    pg, pg_args = search_sql(EVERY_FILTER, POSTGRESQL)
    assert lite.count("?") == len(lite_args) == 15
    assert [f"${n}" in pg for n in range(1, len(pg_args) + 1)] == [True] * 14
    assert "$15" not in pg
    assert "state IN (?,?)" in lite and "state = ANY($1::text[])" in pg
    assert lite_args[:2] == ["failed", "unconfirmed"] and pg_args[0] == ["failed", "unconfirmed"]
    assert lite_args[-1] == pg_args[-1] == 20
    assert lite.endswith("ORDER BY id DESC LIMIT ?") and pg.endswith("ORDER BY id DESC LIMIT $14")


def test_no_filter_is_every_exchange_newest_first() -> None:
    """An empty query has no WHERE; the page size is kept within 1…1000."""
    assert search_sql(Query(limit=0), SQLITE) == (
        "SELECT * FROM exchanges ORDER BY id DESC LIMIT ?",
        [1],
    )
    assert search_sql(Query(limit=10**6), POSTGRESQL)[1] == [1000]


def test_the_python_predicate_reads_the_errors_kind_and_message() -> None:
    """The in-memory search finds text in the last error's kind and message, as SQL does."""
    ex = Exchange(
        id="01KZZZZZZZ0000000000000001",
        direction=Direction.OUTBOUND,
        source="gd-portal",
        target="hk",
        service="S",
        idempotency_key="k",
        request_hash="sha256:x",
        state=State.UNCONFIRMED,
        application={},
        last_error={"kind": "unconfirmed", "message": "回覆無法辨認"},
        created_at=0.0,
        updated_at=0.0,
    )
    assert matches(Query(states=("unconfirmed",), error="無法辨認"), ex)
    assert matches(Query(error="unconfirmed"), ex)
    assert not matches(Query(error='"message"'), ex)  # the words, not the stored JSON's keys
    assert not matches(Query(applicant_ref=b"r"), ex, refs=())
    assert matches(Query(applicant_ref=b"r"), ex, refs=(b"r",))
