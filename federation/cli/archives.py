"""``tongban journal verify --archive FILE``: an archive file checked alone, with the journal's key
file, or against the journal it came from (``replay/archive.py`` says what each proves).

Exit codes (``federation.cli.failures``, and one of its own): 0 the archive holds and is proven
(signed with the journal's key, or matched with the journal); 1 broken: something in it does not
hold; 2 it cannot be read as an archive (or the key file cannot); 3 it holds together as far as
it can be checked, but nothing proves who wrote it (no key given, or not signed and no journal).
"""

from __future__ import annotations

from pathlib import Path

import click

from federation.cli.access import with_journal
from federation.cli.failures import Failure, Negative
from federation.cli.lang import N_, _
from federation.cli.problems import said_all
from federation.domain.errors import ConfigError
from replay.archive import Checked, check_archive, compare, sign_checked
from replay.journal import Backend
from replay.keys import read_file
from replay.seal import Seal

UNPROVEN = N_(
    "unproven: %(file)s: %(exchanges)d exchanges, %(events)d events hold together, but nothing "
    "proves who wrote them: %(what)s. Check it with the journal's key (--key-file) or against "
    "the journal (--journal)"
)


class Unproven(Failure):
    """The archive holds together, but nothing proves it is the journal's (exit 3)."""

    exit_code = 3


def verify(path: Path, key_file: Path | None, journal: str | None) -> None:
    """Check ``path`` and say what holds (exit codes: the module's docstring)."""
    if not path.is_file():
        raise Failure(_("no archive file %(file)s") % {"file": path})
    if journal is not None:
        checked, problem = with_journal(journal, lambda j: _against(j, path))
    else:
        checked = check_archive(path, _seal(key_file))
        problem = None
    if checked.unreadable is not None:
        raise Failure(
            _("cannot read %(file)s as an archive: %(problem)s")
            % {"file": path, "problem": checked.unreadable}
        )
    problem = checked.problem or problem
    if problem is not None:
        raise Negative(_("broken: %(file)s: %(problem)s") % {"file": path, "problem": problem})
    counts = {"file": path, "exchanges": checked.exchanges, "events": checked.events}
    if journal is None and checked.unsigned is not None:
        what = "; ".join([checked.unsigned, *checked.unproven])
        raise Unproven(_(UNPROVEN) % {**counts, "what": what})
    click.echo(_("ok: %(file)s: %(exchanges)d exchanges, %(events)d events") % counts)
    for what in checked.unproven:
        click.echo(_("not checked: %(what)s") % {"what": what})


async def archived(journal: Backend, cutoff: float, out: Path) -> tuple[int, int, str | None]:
    """Archive what ended before ``cutoff`` to ``out``, then sign the file with the journal's key
    if it holds alone and against the journal: (exchanges, events, the problem that kept it
    unsigned, or None). An unkeyed journal's archive is left unsigned, as it has no key."""
    exchanges, events = await journal.archive(older_than=cutoff, out=out)
    if exchanges == 0:
        return 0, 0, None
    problem = (await sign_checked(journal, out))[1]
    return exchanges, events, problem


async def _against(journal: Backend, path: Path) -> tuple[Checked, str | None]:
    """The archive checked with the journal's key, then against what the journal keeps."""
    seal = getattr(journal, "seal", None)
    checked = check_archive(path, seal if isinstance(seal, Seal) else None)
    if checked.unreadable or checked.problem:
        return checked, None
    if not checked.signed:
        checked.unproven.append(
            "that no exchange archived first or last in its run was removed from the file (the "
            "archive is not signed)"
        )
    return checked, await compare(checked, journal)


def _seal(key_file: Path | None) -> Seal | None:
    """The journal key in ``key_file`` (None: no key given)."""
    if key_file is None:
        return None
    try:
        ring = read_file(key_file)
    except ConfigError as exc:
        raise Failure(said_all(exc)) from exc
    except OSError as exc:
        raise Failure(
            _("cannot read the key file %(file)s: %(error)s")
            % {"file": key_file, "error": exc.strerror}
        ) from None
    return Seal(ring, where=f"the key file {key_file}")
