"""Search, written once: a ``Query`` becomes SQL for a dialect, or a predicate in Python.

Both SQL backends build their SELECT with ``search_sql(query, dialect)``: the same filters, the same
order (newest first by id: ids begin with their creation time) and the same page size, differing
only where the databases differ (placeholders ``?`` or ``$n``, lists expanded or bound as arrays,
reading a JSON column as text). The in-memory journal asks ``matches`` the same questions of an
Exchange, so the contract suite can hold all three to one answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from federation.domain.ids import id_floor
from federation.domain.models import Exchange
from federation.domain.words import FORM, SEPARATOR, searchable
from replay.journal import Query
from replay.refs import forms

MAX_LIMIT = 1000


@dataclass(frozen=True, kw_only=True)
class Dialect:
    """Where SQLite and PostgreSQL write the same search differently."""

    name: str
    mark: Callable[[int], str]  # the placeholder of the n-th argument (from 1)
    arrays: bool  # a list is one argument (``= ANY($n::text[])``), else one placeholder each
    json_field: str  # the text of key {key} of the JSON object in column {column} (bytes)
    position: str  # where {needle} begins in {text}, from 1 (0: nowhere)


SQLITE = Dialect(
    name="sqlite",
    mark=lambda _: "?",
    arrays=False,
    json_field="json_extract(CAST({column} AS TEXT), '$.{key}')",
    position="instr({text}, {needle})",
)
POSTGRESQL = Dialect(
    name="postgresql",
    mark=lambda n: f"${n}",
    arrays=True,
    json_field="(convert_from({column}, 'UTF8')::jsonb ->> '{key}')",
    position="strpos({text}, {needle})",
)
UNREADABLE_ERROR = "a stored error does not read as JSON (altered?): journal verify names it"


def error_contains(dialect: Dialect, needle: str, column: str = "last_error") -> str:
    """SQL for: the error in ``column`` holds ``needle`` in what every reader may read of it
    (:func:`federation.domain.words.searchable`: its kind and our words, never the partner's,
    so that a search cannot tell whether a partner's refusal quoted an ID number)."""

    def field(key: str) -> str:
        return f"COALESCE(CAST({dialect.json_field.format(column=column, key=key)} AS TEXT), '')"

    message = field("message")
    before = dialect.position.format(text=f"{message} || '{SEPARATOR}'", needle=f"'{SEPARATOR}'")
    apart = f"{field('form')} = '{FORM}' OR ({field('status')} = '' AND {field('partner_message')} = '')"
    ours = f"CASE WHEN {apart} THEN {message} ELSE substr({message}, 1, {before} - 1) END"
    text = f"{field('kind')} || ' ' || {ours}"
    found = dialect.position.format(text=text, needle=needle)
    # A stored error altered into something that is not JSON fails the query on both backends
    # (json_extract, the cast): each says the journal is damaged, and journal verify names the row.
    return f"{found} > 0"


class _Args:
    """The arguments of one statement, handing out each one's placeholder."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return self.dialect.mark(len(self.values))

    def one_of(self, column: str, values: Iterable[str]) -> str:
        if self.dialect.arrays:
            return f"{column} = ANY({self(list(values))}::text[])"
        return f"{column} IN ({','.join(self(v) for v in values)})"


def page_size(query: Query) -> int:
    """How many a search returns at most: the query's limit, within 1…MAX_LIMIT."""
    return max(1, min(query.limit, MAX_LIMIT))


def _equal(q: Query) -> list[tuple[str, str | None]]:
    """The filters that are a column's exact value."""
    return [
        ("target", q.partner),
        ("service", q.service),
        ("source", q.source),
        ("id", q.exchange_id),
        ("idempotency_key", q.idempotency_key),
    ]


def search_sql(q: Query, dialect: Dialect) -> tuple[str, list[Any]]:
    """The SELECT for a search: index-friendly filters, newest first by id."""
    arg = _Args(dialect)
    where: list[str] = []
    if q.states:
        where.append(arg.one_of("state", q.states))
    if q.lifecycle:
        where.append(arg.one_of("lifecycle_state", q.lifecycle))
    where += [f"{column} = {arg(value)}" for column, value in _equal(q) if value is not None]
    # Ids begin with their creation time, so a time range is an id range (an index range scan).
    if q.since is not None:
        where.append(f"id >= {arg(id_floor(q.since))}")
    if q.until is not None:
        where.append(f"id < {arg(id_floor(q.until))}")
    if q.before is not None:
        where.append(f"id < {arg(q.before)}")
    if q.error:
        where.append(error_contains(dialect, arg(q.error)))
    if q.applicant_ref is not None:
        short, whole = forms(q.applicant_ref)
        where.append(
            "id IN (SELECT exchange_id FROM exchange_refs "
            f"WHERE ref IN ({arg(short)}, {arg(whole)}))"
        )
    sql = "SELECT * FROM exchanges"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY id DESC LIMIT {arg(page_size(q))}"
    return sql, arg.values


def received_sql(ids: Sequence[str], dialect: Dialect) -> tuple[str, list[Any]]:
    """The SELECT of the ``received`` events of exchanges ``ids``, for a search that says which
    exchange each result supplements (``Query.with_supplement_of``: kept in that event alone)."""
    arg = _Args(dialect)
    where = arg.one_of("exchange_id", ids)
    sql = f"SELECT exchange_id, seq, at, kind, data FROM events WHERE kind = 'received' AND {where}"
    return sql, arg.values


def matches(q: Query, ex: Exchange, refs: Iterable[bytes] = ()) -> bool:
    """Whether ``ex`` (with its applicant references) passes every filter of ``q``, as in SQL."""
    values = {
        "target": ex.target,
        "service": ex.service,
        "source": ex.source,
        "id": ex.id,
        "idempotency_key": ex.idempotency_key,
    }
    return (
        (not q.states or ex.state.value in q.states)
        and (not q.lifecycle or ex.lifecycle_state in q.lifecycle)
        and all(value is None or values[column] == value for column, value in _equal(q))
        and (q.since is None or ex.id >= id_floor(q.since))
        and (q.until is None or ex.id < id_floor(q.until))
        and (q.before is None or ex.id < q.before)
        and (not q.error or (ex.last_error is not None and q.error in searchable(ex.last_error)))
        and (q.applicant_ref is None or not set(refs).isdisjoint(forms(q.applicant_ref)))
    )
