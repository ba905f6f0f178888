"""Today's mapping of an exchange: what the mapping in force now makes of its application, and how
that differs from what was sent (``tongban journal show`` and the remap dry run).

``_map_today`` maps with the runtime's one map of an exchange (``runtime.mapping.map_exchange``),
so what is shown is what delivery would send: supplements by their own section, applications
checked against the partner's schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from federation.cli.access import with_journal
from federation.cli.lang import _
from federation.cli.problems import shown
from federation.domain.errors import ConfigError, FederationError
from federation.domain.models import Exchange
from federation.logging import MASK
from federation.mapping.examples import diff_text
from federation.runtime.catalogue import Catalogue, load_catalogue
from federation.runtime.mapping import Mapped, map_exchange
from replay.journal import Backend
from replay.service import Plan

MASKED = " (values masked: --reveal --reason … shows them)"


@dataclass(frozen=True, kw_only=True)
class Today:
    """What the mapping in force today makes of the exchange's application, against what was sent."""

    status: str  # same | different | rejected | not_sent | unavailable
    note: str
    diff: str = ""
    mapped: Mapping[str, Any] | None = None
    problems: tuple[str, ...] | None = None
    values_masked: bool = False
    # The problems (the catalogue's, or the mapping's with this application), and the note, in
    # the reader's language (text output only).
    problems_said: tuple[str, ...] | None = None
    note_said: str = ""
    # Where the mapping's problems with this application are, without their messages (which can
    # quote it): what a reader who may not reveal is shown instead of ``problems``.
    places: tuple[str, ...] | None = None

    def masked(self) -> Today:
        """Today's verdict without the values: the diff and the request are personal data."""
        if not self.diff and self.mapped is None and self.places is None:
            return self
        return replace(
            self,
            note=f"{self.note}{MASKED}",
            diff="",
            mapped=None,
            values_masked=True,
            problems=self.places if self.places is not None else self.problems,
            problems_said=self.places if self.places is not None else self.problems_said,
        )

    def said(self) -> str:
        """The note in the reader's language, for text output (JSON keeps ``note`` as it is)."""
        notes = {
            "same": _("no difference from today's mapping"),
            "different": _("today's mapping would send something else"),
            "not_sent": _(
                "nothing was sent (never mapped); today's mapping accepts it: remap would send"
            ),
            "rejected": _("today's mapping rejects this application (%(n)d problem(s))")
            % {"n": len(self.problems or ())},
        }
        if self.status not in notes:
            return self.note_said or self.note  # the catalogue could not be loaded: its error
        masked = _(" (values masked: --reveal --reason … shows them)") if self.values_masked else ""
        return notes[self.status] + masked

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "note": self.note,
            "diff": self.diff,
            "mapped": self.mapped,
            "problems": list(self.problems) if self.problems is not None else None,
        }


def compare_with_today(ex: Exchange, root: Path) -> Today:
    """Map the original application with today's catalogue and diff it with the request sent."""
    try:
        catalogue = load_catalogue(root)
    except ConfigError as exc:
        first = "; ".join(str(p) for p in exc.problems[:3])
        said = tuple(shown(p) for p in exc.problems)
        unloaded = _("cannot load the catalogue at --config %(root)s: %(problems)s")
        return Today(
            status="unavailable",
            note=f"cannot load the catalogue at --config {root}: {first}",
            problems=tuple(str(p) for p in exc.problems),
            problems_said=said,
            note_said=unloaded % {"root": root, "problems": "; ".join(said[:3])},
        )
    except (FederationError, OSError) as exc:
        return Today(status="unavailable", note=f"cannot load the catalogue at {root}: {exc}")
    today = _map_today(ex, catalogue)
    if today.problems is not None:
        return replace(
            today,
            status="rejected",
            note=f"today's mapping rejects this application ({len(today.problems)} problem(s))",
        )
    if ex.mapped is None:
        return replace(
            today,
            status="not_sent",
            note="nothing was sent (never mapped); today's mapping accepts it: remap would send",
        )
    # English in every language: the diff is in the JSON too
    diff = diff_text(ex.mapped, today.mapped, names=("sent", "today's mapping"))
    if not diff:
        return replace(today, status="same", note="no difference from today's mapping")
    return replace(
        today,
        status="different",
        note="today's mapping would send something else",
        diff=diff,
    )


def _map_today(ex: Exchange, catalogue: Catalogue) -> Today:
    """Today's catalogue applied to the exchange, as delivery would map it (the runtime's one map):
    the request, or every problem with it."""
    today = map_exchange(catalogue, ex)
    if isinstance(today, Mapped):
        return Today(status="", note="", mapped=today.request)
    problems = tuple(map(str, today.problems))
    said = tuple(map(shown, today.problems))
    places = tuple(str(replace(p, message=MASK, text=None)) for p in today.problems)
    return Today(
        status="rejected",
        note="",
        mapped=today.request,
        problems=problems,
        problems_said=said,
        places=places,
    )


PREVIEW_LIMIT = 1000


def preview(plan: Plan, root: Path, journal_path: str) -> tuple[dict[str, str], list[str]]:
    """For a remap dry run: what today's mapping (--config) makes of each application, and notes."""
    try:
        catalogue = load_catalogue(root)
    except (FederationError, OSError):
        note = _("(today's mapping not previewed: no valid catalogue at --config %(root)s)")
        return {}, [note % {"root": root}]
    ids = [ex.id for ex in plan.take[:PREVIEW_LIMIT]]

    async def full(journal: Backend) -> list[Exchange]:
        # The plan's exchanges come from a search, without history: the application is in it.
        found = [await journal.get(xid) for xid in ids]
        return [ex for ex in found if ex is not None]

    out = {}
    for ex in with_journal(journal_path, full):
        today = _map_today(ex, catalogue)
        out[ex.id] = (
            _("today's mapping: ok")
            if today.problems is None
            else _("today's mapping still rejects it: %(problem)s")
            # where, not why: why can quote the application (journal show --reveal says it)
            % {"problem": (today.places or today.problems_said or today.problems)[0]}
        )
    notes = [
        _(
            "(previewed with the mapping files in %(root)s; the broker remaps with the ones it "
            "has loaded: after a fix, reload it first with SIGHUP or POST /v1/admin/reload)"
        )
        % {"root": root}
    ]
    if len(plan.take) > PREVIEW_LIMIT:
        note = _("(today's mapping previewed for the first %(n)d only)")
        notes.append(note % {"n": PREVIEW_LIMIT})
    return out, notes
