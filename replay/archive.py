"""Retention: closed exchanges move to a compressed JSON Lines archive, signed with the journal's key.

File layout (gzip, one JSON object per line)::

    {"tongban_archive": 2, "created_at": …, "older_than": …}
    {"exchange": {…current state…}, "events": [{"seq", "at", "kind", "data", "hash", "prev", "state"}, …]}
    …
    {"end": true, "exchanges": N, "events": M, "digest": "<sha256 of every line above>"}
    {"signed": "hmac-sha256", "mac": "<HMAC of the sha256 of every line above, journal's MAC key>"}

The last line is a gzip member of its own, added once the file verifies against the journal it
came from (``sign_archive``; ``tongban journal archive`` and the retention job do it). Archives of
format 1 (written before) have no such line and read as they are.

What the file proves alone (``check_archive``, no key): every event's hash is recomputed from its
content and the hash it names as ``prev``; where the archive holds event n-1 too, ``prev`` must be
that event's hash (an exchange's events are not contiguous in the chain: exchanges interleave);
each exchange's row is what the chain recorded of it (the row digest on its last event that
carries one, ``replay/rows.py``); the counts and the digest of the end line. Anyone can recompute
all of that after an edit, so alone it proves only that the file holds together. With the
journal's key, the signature proves that the holder of the key wrote it (nothing removed, added
or changed since). Against the journal (``compare``), every archived event's hash must be the one
the journal's tombstone keeps at that seq, and every exchange the journal archived in the same
writes as those the file holds must be in it: that needs no signature, so it holds for archives
of format 1 too, and for a file from another journal it fails.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import itertools
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from replay.chain import GENESIS, link
from replay.journal import ArchiveReads, JournalEvent
from replay.rows import ARCHIVED, SHOWN, dumps, receipt_column, shown_matches
from replay.seal import Seal, from_text
from replay.sets import REF, item

FORMAT = 2
FORMATS = (1, 2)  # the formats this release reads
SIGNED = b"tongban/archive"  # the MAC's tag (never that of a head, checkpoint or session)
HEX = re.compile(r"[0-9a-f]*")
SAFE = re.compile(r"[0-9A-Za-z_~.:-]{1,64}")  # what a message may quote of a file (ids, kinds)


@dataclass(frozen=True, kw_only=True)
class ArchivedExchange:
    row: dict[str, Any]
    events: list[dict[str, Any]]  # seq, at, kind, data (seal.as_text), hash, prev (hex), state


class ArchiveWriter:
    """Writes an archive file; ``close()`` adds the end line (``sign_archive`` the signature)."""

    def __init__(self, path: Path, *, created_at: float, older_than: float) -> None:
        self.path = path
        # "x": never overwrite an earlier archive. Closed in close(), which adds the trailer.
        self._file = path.open("xb")
        self._raw = gzip.GzipFile(fileobj=self._file, mode="wb")
        self._digest = hashlib.sha256()
        self.exchanges = 0
        self.events = 0
        self._line({"tongban_archive": FORMAT, "created_at": created_at, "older_than": older_than})

    def _line(self, obj: Any) -> None:
        data = orjson.dumps(obj) + b"\n"
        self._digest.update(data)
        self._raw.write(data)

    def write(self, chunk: list[ArchivedExchange]) -> None:
        for ex in chunk:
            self._line({"exchange": ex.row, "events": ex.events})
            self.exchanges += 1
            self.events += len(ex.events)
        self._raw.flush()
        self._durable()  # on disk before the journal tombstones what this chunk holds

    def _durable(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._raw.write(
            orjson.dumps(
                {
                    "end": True,
                    "exchanges": self.exchanges,
                    "events": self.events,
                    "digest": self._digest.hexdigest(),
                }
            )
            + b"\n"
        )
        self._raw.close()
        self._durable()
        self._file.close()


class ArchiveError(ValueError):
    """The archive file is not readable as one."""


class _Unreadable(Exception):
    """A line that is not of the archive's form (the message names the line, never a value)."""


class _Altered(Exception):
    """A value of the right type that no journal can have written (a sealed value mangled)."""


@dataclass(frozen=True, kw_only=True)
class Held:
    """An archived event as compared with the journal."""

    seq: int
    exchange_id: str
    at: float
    kind: str
    hash: bytes


@dataclass(kw_only=True)
class Checked:
    """What ``check_archive`` found. ``problem``: something does not hold (broken);
    ``unreadable``: the file cannot be read as an archive; ``unproven``: what could not be
    checked; ``unsigned``: why nothing proves who wrote it (None: its signature verified with
    the journal's key); ``held``: the events, for ``compare``."""

    exchanges: int = 0
    events: int = 0
    format: int = 0
    signed: bool = False
    problem: str | None = None
    unreadable: str | None = None
    unsigned: str | None = "the archive is not signed"  # why nothing proves who wrote it
    unproven: list[str] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    exchange_ids: set[str] = field(default_factory=set)

    @property
    def ids(self) -> list[str]:
        return sorted(self.exchange_ids)


def verify_archive(path: Path, seal: Seal | None = None) -> tuple[int, int, str | None]:
    """(exchanges, events, first problem or None) for an archive file on its own: what
    ``check_archive`` finds broken or unreadable (what it could not prove is no problem here)."""
    found = check_archive(path, seal)
    return found.exchanges, found.events, found.unreadable or found.problem


def check_archive(path: Path, seal: Seal | None = None) -> Checked:
    """Check an archive file on its own; with ``seal`` (the journal's keys) its signature too."""
    out = Checked()
    try:
        lines = list(_lines(path))
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error):
        out.unreadable = "not a readable archive (not gzip, or cut short)"
        return out
    try:
        _walk(lines, out, seal)
    except _Unreadable as exc:
        out.unreadable = str(exc)
    except _Altered as exc:
        out.problem = str(exc)
    return out


def _walk(lines: list[bytes], out: Checked, seal: Seal | None) -> None:
    """Read every line into ``out``, stopping at the first problem."""
    if not lines:
        raise _Unreadable("the archive is empty")
    head = _object(lines[0], 1)
    version = head.get("tongban_archive")
    out.format = version if type(version) is int else 0
    if out.format not in FORMATS:
        raise _Unreadable("line 1: not a tongban archive of a format this release reads")
    digest = hashlib.sha256(lines[0])
    ends = [n for n, raw in enumerate(lines) if n and _is_end(raw)]
    if not ends:
        raise _Unreadable("the archive has no end line (cut short?)")
    end = ends[0]
    seen: dict[int, dict[str, Any]] = {}
    for n in range(1, end):
        if not _exchange(lines[n], n + 1, out, seen):
            return
        digest.update(lines[n])
    _end(lines, end, digest, out, seal)
    if out.problem is None:
        _links(seen, out)


def _is_end(raw: bytes) -> bool:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("end") is True


def _object(raw: bytes, n: int) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Unreadable(f"line {n} is not JSON (altered, or not an archive)") from None
    if not isinstance(obj, dict):
        raise _Unreadable(f"line {n} is not a JSON object")
    return obj


def _exchange(raw: bytes, n: int, out: Checked, seen: dict[int, dict[str, Any]]) -> bool:
    """Check one exchange's line; False once something does not hold (``out.problem``)."""
    obj = _object(raw, n)
    row, events = obj.get("exchange"), obj.get("events")
    if not isinstance(row, dict) or not isinstance(events, list) or not events:
        raise _Unreadable(f"line {n}: not an exchange with its events")
    xid = row.get("id")
    if not isinstance(xid, str) or not xid:
        raise _Unreadable(f"line {n}: the exchange has no id")
    if xid in out.exchange_ids:
        out.problem = f"line {n}: exchange {_name(xid)} is in the archive twice"
        return False
    out.exchanges += 1
    out.exchange_ids.add(xid)
    recorded: tuple[int, bytes] | None = None
    last = 0
    for ev in events:
        fields = _event(ev, n)
        out.events += 1
        seq, at, kind, data, digest, prev, state = fields
        where = f"line {n}, event {seq} ({_name(kind)} of exchange {_name(xid)})"
        if seq <= last or seq in seen:
            out.problem = f"{where}: out of order, or in the archive twice"
            return False
        last = seq
        if link(prev, seq, xid, at, kind, data, state) != digest:
            out.problem = f"{where}: its content was altered in the archive (hash does not match)"
            return False
        seen[seq] = {"hash": digest, "prev": prev, "where": where}
        out.held.append(Held(seq=seq, exchange_id=xid, at=at, kind=kind, hash=digest))
        if state is not None and kind != ARCHIVED:
            recorded = (seq, state)
    return _row(row, recorded, n, xid, out)


def _event(ev: Any, n: int) -> tuple[int, float, str, bytes, bytes, bytes, bytes | None]:
    """An event's fields, checked for their form (an _Unreadable naming the line otherwise)."""
    if not isinstance(ev, dict):
        raise _Unreadable(f"line {n}: an event is not a JSON object")
    seq, at, kind, data = ev.get("seq"), ev.get("at"), ev.get("kind"), ev.get("data")
    if type(seq) is not int or not 0 < seq < 2**63:
        raise _Unreadable(f"line {n}: an event's seq is missing or not a positive whole number")
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise _Unreadable(f"line {n}, event {seq}: its time is missing or not a number")
    if not isinstance(kind, str) or not isinstance(data, str):
        raise _Unreadable(f"line {n}, event {seq}: its kind or data is missing or not text")
    try:
        stored = from_text(data)
    except ValueError:
        raise _Altered(f"line {n}, event {seq}: its data was altered (not well formed)") from None
    digest = _hex(ev.get("hash"), n, seq, "hash", 32)
    prev = _hex(ev.get("prev"), n, seq, "prev", 32)
    state = None if ev.get("state") is None else _hex(ev.get("state"), n, seq, "state", None)
    return seq, float(at), kind, stored, digest, prev, state


def _hex(value: Any, n: int, seq: int, name: str, size: int | None) -> bytes:
    """A hex field's bytes (``size`` of them, when given)."""
    good = isinstance(value, str) and len(value) % 2 == 0 and HEX.fullmatch(value) is not None
    if not good or (size is not None and len(value) != 2 * size):
        raise _Unreadable(f"line {n}, event {seq}: its {name} is missing or not a hash in hex")
    return bytes.fromhex(value)


def _row(
    row: dict[str, Any],
    recorded: tuple[int, bytes] | None,
    n: int,
    xid: str,
    out: Checked,
) -> bool:
    """Whether the exchange's row is what the chain recorded of it on its last event that carries
    a digest; an exchange whose events carry none was last written before rows were recorded."""
    if recorded is None:
        note = "the rows of exchanges last written before rows were recorded in the chain"
        if note not in out.unproven:
            out.unproven.append(note)
        return True
    if any(key not in row for key in SHOWN) or not _row_holds(row, recorded[1]):
        out.problem = (
            f"line {n}: the row of exchange {_name(xid)} is not what the chain recorded at "
            f"event {recorded[0]}: the row was edited in the archive"
        )
        return False
    return True


def _row_holds(row: dict[str, Any], recorded: bytes) -> bool:
    """Whether some way the journal can have stored ``row``'s columns (a mapping set referred to
    or written out, a receipt packed or not) is the one ``recorded`` is the digest of."""
    choices = [_stored_forms(key, row.get(key)) for key in _STORED]
    for picked in itertools.product(*choices):
        candidate = {**row, **dict(zip(_STORED, picked, strict=True))}
        try:
            if shown_matches(candidate, recorded):
                return True
        except (TypeError, ValueError, AttributeError, OverflowError):
            return False  # a column of a type no journal stores
    return False


_STORED = ("mapping_versions", "receipt", "last_error")


def _stored_forms(key: str, value: Any) -> list[Any]:
    """The bytes a journal's column can have held for an archived ``value``."""
    if value is None:
        return [None]
    try:
        forms: list[Any] = [dumps(value)]
        if key == "mapping_versions" and isinstance(value, dict):
            forms.append(REF + item(value)[0])
        elif key == "receipt":
            forms.append(receipt_column(value))
    except (TypeError, ValueError):
        return []  # of a type no journal stores: no form matches
    return forms


def _end(lines: list[bytes], end: int, digest: Any, out: Checked, seal: Seal | None) -> None:
    """The end line's counts and digest, then the signature line after it (format 2)."""
    if out.problem is not None:
        return
    trailer = orjson.loads(lines[end])
    if trailer.get("digest") != digest.hexdigest():
        out.problem = "a line was removed, added or changed (digest does not match)"
        return
    if (trailer.get("exchanges"), trailer.get("events")) != (out.exchanges, out.events):
        out.problem = "the counts in the end line do not match the archive"
        return
    rest = lines[end + 1 :]
    if len(rest) > 1 or (rest and out.format < 2):
        out.problem = f"line {end + 2}: data after the end"
        return
    if not rest:
        out.unsigned = (
            "the archive is not signed (written before archives were signed, by an unkeyed "
            "journal, or its run ended before signing it)"
        )
        return
    _signature(lines[: end + 1], _object(rest[0], end + 2), end + 2, out, seal)


def _signature(
    signed: list[bytes], line: dict[str, Any], n: int, out: Checked, seal: Seal | None
) -> None:
    mac = line.get("mac")
    if line.get("signed") != "hmac-sha256" or not isinstance(mac, str) or not HEX.fullmatch(mac):
        raise _Unreadable(f"line {n}: not a signature line")
    out.signed = True
    if seal is None or not seal.keyed:
        out.unsigned = "the archive is signed, but no key was given to check its signature"
        return
    expected = seal.sign(SIGNED, [_whole(signed)]) or b""
    if not hmac.compare_digest(expected.hex(), mac):
        out.problem = (
            f"the archive's signature does not verify with {seal.where}: it was altered after "
            "it was signed, or it comes from another journal"
        )
        return
    out.unsigned = None


def _whole(lines: Sequence[bytes]) -> bytes:
    digest = hashlib.sha256()
    for raw in lines:
        digest.update(raw)
    return digest.digest()


def _links(seen: dict[int, dict[str, Any]], out: Checked) -> None:
    """Where the archive holds event n-1 too, event n's ``prev`` must be its hash; event 1's is
    the chain's start."""
    for seq in sorted(seen):
        before = GENESIS if seq == 1 else seen.get(seq - 1, {}).get("hash")
        if before is not None and seen[seq]["prev"] != before:
            out.problem = (
                f"{seen[seq]['where']}: its prev is not the hash of event {seq - 1}, which the "
                "archive holds too (an event was changed or moved)"
            )
            return


def _name(text: str) -> str:
    """``text`` for a message, if it has the form of an id or a kind (else it is not quoted)."""
    return text if SAFE.fullmatch(text) else "(not quoted)"


def sign_archive(path: Path, seal: Seal) -> bool:
    """Add the signature line to a format 2 archive that has none (its own gzip member: the
    file is appended to, never rewritten); False when the journal is unkeyed or it is signed."""
    if not seal.keyed:
        return False
    lines = list(_lines(path))
    if not lines or not _is_end(lines[-1]):
        return False
    mac = seal.sign(SIGNED, [_whole(lines)]) or b""
    line = orjson.dumps({"signed": "hmac-sha256", "mac": mac.hex()}) + b"\n"
    with path.open("ab") as f:
        f.write(gzip.compress(line))
        f.flush()
        os.fsync(f.fileno())
    return True


# -- against the journal ----------------------------------------------------------------------


async def compare(checked: Checked, journal: ArchiveReads) -> str | None:
    """What does not hold between an archive (``check_archive``'s findings) and ``journal``:
    its events of the exchanges the archive holds (``events_of``), and its ``~archived`` markers
    (``archived_markers``) made between the first and the last of theirs: those span the run that
    wrote the archive, and every exchange archived in that span must be in the file."""
    ids = checked.ids
    held = {h.seq: h for h in checked.held}
    kept: dict[int, JournalEvent] = {row.seq: row for row in await journal.events_of(ids)}
    for seq, h in sorted(held.items()):
        got = kept.get(seq)
        if got is not None and not got.archived and got.hash != h.hash:
            return (
                f"event {seq} ({_name(h.kind)} of exchange {_name(h.exchange_id)}) is live in the "
                "journal with another hash: the archive comes from another journal or was "
                "altered (or the exchange stayed in the journal and a rekey has since rehashed it)"
            )
        if got is None or (got.exchange_id, got.kind, got.hash) != (h.exchange_id, h.kind, h.hash):
            return (
                f"event {seq} ({_name(h.kind)} of exchange {_name(h.exchange_id)}) is not the "
                "event the journal keeps at that seq: the archive comes from another journal, "
                "or was altered"
            )
    times = [row.at for row in kept.values() if row.kind == ARCHIVED]
    for seq, row in sorted(kept.items()):
        if row.archived and row.kind != ARCHIVED and seq not in held:
            return (
                f"the journal archived event {seq} of exchange {_name(row.exchange_id)}, which "
                "the archive does not hold: it was removed from the file"
            )
    wanted = set(ids)
    for xid, _ in await journal.archived_markers(min(times), max(times)) if times else []:
        if xid not in wanted:
            return (
                f"the journal archived exchange {_name(xid)} amid the exchanges the archive "
                "holds, but the archive does not hold it: it was removed from the file (or two "
                "archive runs took it at once: look in the other file)"
            )
    return None


def _lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as f:
        yield from f


def read_archive(path: Path) -> Iterator[dict[str, Any]]:
    """The archived exchanges (for `journal show` of an archived exchange, support tooling)."""
    for raw in _lines(path):
        obj = orjson.loads(raw)
        if isinstance(obj, dict) and "exchange" in obj:
            yield obj


async def sign_checked(journal: object, path: Path) -> tuple[Checked, str | None, bool]:
    """Check a new archive alone and against ``journal`` (open), then sign it with the journal's
    key if all holds: what it found, the problem (None: none) and whether it signed."""
    if not isinstance(journal, ArchiveReads):  # a journal that cannot be compared: never unchecked
        raise TypeError(
            f"{type(journal).__name__} has no events_of and archived_markers (JournalAdmin): "
            "an archive cannot be checked against it"
        )
    seal = getattr(journal, "seal", None)
    seal = seal if isinstance(seal, Seal) else None
    checked = await asyncio.to_thread(check_archive, path, seal)
    problem = checked.unreadable or checked.problem
    if problem is None:
        problem = await compare(checked, journal)
    if problem is not None or seal is None or not seal.keyed:
        return checked, problem, False
    return checked, None, await asyncio.to_thread(sign_archive, path, seal)
