"""Mapping sets: the versions of the files one mapping used, stored once, referred to by digest.

Every exchange records which mapping, code tables and schema versions mapped it (``sha256:…`` of
each file), on its row and in its ``mapped`` (or ``mapping_failed``) event. The same set serves
every exchange of a service until the configuration changes, so the SQL journals keep each
distinct set once, in ``mapping_sets`` (digest → canonical JSON), and store a reference instead:

* on the row, ``mapping_versions`` holds ``@`` and the 32-byte SHA-256 of the set's JSON;
* in the event, ``versions`` holds the text ``@`` and that digest in hex.

Readers never see a reference: ``resolved`` and ``versions_of`` put the set back. The chain still
covers the sets: it records the references (in the sealed events and the rows' digests), and
``verify`` checks that every stored set hashes to its digest. Sets are never deleted (retention
keeps them: an archive's sealed events refer to them). Rows and events written before sets
existed hold the JSON itself and read as before.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from federation.domain.errors import JournalDamaged
from federation.domain.models import Event

REF = b"@"  # a row's mapping_versions that refers to a set
TEXT_REF = "@"  # an event's versions that refers to a set
CARRIERS = ("mapped", "mapping_failed")  # the events that carry a mapping's versions
Item = tuple[bytes, bytes]  # (digest, canonical JSON)

INSERT_SQLITE = "INSERT OR IGNORE INTO mapping_sets (digest, versions) VALUES (?, ?)"
INSERT_PG = "INSERT INTO mapping_sets (digest, versions) VALUES ($1, $2) ON CONFLICT DO NOTHING"
SELECT_SQLITE = "SELECT digest, versions FROM mapping_sets WHERE digest IN ({})"
SELECT_PG = "SELECT digest, versions FROM mapping_sets WHERE digest = ANY($1::bytea[])"
ALL = "SELECT digest, versions FROM mapping_sets"


class SetMissing(JournalDamaged):
    """A reference to a mapping set the journal does not hold (or one altered in place)."""


def item(versions: Mapping[str, str]) -> Item:
    """The set's digest and canonical JSON."""
    body = orjson.dumps(dict(versions), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).digest(), body


class MappingSets:
    """A journal's known sets (immutable, so kept once learnt), and the references to them."""

    def __init__(self) -> None:
        self._known: dict[bytes, dict[str, str]] = {}
        self._lock = threading.Lock()

    # -- writing ----------------------------------------------------------------------------------

    def column(self, versions: Mapping[str, str] | None, items: list[Item]) -> bytes | None:
        """A row's stored mapping_versions for ``versions`` (adding its set to ``items``)."""
        if versions is None:
            return None
        if not versions:
            return b"{}"
        digest, body = item(versions)
        items.append((digest, body))
        self._learn(digest, dict(versions))
        return REF + digest

    def referring(self, events: Sequence[Event], items: list[Item]) -> list[Event]:
        """``events`` with the versions their mapping events carry replaced by references."""
        out = []
        for e in events:
            versions = e.data.get("versions") if e.kind in CARRIERS else None
            if isinstance(versions, dict) and versions:
                digest, body = item(versions)
                items.append((digest, body))
                self._learn(digest, versions)
                e = replace(e, data={**e.data, "versions": TEXT_REF + digest.hex()})
            out.append(e)
        return out

    # -- reading ----------------------------------------------------------------------------------

    def missing(self, raw_columns: Iterable[Any], events: Iterable[Event]) -> list[bytes]:
        """The digests that rows' columns and events refer to and this process has not learnt."""
        wanted: set[bytes] = set()
        for raw in raw_columns:
            if raw is not None and bytes(raw[:1]) == REF:
                wanted.add(bytes(raw[1:]))
        for e in events:
            ref = e.data.get("versions") if e.kind in CARRIERS else None
            if isinstance(ref, str) and ref.startswith(TEXT_REF):
                try:
                    wanted.add(bytes.fromhex(ref[1:]))
                except ValueError:
                    continue
        with self._lock:
            return [d for d in wanted if d not in self._known]

    def learn(self, found: Iterable[Any]) -> None:
        """Sets read from ``mapping_sets`` (digest, JSON); one that does not hash to its digest
        is refused (verify names it)."""
        for digest_raw, body_raw in found:
            digest, body = bytes(digest_raw), bytes(body_raw)
            if hashlib.sha256(body).digest() == digest:
                self._learn(digest, orjson.loads(body))

    def versions_of(self, raw: Any) -> dict[str, str]:
        """A row's mapping_versions as readers see it."""
        if raw is None:
            return {}
        raw = bytes(raw)
        if raw[:1] == REF:
            return dict(self._get(raw[1:]))
        value = orjson.loads(raw)
        return dict(value) if value else {}

    def resolved(self, events: Sequence[Event]) -> tuple[Event, ...]:
        """``events`` with every reference to a set replaced by the set."""
        out = []
        for e in events:
            ref = e.data.get("versions") if e.kind in CARRIERS else None
            if isinstance(ref, str) and ref.startswith(TEXT_REF):
                try:
                    digest = bytes.fromhex(ref[1:])
                except ValueError:
                    raise SetMissing(f"event {e.seq}: a malformed mapping set reference") from None
                e = replace(e, data={**e.data, "versions": dict(self._get(digest))})
            out.append(e)
        return tuple(out)

    def _get(self, digest: bytes) -> dict[str, str]:
        with self._lock:
            found = self._known.get(digest)
        if found is None:
            raise SetMissing(f"mapping set {digest.hex()[:16]}… is not in the journal (altered?)")
        return found

    def _learn(self, digest: bytes, versions: dict[str, str]) -> None:
        with self._lock:
            self._known.setdefault(digest, versions)


def altered(found: Iterable[Any]) -> str | None:
    """The first stored set whose JSON does not hash to its digest, described (verify)."""
    for digest_raw, body_raw in found:
        if hashlib.sha256(bytes(body_raw)).digest() != bytes(digest_raw):
            return f"mapping set {bytes(digest_raw).hex()[:16]}…: its content was altered"
    return None
