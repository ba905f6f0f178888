"""Secret references: partners.yaml names where a secret lives, never the secret itself.

A secret is written ``{env:NAME}`` (an environment variable) or ``{file:path}`` (a file, relative to
the configuration directory, readable by its owner only). It is read each time it is used, so a
rotated secret (a new file, a new value in the environment of a reloaded broker) takes effect with
no restart. Errors name the reference, never the value.

On the event loop a secret is read with :func:`read_texts` or :meth:`SecretRef.load`: a variable at
once, a file in a thread of its folder's own small pool (:class:`Readers`), never the loop's nor
the threads the journal and WSDL loading use. A read that has not answered within
:data:`READ_TIMEOUT` seconds is a :class:`SecretError` (what needed it is held), and while a read
in a folder has been outstanding that long, the folder's file system counts as hung: a further
read there is refused at once instead of queueing behind it. So a hung file system (NFS, a failing
disk) holds the deliveries and inbound checks that need its secrets, never those of other folders,
and the threads stuck in it stay at most :data:`PER_FOLDER` (a thread in ``read()`` cannot be
stopped). Nothing is cached: the stat a cache would need to notice a rotation is I/O as well, and
costs about what the read of a file this small does.

A secret shorter than :data:`MIN_SECRET` characters is refused (an error at its line in
partners.yaml when ``tongban check`` can read it; what needs it is held when one is read at a
send): it is no credential, and a partner's reply that quotes it back could not be scrubbed of
it without garbling the rest (see :mod:`adapters.auth.scrub`).

Fixed header values (``rest: headers:``) are literals, so a header that carries credentials
(:func:`carries_credentials`) may not be given one: it goes through ``auth:``. A ``soap: headers:``
value may be a reference instead (a WSDL's own credentials element), and such an element takes
nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from federation.config.reader import Reader
from federation.config.yamlsrc import PathKey
from federation.domain.errors import FederationError
from federation.domain.texts import Text, said

SECRET_RE = re.compile(r"\{(env|file):([^{}]+)\}")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A header name carries credentials if it contains one of these, or has one of _WORDS as a word.
_PARTS = (
    "authorization",
    "cookie",
    "token",
    "secret",
    "password",
    "passwd",
    "credential",
    "apikey",
    "senha",  # Portuguese: password (Macau's services name it so)
)
_WORDS = frozenset({"key", "auth"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")  # X-Api-Key, apiKey, API_KEY: ... key


MAX_SECRET_BYTES = 65536  # a key, a token or a password: far below; a file past it is a mistake
MIN_SECRET = 4
"""Characters (bytes, for a secret that is not UTF-8) a secret has at least; see the docstring."""
READ_TIMEOUT = 10.0
"""Seconds a secret file's read (or a signature with a key file) may take before what needs it is
held: a local disk answers in microseconds, a hung NFS mount never."""
PER_FOLDER = 2
"""Threads that read one folder's files: as many as can ever be stuck in a hung file system."""
_T = TypeVar("_T")


class SecretError(FederationError):
    """A secret cannot be read: unset, missing, unreadable or readable by others."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text  # for tongban check, said in the reader's language


class SecretTooShort(SecretError):
    """A secret that could be read, but is shorter than :data:`MIN_SECRET` characters."""


@dataclass(frozen=True, kw_only=True)
class SecretRef:
    """Where one secret lives: ``kind`` env or file, ``name`` the variable or the file's path."""

    kind: str
    name: str
    base: Path = Path()

    def __str__(self) -> str:
        return f"{{{self.kind}:{self.name}}}"

    @property
    def path(self) -> Path:
        """The file of a ``{file:…}`` reference, resolved against the configuration directory."""
        return (self.base / self.name).resolve()

    def read_bytes(self) -> bytes:
        """The secret, read now; SecretError naming the reference if it cannot be used."""
        if self.kind == "env":
            value = os.environ.get(self.name)
            if not value:
                raise SecretError(
                    said(
                        "secret %(ref)s: environment variable %(name)s is not set",
                        ref=str(self),
                        name=self.name,
                    )
                )
            try:
                return self._long_enough(value.encode("utf-8"))
            except UnicodeEncodeError:  # bytes that are not UTF-8, as Python reads them
                raise SecretError(said("secret %(ref)s: not UTF-8 text", ref=str(self))) from None
        path = self.base / self.name  # as self.path, without resolve()'s lstat of each part
        try:
            info = path.stat()
        except OSError as exc:
            raise SecretError(
                said("secret %(ref)s: %(error)s", ref=str(self), error=exc.strerror)
            ) from None
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SECRET_BYTES:
            # a FIFO or a device would block the broker's loop at every send; a big file is no key
            raise SecretError(
                said(
                    "secret %(ref)s: not a regular file of at most %(limit)s bytes",
                    ref=str(self),
                    limit=MAX_SECRET_BYTES,
                )
            )
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                said(
                    "secret %(ref)s: the file may be read by group or others (mode %(mode)s); "
                    "chmod 600 it",
                    ref=str(self),
                    mode=format(stat.S_IMODE(info.st_mode), "o"),
                )
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SecretError(
                said("secret %(ref)s: %(error)s", ref=str(self), error=exc.strerror)
            ) from None
        data = data.strip()
        if not data:
            raise SecretError(said("secret %(ref)s: the file is empty", ref=str(self)))
        return self._long_enough(data)

    def _long_enough(self, data: bytes) -> bytes:
        if len(data) >= 4 * MIN_SECRET:  # the common case: long enough in any encoding
            return data
        try:
            size = len(data.decode("utf-8"))
        except UnicodeDecodeError:
            size = len(data)
        if size < MIN_SECRET:
            raise SecretTooShort(
                said(
                    "secret %(ref)s: shorter than %(least)s characters, which is no credential, "
                    "and a reply quoting it could not be scrubbed of it; nothing is sent with it",
                    ref=str(self),
                    least=MIN_SECRET,
                )
            )
        return data

    def read(self) -> str:
        """The secret as text (UTF-8); SecretError if it is not."""
        try:
            return self.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(said("secret %(ref)s: not UTF-8 text", ref=str(self))) from None

    async def load(self) -> bytes:
        """:meth:`read_bytes` for the event loop: a file is read in a thread of its folder's pool
        (see the module docstring: a hung file system is a SecretError)."""
        if self.kind == "env":
            return self.read_bytes()
        return await off_loop(self.read_bytes, folder=self.folder, what=str(self))

    @property
    def folder(self) -> str:
        """The folder a ``{file:…}`` reference's file is in, as written (no I/O)."""
        return os.path.dirname(os.path.abspath(self.base / self.name))

    def problem(self) -> Text | None:
        """Why the secret cannot be read now, or None: for ``tongban check`` (as bytes: some
        secrets are keys, not text; one read as text says so at its use)."""
        try:
            self.read_bytes()
        except SecretError as exc:
            return exc.text
        return None


class Readers:
    """Each folder's threads for reading its secret files, and the reads outstanding in them.

    A read in a folder whose oldest outstanding read has run :data:`READ_TIMEOUT` seconds is
    refused at once (its file system hangs); any read is given up after that long. A thread stuck
    in a read keeps its place until the read returns, so a hung folder holds at most
    :data:`PER_FOLDER` threads, and every other folder has threads of its own. The threads are
    daemons, so one stuck in a hung file system does not keep a stopping broker from exiting."""

    def __init__(self, timeout: float = READ_TIMEOUT) -> None:
        self.timeout = timeout
        self._pools: dict[str, _Pool] = {}
        self._started: dict[str, dict[int, float]] = {}  # folder -> {read: when its thread began}
        self._lock = threading.Lock()
        self._next = 0

    def hung(self, folder: str) -> float | None:
        """Seconds the oldest outstanding read in ``folder`` has run, if past the timeout."""
        started = self._started.get(folder)
        if not started:
            return None
        with self._lock:
            oldest = min(started.values(), default=None)
        stuck = 0.0 if oldest is None else time.monotonic() - oldest
        return stuck if stuck >= self.timeout else None

    async def run(self, work: Callable[[], _T], folder: str, what: str) -> _T:
        """``work()`` in a thread of ``folder``'s pool; SecretError naming ``what`` if the folder
        hangs or the work has not ended within the timeout."""
        if (stuck := self.hung(folder)) is not None:
            raise _hung(what, stuck)
        with self._lock:
            pool = self._pools.get(folder)
            if pool is None:
                pool = _Pool(folder)
                self._pools[folder] = pool
            self._next += 1
            key = self._next

        def timed() -> _T:
            with self._lock:
                self._started.setdefault(folder, {})[key] = time.monotonic()
            try:
                return work()
            finally:
                with self._lock:
                    self._started[folder].pop(key, None)

        loop = asyncio.get_running_loop()
        future = pool.submit(loop, timed)
        expired: list[bool] = []  # a timer, cheaper than wait_for's task at every read
        timer = loop.call_later(self.timeout, _expire, future, expired)
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not expired or (task is not None and task.cancelling()):
                raise  # cancelled from outside (a shutdown), even as the timer fired: not ours
            # a queued read is cancelled; one in read() runs on, counted until it returns
            why = f"no answer from the file system within {self.timeout:g} s"
            raise SecretError(said("secret %(ref)s: %(error)s", ref=what, error=why)) from None
        finally:
            timer.cancel()


class _Pool:
    """:data:`PER_FOLDER` daemon threads taking one folder's reads from a queue. Daemon threads:
    one stuck in ``read()`` on a hung mount must not keep a stopping broker from exiting (the
    threads of a ThreadPoolExecutor are joined at exit, and a hung read never returns)."""

    def __init__(self, folder: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        for n in range(PER_FOLDER):
            name = f"tongban-secrets-{n}:{folder}"
            threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        while True:
            self._jobs.get()()

    def submit(self, loop: asyncio.AbstractEventLoop, work: Callable[[], _T]) -> asyncio.Future[_T]:
        """``work()`` in one of the threads; its result (or error) in the future, on ``loop``.
        A read cancelled while queued is not started."""
        future: asyncio.Future[_T] = loop.create_future()

        def job() -> None:
            if future.cancelled():  # given up while queued (read across threads: a flag)
                return
            try:
                result = work()
            except BaseException as exc:  # handed to the awaiting task; the thread serves on
                _settle(loop, future.set_exception, future, exc)
            else:
                _settle(loop, future.set_result, future, result)

        self._jobs.put(job)
        return future


def _settle(
    loop: asyncio.AbstractEventLoop,
    setter: Callable[[Any], None],
    future: asyncio.Future[Any],
    value: Any,
) -> None:
    def settle() -> None:
        if not future.done():  # not given up meanwhile
            setter(value)

    with contextlib.suppress(RuntimeError):  # the loop closed while the read ran: nobody waits
        loop.call_soon_threadsafe(settle)


def _expire(future: asyncio.Future[Any], expired: list[bool]) -> None:
    if not future.done():
        expired.append(True)
        future.cancel()


def _hung(what: str, stuck: float) -> SecretError:
    # The reason is a value (English, like an OS error's): it is only ever said at a send, in the
    # journal and the logs, never by tongban check, which reads the file where it runs.
    why = f"a read in its folder has not returned for {stuck:.1f} s; not tried"
    return SecretError(said("secret %(ref)s: %(error)s", ref=what, error=why))


READERS = Readers()
"""The threads that read secret files (and sign with key files) for the event loop."""
SHARED = "(shared)"  # the pool of work that names no folder (signing with a key in a variable)


async def off_loop(work: Callable[[], _T], *, folder: str = SHARED, what: str = "") -> _T:
    """``work()`` in a thread of ``folder``'s pool of :data:`READERS`, awaited (for secret files
    and key files); SecretError if it has not ended within :data:`READ_TIMEOUT` seconds or the
    folder hangs."""
    return await READERS.run(work, folder, what or "(a secret file)")


async def read_texts(refs: Sequence[SecretRef]) -> list[str]:
    """Each secret as text, read now, in order; SecretError naming the first that cannot be.
    Variables are read at once; files in the threads of their own folder, one trip per folder
    (several at once), so a read that hangs holds its own folder's threads and is charged to
    that folder, never to another one read alongside it. A hung folder among them is refused at
    once, before any read starts."""
    if all(ref.kind != "file" for ref in refs):
        return [ref.read() for ref in refs]  # variables only: at once, as most attempts are
    texts = {i: ref.read() for i, ref in enumerate(refs) if ref.kind != "file"}
    folders: dict[str, list[int]] = {}
    for i, ref in enumerate(refs):
        if ref.kind == "file":
            folders.setdefault(ref.folder, []).append(i)
    for folder, places in folders.items():
        if (stuck := READERS.hung(folder)) is not None:
            raise _hung(str(refs[places[0]]), stuck)
    reads = [_read_folder(refs, places, folder) for folder, places in folders.items()]
    if len(reads) == 1:
        texts.update(await reads[0])  # the common case: no gather
    else:
        for got in await asyncio.gather(*reads, return_exceptions=True):
            if isinstance(got, BaseException):
                raise got  # the first folder's error (in the order of refs)
            texts.update(got)
    return [texts[i] for i in range(len(refs))]


async def _read_folder(refs: Sequence[SecretRef], places: list[int], folder: str) -> dict[int, str]:
    """The files of ``refs`` at ``places``, all in ``folder``, read in one trip to its threads."""
    what = ", ".join(str(refs[i]) for i in places)
    return await off_loop(lambda: {i: refs[i].read() for i in places}, folder=folder, what=what)


def parse_secret(r: Reader, path: PathKey, raw: Any, base: Path) -> SecretRef | None:
    """A ``{env:NAME}`` or ``{file:path}`` reference; a literal secret is an error.

    A reference that cannot be read here is a warning naming it (the broker holds what needs it
    until it can be read), so ``tongban check`` on another machine still passes; one that reads
    shorter than :data:`MIN_SECRET` characters is an error (see the module docstring).
    """
    if not isinstance(raw, str):
        r.error(path, said("expected a secret reference such as '{env:NAME}' or '{file:path}'"))
        return None
    m = SECRET_RE.fullmatch(raw.strip())
    if m is None:
        # Never echo the value: it may be the secret itself.
        r.error(
            path,
            said(
                "secrets never go in configuration files: write '{env:NAME}' or '{file:path}' "
                "(a file readable by its owner only)"
            ),
        )
        return None
    kind, name = m.group(1), m.group(2).strip()
    if "\x00" in name:
        r.error(path, said("a secret reference cannot hold a NUL character"))
        return None
    if kind == "env" and not ENV_NAME_RE.fullmatch(name):
        r.error(path, said("%(name)r is not an environment variable name", name=name))
        return None
    ref = SecretRef(kind=kind, name=name, base=base)
    checked(r, path, ref)
    return ref


def checked(r: Reader, path: PathKey, ref: SecretRef) -> None:
    """Read ``ref`` now for ``tongban check``: too short is an error at ``path``, unreadable a
    warning (what needs it is held until it can be read)."""
    try:
        ref.read_bytes()
    except SecretTooShort as exc:
        r.error(path, exc.text)
    except SecretError as exc:
        r.warn(path, said("%(why)s; what needs it is held until it can be read", why=exc.text))


def carries_credentials(name: str) -> bool:
    """Whether a header called ``name`` carries credentials: one whose name contains
    authorization, cookie, token, secret, password, passwd, credential, apikey or senha, or has
    the word key or auth (``X-Api-Key``, ``apiKey``, ``X-Auth``; not ``Keyword``)."""
    lower = name.lower()
    if any(part in lower for part in _PARTS):
        return True
    return any(word.lower() in _WORDS for word in _WORD.findall(name))


def literal_credential(r: Reader, path: PathKey, name: str, *, soap: bool = False) -> bool:
    """An error at ``path`` if header ``name`` carries credentials (its fixed value, written in
    the file, would be a secret in configuration); the value is never repeated."""
    if not carries_credentials(name):
        return False
    if soap:
        message = said(
            "header %(header)s carries credentials, and secrets never go in configuration files: "
            "write its value as a '{env:NAME}' or '{file:path}' reference, read at every send "
            "(or use auth: or soap: ws_security:)",
            header=name,
        )
    else:
        message = said(
            "header %(header)s carries credentials, and secrets never go in configuration files: "
            "send it with auth: (bearer, or api_key with header: %(header)s) and a "
            "'{env:NAME}' or '{file:path}' reference",
            header=name,
        )
    r.error(path, message)
    return True


def file_ref(r: Reader, path: PathKey, raw: Any, base: Path) -> Path | None:
    """A file of partners.yaml that is no secret (a certificate). Like a secret it is deployed per
    machine, so a missing one is a warning here, and the partner's deliveries wait for it."""
    text = r.text(path, raw)
    if text is None:
        return None
    file = (base / text).resolve()
    if not file.is_file():
        r.warn(
            path,
            said(
                "file %(text)r not found here; the partner's adapter will not start without it",
                text=text,
            ),
        )
    return file
