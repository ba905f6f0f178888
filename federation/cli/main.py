"""The ``tongban`` command."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from adapters.registry import protocols
from federation.api.auth import is_loopback, unguarded
from federation.api.net import server_tls
from federation.api.server import serve_forever
from federation.cli import lang
from federation.cli.audit import audit
from federation.cli.callbacks import callback
from federation.cli.checks import contract_problems
from federation.cli.help import Root
from federation.cli.init import init
from federation.cli.journal import journal
from federation.cli.lang import _
from federation.cli.mapping import run_all_examples, run_sample
from federation.cli.notices import notice
from federation.cli.options import config_option
from federation.cli.problems import echo_problems, shown
from federation.cli.replay import replay
from federation.cli.workers import available_cores, supervise
from federation.config import LOCAL, load_config
from federation.domain.errors import ConfigError, FederationError
from federation.logging import configure
from federation.runtime import tracing
from federation.runtime.catalogue import load_catalogue
from federation.runtime.shutdown import DRAIN
from federation.sim.demo import run_demo
from federation.sim.rest import simulator_for

T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it is installed: it roughly halves the per-request overhead."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)
    return uvloop.run(coro)


LOG_FORMATS: dict[str, bool | None] = {"auto": None, "json": True, "console": False}


def _parse_endpoints(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        pid, sep, url = v.partition("=")
        if not sep or not pid or not url.startswith(("http://", "https://")):
            raise click.BadParameter(
                _("%(value)r: expected PARTNER=http(s)://host:port/path") % {"value": v}
            )
        out[pid] = url
    return out


@click.group(cls=Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tongban")
@click.option(
    "--lang",
    metavar="LANG",
    callback=lang.choose,
    expose_value=False,
    is_eager=True,
    help="zh-Hans, zh-Hant or en for what people read (default: TONGBAN_LANG, else the locale).",
)
def main() -> None:
    """tongban: journal-first broker for cross-region government service applications."""


main.add_command(journal)
main.add_command(replay)
main.add_command(notice)
main.add_command(callback)
main.add_command(audit)
main.add_command(init)


@main.command()
@config_option
@click.option(
    "--journal",
    "journal_path",
    default="tongban.sqlite",
    show_default=True,
    envvar="TONGBAN_JOURNAL",
    help="SQLite journal file, or postgresql://… (?schema=NAME) for several instances.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="PARTNER=URL",
    help="Send this partner's traffic elsewhere (staging, a simulator). Repeatable.",
)
@click.option(
    "--lease", type=float, default=None, help="Lease seconds (default from partners.yaml)."
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Serve HTTPS with this certificate (PEM).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The certificate's private key (PEM).",
)
@click.option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Accept partners' client certificates issued by this CA (mutual TLS).",
)
@click.option("--poll-interval", type=float, default=None, help="Seconds between journal polls.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "json", "console"]),
    help="Log lines as JSON or for people (auto: JSON unless stderr is a terminal).",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=1),
    default=DRAIN,
    show_default=True,
    help="Seconds from SIGTERM to exit: intake stops, attempts finish or are released.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Broker processes on this port, sharing the journal (0: one per core available).",
)
@click.option("--listen-fd", type=int, default=None, hidden=True)  # a worker's inherited socket
def serve(
    root: Path,
    journal_path: str,
    host: str,
    port: int,
    endpoints: tuple[str, ...],
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    lease: float | None,
    poll_interval: float | None,
    log_level: str,
    log_format: str,
    drain_timeout: float,
    workers: int,
    listen_fd: int | None,
) -> None:
    """Run the broker: intake API, journal and delivery worker.

    Traces go to an OpenTelemetry exporter when the standard OTEL_* variables ask for one
    (docs/observability.md); metrics are at GET /metrics.
    """
    configure(level=log_level, json=LOG_FORMATS[log_format])
    tracing.configure_from_environment()
    if bool(tls_cert) != bool(tls_key) or (tls_client_ca and not tls_cert):
        raise click.UsageError(
            _("--tls-cert and --tls-key go together; --tls-client-ca needs both")
        )
    _refuse_an_open_host(root, host)
    if workers != 1:
        child = click.get_current_context().params
        _serve_workers(root, journal_path, host, port, workers or available_cores(), child)
        return
    context = _tls_context(tls_cert, tls_key, tls_client_ca)
    try:
        _run(
            serve_forever(
                root=root,
                journal_path=journal_path,
                host=host,
                port=port,
                endpoints=_parse_endpoints(endpoints),
                lease=lease,
                poll_interval=poll_interval,
                ssl_context=context,
                sock=None if listen_fd is None else socket.socket(fileno=listen_fd),
                drain=drain_timeout,
            )
        )
    except ConfigError as exc:
        _print_problems(exc)
        sys.exit(2)
    except (FederationError, OSError) as exc:
        click.echo(f"tongban serve: {exc}", err=True)
        sys.exit(2)
    finally:
        tracing.shutdown()  # flush the spans still batched


def _tls_context(cert: str | None, key: str | None, client_ca: str | None) -> ssl.SSLContext | None:
    """The server's TLS context from ``--tls-*`` (None: plain HTTP); exit 2 when unusable."""
    try:
        return server_tls(cert, key, client_ca) if cert and key else None
    except (ssl.SSLError, OSError) as exc:
        click.echo(
            _("tongban serve: cannot use the TLS files: %(error)s") % {"error": exc}, err=True
        )
        sys.exit(2)


def _serve_workers(
    root: Path, journal_path: str, host: str, port: int, count: int, params: dict[str, Any]
) -> None:
    """``serve --workers N``: the parent of N broker processes (federation/cli/workers.py)."""
    args = [f"--config={root}", f"--host={host}", f"--log-level={params['log_level']}"]
    args.append(f"--log-format={params['log_format']}")
    args.append(f"--drain-timeout={params['drain_timeout']}")  # each worker drains within it
    args += [f"--endpoint={e}" for e in params["endpoints"]]
    for name in ("lease", "poll_interval", "tls_cert", "tls_key", "tls_client_ca"):
        if params[name] is not None:
            args.append(f"--{name.replace('_', '-')}={params[name]}")
    try:
        status = supervise(
            root=root,
            journal_path=journal_path,
            host=host,
            port=port,
            count=count,
            args=args,
            drain=params["drain_timeout"],
        )
    except ConfigError as exc:
        _print_problems(exc)
        sys.exit(2)
    except (FederationError, OSError) as exc:
        click.echo(f"tongban serve: {exc}", err=True)
        sys.exit(2)
    sys.exit(status)


@main.command()
@config_option
def check(root: Path) -> None:
    """Validate partners.yaml and every mapping; print every problem; exit 1 on any error."""
    if not root.exists():  # said of the path given, not of a partners.yaml inside it
        click.echo(
            _(
                "--config %(path)s: no such directory or file (give the configuration directory "
                "or its partners.yaml)"
            )
            % {"path": root},
            err=True,
        )
        sys.exit(1)
    try:
        catalogue = load_catalogue(root)
    except ConfigError as exc:
        _print_problems(exc)
        sys.exit(1)
    for warning in catalogue.warnings:
        click.echo(shown(warning))
    contract = contract_problems(catalogue)  # the mappings against the contracts on both sides
    if any(p.severity == "error" for p in contract):
        _print_problems(ConfigError(contract))
        sys.exit(1)
    for warning in contract:
        click.echo(shown(warning))
    partners = {pid: p for pid, p in catalogue.config.partners.items() if pid != LOCAL}
    outbound = sum(len(p.services) for p in partners.values())
    inbound = (
        len(catalogue.config.partners[LOCAL].services) if LOCAL in catalogue.config.partners else 0
    )
    counts = {
        "partners": len(partners),
        "out": outbound,
        "in": inbound,
        "mappings": len(set(m.path for m in catalogue.mappings.values())),
    }
    if LOCAL in catalogue.config.partners:
        summary = _(
            "ok: %(partners)d partners and the local system, %(out)d service items out, "
            "%(in)d in, %(mappings)d mappings"
        )
    else:
        summary = _(
            "ok: %(partners)d partners, %(out)d service items out, %(in)d in, %(mappings)d mappings"
        )
    click.echo(summary % counts)


@main.command()
@config_option
@click.option(
    "--keep-running", is_flag=True, help="Leave the broker up afterwards and print its URL."
)
@click.option("--port", default=0, type=int, help="Broker port (default: any free port).")
@click.option(
    "--timeout", default=60.0, type=float, show_default=True, help="Seconds to wait for deliveries."
)
def demo(root: Path, keep_running: bool, port: int, timeout: float) -> None:
    """Broker + a simulator per partner on loopback; submit the sample applications; show results."""
    log_file = Path(tempfile.gettempdir()) / "tongban-demo.log"
    with log_file.open("w", encoding="utf-8") as log_stream:
        configure(stream=log_stream, json=True)
        # Wide enough for the results table when the output is a file or a pipe (as in make).
        console = Console(width=None if sys.stdout.isatty() else 140)
        console.print(f"logs: {log_file}")
        try:
            status = _run(
                run_demo(
                    root=root,
                    console=console,
                    keep_running=keep_running,
                    port=port,
                    wait=timeout,
                )
            )
        except ConfigError as exc:
            _print_problems(exc)
            status = 2
    sys.exit(status)


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", default=0, type=int, help="Port of the first simulator (0: any free ports)."
)
@click.option("--partner", "only", multiple=True, help="Simulate only these partners. Repeatable.")
def simulate(root: Path, host: str, port: int, only: tuple[str, ...]) -> None:
    """Run partner simulators; print one JSON line {partner: url} once they listen."""
    configure(level="warning")
    try:
        config = load_config(root, protocols())
    except ConfigError as exc:
        _print_problems(exc)
        sys.exit(2)
    unknown = set(only) - set(config.partners)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise click.BadParameter(_("unknown partner(s): %(names)s") % {"names": names})
    chosen = [p for pid, p in config.partners.items() if not only or pid in only]

    async def run() -> None:
        sims = [simulator_for(p) for p in chosen]
        urls = {}
        for i, sim in enumerate(sims):
            urls[sim.partner.id] = await sim.start(host, port + i if port else 0)
        click.echo(json.dumps(urls), nl=True)
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for sim in sims:
            await sim.stop()

    _run(run())


@main.group()
def mapping() -> None:
    """Try mappings before they go live."""


@mapping.command("test")
@config_option
@click.argument("mapping_file", required=False, type=click.Path(path_type=Path, exists=True))
@click.argument("sample", required=False, type=click.Path(path_type=Path, exists=True))
@click.option("--all", "run_all", is_flag=True, help="Run every golden example of every mapping.")
def mapping_test(root: Path, mapping_file: Path | None, sample: Path | None, run_all: bool) -> None:
    """Map SAMPLE.json with MAPPING and print the request or every error (exit 0 or 1).

    SAMPLE is an application, or a golden example (then the result is compared with it).
    """
    if run_all:
        if mapping_file or sample:
            raise click.UsageError(_("--all takes no MAPPING or SAMPLE"))
        try:
            ok = run_all_examples(root, echo=click.echo)
        except ConfigError as exc:
            _print_problems(exc)
            sys.exit(1)
        sys.exit(0 if ok else 1)
    if mapping_file is None or sample is None:
        raise click.UsageError(_("give MAPPING and SAMPLE, or --all"))
    try:
        ok = run_sample(root, mapping_file, sample, echo=click.echo)
    except ConfigError as exc:
        _print_problems(exc)
        sys.exit(1)
    sys.exit(0 if ok else 1)


def _refuse_an_open_host(root: Path, host: str) -> None:
    """Exit 2 when ``host`` is not loopback and some part of the local API needs no key."""
    if host == "localhost" or is_loopback(host):
        return
    try:
        config = load_config(root, protocols())
    except ConfigError:
        return  # serving reports the problems
    gaps = unguarded(config)
    if gaps:
        refusal = _(
            "tongban serve: refusing --host %(host)s: not every API is guarded by a key "
            "(%(gaps)s); declare principals in partners.yaml (docs/security.md) "
            "or serve on 127.0.0.1 behind a gateway"
        )
        click.echo(refusal % {"host": host, "gaps": "; ".join(gaps)}, err=True)
        sys.exit(2)


def _print_problems(exc: ConfigError) -> None:
    echo_problems(exc.problems)
