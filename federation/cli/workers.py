"""``tongban serve --workers N``: N broker processes on one port, sharing one journal.

One broker process runs on one core. The parent opens N listening sockets on the one port
(``SO_REUSEPORT``: the kernel spreads new connections over them by address) and passes one down
to each of N worker processes, each a whole ``tongban serve`` (intake API, journal writer,
delivery worker, leases under its own owner) on the same journal: SQLite with its file locks and
leases, as a CLI command beside a running broker uses it, or PostgreSQL. The sockets stay open
in the parent, so a worker being restarted hands its socket, with the connections queued on it,
to its successor: nothing is refused. (While a worker that died is started again, the
connections the kernel queues on its socket wait for the new one.)

On SQLite the workers take turns at the file's one write lock; when they are saturated, one may
wait longer than the busy timeout (5 s) and answer 503 ``journal-unavailable`` (the client sends
the application again with its key). PostgreSQL has no such lock: use it for several workers
under heavy load.

Signals to the parent: ``SIGTERM`` or ``SIGINT`` stops every worker (each drains as a single
broker does); ``SIGHUP`` restarts the workers one at a time, a new one ready before the old one
is stopped, which loads partners.yaml and the mappings anew (a new worker that cannot start, say
on an invalid catalogue, is reported and the old ones keep running). A worker that reloads on its
own (``POST /v1/admin/reload``, the console) sends its parent that SIGHUP, so the reload reaches
every worker (``federation/runtime/siblings.py``). A worker that exits on its
own is started again on the configuration version it ran (not the files as they are now); while
that cannot start, the other workers serve alone and the parent tries again, waiting longer each
time (``Supervisor._fill_empty``). If the parent is killed, its workers are sent ``SIGTERM``.

Metrics add up over the workers (a scrape of ``/metrics`` reaches one of them at random): the parent
makes a private directory (mode 0700) for prometheus-client's multiprocess mode and names it to
the workers in ``PROMETHEUS_MULTIPROC_DIR``; each worker writes its counters, histograms and gauges
there and the one scraped renders them all (``federation/runtime/metrics.py``). When a worker exits
its live gauges are removed (``mark_process_dead``), its counters kept, so totals never go
backwards; the directory is deleted when the parent stops (and one left by a parent killed
outright, named with its pid, by the next parent that starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.multiprocess import mark_process_dead

from adapters.registry import protocols
from federation.config import load_config
from federation.domain.errors import ConfigError, Problem
from federation.domain.texts import said
from federation.logging import get_logger, loop_exception_handler
from federation.runtime.metrics import MULTIPROC_ENV
from federation.runtime.shutdown import DRAIN
from federation.runtime.siblings import CONFIG_ENV, PARENT_ENV, VERSION_LINE
from replay.factory import key_path, open_journal
from replay.refs import load_key

START_TIMEOUT = 120.0  # seconds for a new worker to load the catalogue and listen
# seconds a stopping worker is given past its own drain (--drain-timeout, which it forwards to
# them) before it is killed: a worker's drain deadline exits it by then, however stuck it was
STOP_MARGIN = 5.0
RETRY_FIRST = 1.0  # seconds before an empty slot is tried again, doubled at each failure
RETRY_MAX = 60.0
_PR_SET_PDEATHSIG = 1


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """In the child before exec: SIGTERM when the parent dies (Linux), so no worker is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Supervisor:
    """Starts, watches and restarts the worker processes of one listening socket."""

    socks: list[socket.socket]  # one per worker slot
    args: Sequence[str]  # `tongban serve` options of each worker (no --workers, no --listen-fd)
    url: str
    metrics_dir: str  # the workers' prometheus-client multiprocess directory
    stop_timeout: float = DRAIN + STOP_MARGIN  # seconds before a stopping worker is killed
    _workers: list[asyncio.subprocess.Process | None] = field(default_factory=list)
    _versions: list[str] = field(default_factory=list)  # the configuration each slot runs
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _roll: asyncio.Event = field(default_factory=asyncio.Event)
    _retry_in: float = 0.0  # seconds before an empty slot is tried again (0: at once)
    _last_exit: float = float("-inf")

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; 0 after a requested stop, 2 if the workers never started."""
        log = get_logger(component="workers")
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(loop_exception_handler)  # its frames and type, not its message
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._roll.set)
        started = await asyncio.gather(*(self._spawn(i) for i in range(len(self.socks))))
        self._workers = [w[0] if w else None for w in started]
        self._versions = [w[1] if w else "" for w in started]
        if None in self._workers:
            await self._stop_all()
            return 2
        log.info("workers_started", workers=len(self.socks), pids=self._pids())
        print(f"tongban listening on {self.url}", flush=True)
        while not self._stop.is_set():
            await self._watch()
        log.info("workers_stopping", workers=len(self._pids()))
        for sock in self.socks:  # the port closes with the workers' listeners: a client that
            sock.close()  # connects meanwhile is refused, not queued where nobody accepts
        await self._stop_all()
        return 0

    def _pids(self) -> list[int]:
        return [w.pid for w in self._workers if w is not None]

    async def _watch(self) -> None:
        """Wait for a stop, a restart request, a worker's exit or the time to start one again in
        an empty slot, and handle it."""
        exits = {asyncio.ensure_future(w.wait()): w for w in self._workers if w is not None}
        stop = asyncio.ensure_future(self._stop.wait())
        roll = asyncio.ensure_future(self._roll.wait())
        waits: list[asyncio.Future[Any]] = [*exits, stop, roll]
        if self._retry_in > 0:
            waits.append(asyncio.ensure_future(asyncio.sleep(self._retry_in)))
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            if task not in done:
                task.cancel()
        if self._stop.is_set():
            return
        gone = [exits[task] for task in done if task in exits]
        for worker in gone:
            self._exited(worker)
        if self._roll.is_set():
            self._roll.clear()
            await self._restart_one_by_one()
        elif not (gone and self._retry_in > 0):  # else the wait before the next try first
            await self._fill_empty()

    def _exited(self, gone: asyncio.subprocess.Process) -> None:
        """A worker exited on its own: its slot is empty until a new one starts in it, at once;
        a second exit within a minute waits RETRY_FIRST first, so that a worker that cannot run
        does not spin."""
        get_logger(component="workers").warning(
            "worker_exited", pid=gone.pid, status=gone.returncode
        )
        self._gone(gone)
        self._workers[self._workers.index(gone)] = None
        now = asyncio.get_running_loop().time()
        if now - self._last_exit < 60:
            self._retry_in = max(self._retry_in, RETRY_FIRST)
        self._last_exit = now

    async def _fill_empty(self) -> None:
        """Start a worker in each empty slot, on the configuration its predecessor ran (not the
        files as they are now: a half-edited partners.yaml, or one not yet reloaded). One that
        cannot start leaves its slot empty, the other workers serving, and is tried again after
        a wait that doubles up to RETRY_MAX: one crash costs at most one worker. The connections
        the kernel queues on an empty slot's socket wait for its next worker."""
        log = get_logger(component="workers")
        for index, current in enumerate(self._workers):
            if current is not None or self._stop.is_set():
                continue
            started = await self._spawn(index, self._versions[index])
            if started is None:
                self._vacate(index)
                self._retry_in = min(max(self._retry_in * 2, RETRY_FIRST), RETRY_MAX)
                log.error(
                    "worker_not_restarted",
                    slot=index,
                    retry_in=self._retry_in,
                    serving=len(self._pids()),
                    version=self._versions[index],
                )
                return
            self._workers[index] = started[0]
            log.info("worker_restarted", pid=started[0].pid, slot=index)
        self._retry_in = 0.0

    def _vacate(self, slot: int) -> None:
        """No worker takes the connections of an empty slot: its socket leaves the port, so the
        kernel sends new ones to the workers serving (those it had queued there are reset). The
        slot's next worker gets a new socket, bound but listening only once that worker starts
        to (asyncio listens on a socket it serves), so a try that fails holds no connection."""
        old = self.socks[slot]
        try:
            self.socks[slot] = _bound_like(old)
        except OSError:
            get_logger(component="workers").exception("worker_slot_not_rebound", slot=slot)
            return
        old.close()

    async def _restart_one_by_one(self) -> None:
        """SIGHUP: each worker in turn replaced by a new one, started before the old one stops;
        an empty slot gets a new one. The new ones load the files anew."""
        log = get_logger(component="workers")
        for index, old in enumerate(list(self._workers)):
            if self._stop.is_set():
                return
            started = await self._spawn(index)
            if started is None:
                log.error("worker_restart_refused", keeps=self._pids())
                return
            self._workers[index], self._versions[index] = started
            if old is not None:
                await _terminate(old, self.stop_timeout)
                self._gone(old)
                log.info(
                    "worker_replaced", pid=started[0].pid, replaces=old.pid, status=old.returncode
                )
        self._retry_in = 0.0
        log.info("workers_restarted", pids=self._pids())

    async def _spawn(
        self, slot: int, version: str | None = None
    ) -> tuple[asyncio.subprocess.Process, str] | None:
        """A new worker on the socket of ``slot`` and the configuration version it runs, once it
        listens (None if it did not start). With ``version``, it runs that one or none."""
        fd = self.socks[slot].fileno()
        env = {**os.environ, MULTIPROC_ENV: self.metrics_dir, PARENT_ENV: str(os.getpid())}
        env.pop(CONFIG_ENV, None)
        if version:
            env[CONFIG_ENV] = version
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "federation",
            "serve",
            *self.args,
            "--listen-fd",
            str(fd),
            pass_fds=(fd,),
            stdout=asyncio.subprocess.PIPE,
            env=env,
            preexec_fn=_die_with_parent,
        )
        runs = await _started(proc)
        if runs is None:
            await _terminate(proc, self.stop_timeout)
            self._gone(proc)
            get_logger(component="workers").error("worker_did_not_start", status=proc.returncode)
            return None
        return proc, runs

    async def _stop_all(self) -> None:
        running = [w for w in self._workers if w is not None]
        await asyncio.gather(*(_terminate(w, self.stop_timeout) for w in running))
        for worker in running:
            self._gone(worker)

    def _gone(self, proc: asyncio.subprocess.Process) -> None:
        """A worker has exited: its live gauges leave the sum (its counters stay, so totals
        never go backwards)."""
        mark_process_dead(proc.pid, self.metrics_dir)  # type: ignore[no-untyped-call]


def _bound_like(sock: socket.socket) -> socket.socket:
    """A new socket bound where ``sock`` is, beside the others on the port, not listening yet."""
    new = socket.socket(sock.family, socket.SOCK_STREAM)
    try:
        new.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        new.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        new.bind(sock.getsockname())
    except OSError:
        new.close()
        raise
    return new


async def _started(proc: asyncio.subprocess.Process) -> str | None:
    """The configuration version a new worker runs, once it says it listens (None: it did not
    start within START_TIMEOUT)."""
    assert proc.stdout is not None
    version = ""
    try:
        async with asyncio.timeout(START_TIMEOUT):
            line = await proc.stdout.readline()
            if line.startswith(VERSION_LINE.encode()):
                version = line.decode().removeprefix(VERSION_LINE).strip()
                line = await proc.stdout.readline()
    except TimeoutError:
        return None
    return version if line.startswith(b"tongban listening on ") else None


async def _terminate(proc: asyncio.subprocess.Process, within: float) -> None:
    """SIGTERM, then SIGKILL if it has not drained ``within`` seconds."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), within)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def prepare_journal(root: Path, journal_path: str) -> None:
    """Open the journal once before the workers do: migrations, its keys and the applicant-search
    key are made by one process, not raced for by N."""
    journal = open_journal(journal_path)
    await journal.open()
    try:
        await journal.ping()  # refused once here (a rolled-back journal), not by each worker
    finally:
        await journal.close()
    config = await asyncio.to_thread(load_config, root, protocols())
    if config.applicant_fields:
        load_key(key_path(journal_path))


def supervise(
    *,
    root: Path,
    journal_path: str,
    host: str,
    port: int,
    count: int,
    args: Sequence[str],
    drain: float = DRAIN,
) -> int:
    """Bind ``host:port``, prepare the journal, run ``count`` workers, each draining within
    ``drain`` seconds (``args`` say so to them); the exit status.

    The journal setting reaches the workers in their environment (``TONGBAN_JOURNAL``), never on
    their command line, where any user of the machine could read a database password."""
    if journal_path.strip().lower().startswith("memory:"):
        refusal = said(
            "journal %(journal)s: --workers needs a journal the workers share: a SQLite file or "
            "PostgreSQL",
            journal=journal_path,
        )
        raise ConfigError([Problem(text=refusal)])
    os.environ["TONGBAN_JOURNAL"] = journal_path
    socks = listening(host, port, count)
    shown = f"[{host}]" if socks[0].family == socket.AF_INET6 else host
    scheme = "https" if any(a.startswith("--tls-cert") for a in args) else "http"
    url = f"{scheme}://{shown}:{socks[0].getsockname()[1]}"

    # private to this parent (mkdtemp: mode 0700), new at each start: counters start at zero
    remove_orphaned_metrics(Path(tempfile.gettempdir()))
    metrics_dir = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{_namespace()}-{os.getpid()}-")

    async def run() -> int:
        await prepare_journal(root, journal_path)
        return await Supervisor(
            socks=socks,
            args=args,
            url=url,
            metrics_dir=metrics_dir,
            stop_timeout=drain + STOP_MARGIN,
        ).run()

    try:
        return asyncio.run(run())
    finally:
        for sock in socks:
            sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


# then the parent's pid namespace, its pid, and mkdtemp's letters, each after a dash
METRICS_PREFIX = "tongban-metrics-"


def _namespace() -> int:
    """This process's pid namespace (its inode): a pid means something only within it, and a
    /tmp may be shared by containers that each have their own."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def remove_orphaned_metrics(where: Path) -> list[Path]:
    """Delete the metrics directories of parents that are gone without cleaning up (SIGKILL,
    a power cut): each is named with its parent's pid namespace and pid, so one of this namespace
    whose process no longer exists is nobody's. A directory of a live process, of another
    namespace or user, a link, or one named otherwise stays; an entry that vanishes or cannot be
    read meanwhile is passed over (the parent starts whatever is in /tmp)."""
    removed = []
    space = str(_namespace())
    for path in where.glob(f"{METRICS_PREFIX}*-*-*"):
        ns, pid, _ = path.name.removeprefix(METRICS_PREFIX).split("-", 2)
        try:
            info = path.lstat()
            if ns != space or not pid.isdigit() or _alive(int(pid)):
                continue
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            shutil.rmtree(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def listening(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port`` together (0: a free port, the same for all)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(1024)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks
