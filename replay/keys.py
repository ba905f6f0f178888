"""The journal's keys: data keys that seal payloads, and the MAC key that signs the chain's head.

A keyring is a small JSON document, kept outside the journal::

    {"tongban_journal_keys": 1, "current": "5c1e0a9f",
     "data": {"5c1e0a9f": "<64 hex digits>", …}, "mac": "<64 hex digits>"}

``current`` names the data key new values are sealed with; every sealed value names the key it was
sealed with, so older keys stay usable until ``tongban journal rekey`` has re-sealed everything.
``mac`` signs the chain head and the checkpoints (see ``replay/seal.py``).

Where it lives (``KeyPlace``): for a SQLite journal, ``<journal>.keys`` beside the file, made with
mode 0600 the first time the journal is opened (secure by default); for PostgreSQL, the file named
by ``TONGBAN_JOURNAL_KEY_FILE``. ``TONGBAN_JOURNAL_KEYS`` holds the document itself instead of a
file, for deployments that inject secrets as variables. A key file readable by group or others is
refused, as is a document that does not parse.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from federation.domain.errors import ConfigError, Problem

ENV_KEYS = "TONGBAN_JOURNAL_KEYS"  # the keyring document itself
ENV_FILE = "TONGBAN_JOURNAL_KEY_FILE"  # the file holding it (PostgreSQL; overrides the default)
ENV_CHECKPOINTS = "TONGBAN_JOURNAL_CHECKPOINTS"  # where checkpoints go when keys come inline
FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class Keyring:
    """Data keys by id (the current one seals), and the MAC key."""

    current: str
    data: Mapping[str, bytes]
    mac: bytes

    @classmethod
    def generate(cls) -> Keyring:
        """A new keyring: one random data key and a random MAC key."""
        kid = secrets.token_hex(4)
        return cls(current=kid, data={kid: secrets.token_bytes(32)}, mac=secrets.token_bytes(32))

    def rotated(self) -> Keyring:
        """This keyring with a new current data key (the old ones kept, to open what they sealed)."""
        kid = secrets.token_hex(4)
        while kid in self.data:
            kid = secrets.token_hex(4)
        return Keyring(current=kid, data={**self.data, kid: secrets.token_bytes(32)}, mac=self.mac)

    def only_current(self) -> Keyring:
        """This keyring without the retired data keys."""
        return Keyring(
            current=self.current, data={self.current: self.data[self.current]}, mac=self.mac
        )

    def dumps(self) -> bytes:
        """The keyring document."""
        doc = {
            "tongban_journal_keys": FORMAT,
            "current": self.current,
            "data": {kid: key.hex() for kid, key in self.data.items()},
            "mac": self.mac.hex(),
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def parse(text: bytes | str, where: str) -> Keyring:
    """A keyring document; ConfigError naming ``where`` if it is not one."""

    def bad(why: str) -> ConfigError:
        return ConfigError([Problem(message=f"not a journal keyring: {why}", file=where)])

    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise bad("not JSON") from None
    if not isinstance(doc, dict) or doc.get("tongban_journal_keys") != FORMAT:
        raise bad(f'no "tongban_journal_keys": {FORMAT}')
    data, current = doc.get("data"), doc.get("current")
    if not isinstance(data, dict) or current not in data:
        raise bad('"current" must name one of the keys in "data"')
    try:
        keys = {str(kid): bytes.fromhex(hexkey) for kid, hexkey in data.items()}
        mac = bytes.fromhex(doc.get("mac", ""))
    except (TypeError, ValueError):
        raise bad("keys must be hex") from None
    if any(len(k) != 32 for k in keys.values()) or len(mac) != 32:
        raise bad("every key must be 32 bytes (64 hex digits)")
    return Keyring(current=str(current), data=keys, mac=mac)


def read_file(path: Path) -> Keyring:
    """The keyring in ``path``; refused if group or others may read it."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                [
                    Problem(
                        message=f"the journal key file is open to group or others "
                        f"(mode {stat.S_IMODE(mode):04o}): chmod 600 {path}",
                        file=str(path),
                    )
                ]
            )
        return parse(path.read_bytes(), str(path))
    except OSError as exc:
        raise ConfigError(
            [Problem(message=f"cannot read the journal key file: {exc.strerror}", file=str(path))]
        ) from exc


def write_file(path: Path, ring: Keyring) -> None:
    """Write ``ring`` to ``path`` (mode 0600) atomically: a crash leaves the old file or the new."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(ring.dumps())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def create_file(path: Path) -> Keyring:
    """A new keyring in a new file ``path`` (mode 0600); never overwrites one. Made whole beside
    it and linked into place, so a process opening the journal at the same moment reads either no
    file or the whole one (and then the keyring it made wins, the other's is dropped)."""
    ring = Keyring.generate()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(ring.dumps())
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return read_file(path)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_dir(path.parent)
    return ring


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, kw_only=True)
class KeyPlace:
    """Where a journal's keyring and checkpoints live (see the module docstring).

    ``file``: the key file (made on first open if ``create``); ``inline``: the document itself
    (from the environment); ``ephemeral``: keys that live as long as the process (``memory:``);
    none of them: the journal is neither sealed nor signed (an explicit opt-out, or a PostgreSQL
    journal given no key). ``checkpoints``: the file checkpoints are appended to.
    """

    file: Path | None = None
    inline: str | None = field(default=None, repr=False)
    ephemeral: bool = False
    create: bool = True
    checkpoints: Path | None = None

    @property
    def keyed(self) -> bool:
        """Whether this journal is to be sealed and signed."""
        return self.file is not None or self.inline is not None or self.ephemeral

    def describe(self) -> str:
        """Where the keys are, for messages."""
        if self.inline is not None:
            return ENV_KEYS
        if self.file is not None:
            return str(self.file)
        return "memory" if self.ephemeral else "nowhere"

    def load(self) -> Keyring | None:
        """The keyring if there is one now (never made here); None when unkeyed or not yet made."""
        if self.inline is not None:
            return parse(self.inline, ENV_KEYS)
        if self.file is not None and self.file.exists():
            return read_file(self.file)
        return None

    def open_ring(self, *, signed: bool) -> Keyring | None:
        """The keyring to open a journal with: the one here, or a new one for a journal that never
        had keys (``signed``: its chain head is signed already; then a lost key is an error)."""
        ring = self.load()
        if ring is not None:
            return ring
        checkpointed = self.checkpoints is not None and self.checkpoints.exists()
        if not self.keyed:
            if signed:
                raise ConfigError(
                    [
                        Problem(
                            message=f"the journal is signed with a key: set {ENV_FILE} or {ENV_KEYS}"
                        )
                    ]
                )
            return None
        if signed or checkpointed:
            raise ConfigError(
                [
                    Problem(
                        message=f"the journal has keys, but {self.describe()} is missing: restore "
                        "it (a new key would open nothing the journal sealed)"
                    )
                ]
            )
        return self.make()

    def make(self) -> Keyring:
        """A new keyring where this place keeps one (the caller checked there is none yet)."""
        if self.file is not None and self.create:
            return create_file(self.file)
        if self.ephemeral:
            return Keyring.generate()
        raise ConfigError(
            [Problem(message=f"no journal key at {self.describe()}: set {ENV_FILE} or {ENV_KEYS}")]
        )


NONE = KeyPlace()


def beside(journal: Path) -> KeyPlace:
    """The keys of a SQLite journal: ``<journal>.keys`` (or TONGBAN_JOURNAL_KEYS), checkpoints in
    ``<journal>.checkpoints``."""
    checkpoints = journal.with_name(journal.name + ".checkpoints")
    inline = os.environ.get(ENV_KEYS)
    if inline:
        return KeyPlace(inline=inline, checkpoints=checkpoints)
    named = os.environ.get(ENV_FILE)
    file = Path(named) if named else journal.with_name(journal.name + ".keys")
    return KeyPlace(file=file, checkpoints=checkpoints)


def from_environment() -> KeyPlace:
    """The keys of a server journal (PostgreSQL): TONGBAN_JOURNAL_KEY_FILE, checkpoints beside it
    (one file per instance), or TONGBAN_JOURNAL_KEYS with TONGBAN_JOURNAL_CHECKPOINTS; else none."""
    named = os.environ.get(ENV_CHECKPOINTS)
    checkpoints = Path(named) if named else None
    inline = os.environ.get(ENV_KEYS)
    if inline:
        return KeyPlace(inline=inline, checkpoints=checkpoints)
    file = os.environ.get(ENV_FILE)
    if file:
        path = Path(file)
        return KeyPlace(
            file=path, checkpoints=checkpoints or path.with_name(path.name + ".checkpoints")
        )
    return NONE


def ephemeral() -> KeyPlace:
    """Keys made at open and forgotten at exit (the in-memory journal)."""
    return KeyPlace(ephemeral=True)
