"""The options the journal commands share: where the journal and the configuration are, and the
search filters (which mean what they mean in ``GET /v1/exchanges``: both build their
:class:`replay.journal.Query` with :func:`federation.api.support.query_from`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from federation.api.support import BadQuery, query_from
from federation.cli.access import applicant_ref
from federation.cli.failures import Failure
from federation.cli.lang import _
from federation.domain.storable import unstorable
from replay.journal import Query

config_option = click.option(
    "--config",
    "root",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory holding partners.yaml and mappings/ (or the partners.yaml file itself).",
)
journal_option = click.option(
    "--journal",
    "journal_path",
    default="tongban.sqlite",
    show_default=True,
    envvar="TONGBAN_JOURNAL",
    help="The journal `tongban serve --journal` writes: a SQLite file or a postgresql:// URL "
    "(?schema=NAME for a schema of its own).",
)


def storable(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: ``value`` as given, unless it holds what no journal keeps (a NUL, or a
    byte that is not UTF-8, which Python reads as a lone surrogate): a usage error naming it."""
    if value and unstorable({"value": value}):
        raise click.BadParameter(
            _("holds a NUL character or a byte that is not UTF-8: a journal cannot keep it"),
            param=param,
        )
    return value


def filter_options(*, with_id: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The search filters, shared by `journal search` and `replay`."""
    options = [
        click.option(
            "--state",
            "states",
            multiple=True,
            help="received, queued, delivering, delivered, retry_wait, failed, rejected or "
            "unconfirmed. Repeatable, or comma-separated.",
        ),
        click.option(
            "--lifecycle",
            "lifecycle",
            multiple=True,
            help="Where it stands at the partner: submitted, accepted, not_accepted, "
            "correction_required, approved, refused or completed. Repeatable.",
        ),
        click.option("--partner", help="Partner id (hk, mo, gd …)."),
        click.option("--service", help="Service item code."),
        click.option("--source", help="Local system that submitted it."),
        click.option(
            "--since",
            metavar="TIME",
            help="Received at or after (ISO 8601; without a zone, Beijing time).",
        ),
        click.option("--until", metavar="TIME", help="Received before."),
        click.option("--error", metavar="TEXT", help="Text in the last error."),
        click.option("--key", help="Idempotency key."),
        click.option(
            "--applicant",
            metavar="VALUE",
            help="Applicant ID (e.g. an HKID, written any way), matched by its keyed hash; never "
            "printed. '-' reads it from stdin, keeping it out of shell history.",
        ),
    ]
    if with_id:
        options.append(click.option("--id", "exchange_id", help="Exchange id."))

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def params(
    *,
    states: tuple[str, ...],
    partner: str | None,
    lifecycle: tuple[str, ...] = (),
    service: str | None,
    source: str | None,
    since: str | None,
    until: str | None,
    error: str | None,
    key: str | None,
    applicant: str | None,
    exchange_id: str | None = None,
    before: str | None = None,
    limit: int | None = None,
) -> dict[str, str]:
    """CLI options → the filter names of federation.api.support.FILTERS (unset ones left out)."""
    if applicant == "-":
        applicant = read_applicant()
    given: dict[str, Any] = {
        "state": ",".join(states) if states else None,
        "lifecycle": ",".join(lifecycle) if lifecycle else None,
        "partner": partner,
        "service": service,
        "source": source,
        "since": since,
        "until": until,
        "error": error,
        "id": exchange_id,
        "key": key,
        "applicant": applicant,
        "before": before,
        "limit": limit,
    }
    return {name: str(value) for name, value in given.items() if value is not None}


def read_applicant() -> str:
    if sys.stdin.isatty():
        value = str(click.prompt("Applicant ID", hide_input=True, err=True))
    else:
        value = sys.stdin.readline()
    if not value.strip():
        raise Failure("--applicant -: no value on stdin")
    return value.strip()


def query_of(given: Mapping[str, str], journal_path: str) -> Query:
    """The search the filters describe; an applicant ID is turned into its keyed hash at once."""
    try:
        return query_from(given, applicant_ref=lambda value: applicant_ref(journal_path, value))
    except BadQuery as exc:
        raise Failure(str(exc)) from exc
