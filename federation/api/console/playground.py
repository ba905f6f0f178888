"""The mapping playground: pick a partner's service, edit its mapping, run it against a golden
example or a stored exchange's application, see the mapped request or every error with its line,
and the impact on the service's latest exchanges. Saving is an operator's reload: the file is
written, the broker reloads (``Broker.reload``, as ``POST /v1/admin/reload``) and it is audited;
a configuration the broker refuses is put back as it was.

What a console user types is not the configuration's deployment, so an edited mapping (run or
saved) may name only the field keys (``encrypt``/``decrypt`` ``key:``) that the partner's mappings
in force already name: any other secret reference is refused at its line before it is read, and
audited. A file the edited mapping names as a code table that no mapping in force uses as one is
not shown when it does not read as one (it could be a key file beside the mappings).

Those keys are the partner's own, so an edited mapping that names one would encrypt or decrypt
what its author typed under them: it runs only for a user who may reveal personal data, and is
refused (403, audited) for a viewer. An edited mapping's impact on the stored applications is
likewise shown only to such a user: its ``when:`` conditions would otherwise tell, one count at a
time, what a stored application holds. For that user it is a read of those applications, so it is
audited as a ``reveal`` of the exchanges it was tried on (who, the partner's service, the exchange
ids; not the edited text, nor anything the applications hold). The mapping as it is in force
(nothing typed) runs, with its impact, for anyone who may use the playground."""

from __future__ import annotations

import asyncio
import difflib
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from federation.api.auth import Caller
from federation.api.console import views
from federation.api.console.access import check_csrf, may, require
from federation.api.console.render import gettext_of, language_of, render
from federation.api.edge import BROKER, EXCHANGE_ID_RE, refuse
from federation.api.i18n import translations
from federation.api.problems import ProblemError
from federation.api.trail import audit_refusal, record
from federation.config.secrets import SecretRef
from federation.domain.errors import ConfigError, MappingError, Problem
from federation.domain.models import Exchange, content_hash
from federation.domain.texts import Text, said
from federation.mapping.engine import CompiledMapping, load_mapping
from federation.mapping.examples import load_examples
from federation.mapping.spec import keys_named
from federation.mapping.transforms.crypto import bound_keys, key_target
from federation.runtime.broker import Broker
from federation.runtime.mapping import as_stored
from replay.journal import Query

IMPACT = 20  # the latest exchanges of the service a change is tried on
MAX_TEXT = 256 * 1024


@dataclass(kw_only=True)
class Outcome:
    """What a run of the edited mapping gave."""

    problems: list[str] = field(default_factory=list)  # file:line: path: message, each
    request: str = ""  # the mapped request as JSON text, as the partner is sent it (_shown)
    warnings: list[str] = field(default_factory=list)
    impact: tuple[int, int, list[str]] | None = None  # (tried, would differ, sample paths)


def said_in(language: str, problems: Iterable[Problem]) -> list[str]:
    """Problems of the mapping (its file's, or what it found in the application) as the viewer
    reads them: ``file:line: path: message``, the message from its template through the ``cli``
    catalogue of ``language``, the one ``tongban check`` and ``mapping test`` say it from. In
    English, and where a message has no template, exactly as the logs and the journal hold it."""
    if language == "en":
        return [str(p) for p in problems]
    gettext = translations(language, "cli").gettext
    warning = gettext(CLI_WARNING)
    return [p.shown(gettext, warning=warning) for p in problems]


# The cli catalogue's msgid for a warning's prefix: a name, not a literal, so that the console's
# catalogue check does not ask console.po for a message the cli catalogue holds.
CLI_WARNING = "warning: "


def _text(form: dict[str, str]) -> str:
    """The edited mapping of a run, save or patch form; refused past :data:`MAX_TEXT` (a diff of
    two long texts, or a compile, is work a viewer's request should not be able to make big)."""
    text = form.get("text", "")
    if len(text) > MAX_TEXT:
        raise ProblemError(413, "body-too-large", f"a mapping is at most {MAX_TEXT} characters")
    return text


def _mapping(broker: Broker, partner: str, service: str) -> CompiledMapping:
    mapping = broker.catalogue.mapping(partner, service)
    if mapping is None:
        raise ProblemError(404, "not-found", f"no mapping for {partner}/{service}")
    return mapping


class UnboundKeys(ConfigError):
    """An edited mapping named field keys its partner's mappings in force do not (``refs``)."""

    def __init__(self, problems: Iterable[Problem], refs: Iterable[str]) -> None:
        super().__init__(problems)
        self.refs = tuple(refs)


def compile_text(original: CompiledMapping, text: str, keys: Iterable[str] = ()) -> CompiledMapping:
    """The edited text compiled as if it were the original file (same name in errors, same
    code tables); ConfigError lists every problem with its line. It may name only the field keys
    ``keys`` (:func:`field_keys`); UnboundKeys when it named another, which nothing has read."""
    root = next((p for p in original.path.resolve().parents if p.name == "mappings"), None)
    with tempfile.TemporaryDirectory(prefix="tongban-playground-") as tmp, bound_keys(keys) as b:
        path = Path(tmp) / original.path.name
        path.write_text(text, encoding="utf-8")
        try:
            return load_mapping(
                path,
                display=original.file,
                root=root or original.path.parent,
                keys=original.path.resolve().parent,  # the original's key files, not the copy's
            )
        except ConfigError as exc:
            if b.refused:
                raise UnboundKeys(exc.problems, b.refused) from None
            raise


def field_keys(broker: Broker, partner: str) -> frozenset[str]:
    """The field keys (:func:`key_target`) the partner's mappings in force name, in any section."""
    out: set[str] = set()
    for (pid, _code), m in broker.catalogue.mappings.items():
        if pid == partner:
            out.update(key_target(ref) for ref in keys_of(m))
    return frozenset(out)


def keys_of(mapping: CompiledMapping) -> list[SecretRef]:
    """The field keys a mapping names, in any section."""
    m = mapping
    sections = (m.request, m.headers, m.response, m.status, m.supplement, m.status_query, m.report)
    return [ref for s in sections if s is not None for ref in keys_named(s.fields)]


def is_in_force(original: CompiledMapping, text: str) -> bool:
    """Whether ``text`` is the mapping file in force, as it was loaded (a browser sends a
    textarea's lines ended with CRLF): nothing in it was typed by the console's user."""
    versions = {content_hash(t.encode("utf-8")) for t in (text, text.replace("\r\n", "\n"))}
    return original.version in versions


def say(language: str, text: Text) -> str:
    """A message of the cli catalogue (as :func:`said_in` says problems) in ``language``."""
    return text.render(None if language == "en" else translations(language, "cli").gettext)


def _needs_reveal(named: str) -> Text:
    return said(
        "an edited mapping that names a field key (%(keys)s) runs only for a user who may reveal "
        "personal data, since it would encrypt or decrypt what is typed into it under the "
        "partner's key; run the mapping as it is in force, or ask support or an operator",
        keys=named,
    )


IMPACT_NEEDS_REVEAL = said(
    "the impact of an edited mapping on the service's latest exchanges is shown only to a user "
    "who may reveal personal data, since its conditions could tell what a stored application "
    "holds; the mapping as it is in force shows it to anyone"
)


async def _refused_oracle(
    request: web.Request, broker: Broker, caller: Caller, refs: Iterable[SecretRef]
) -> str:
    """A viewer's edited mapping that names field keys, refused: journalled and audited with the
    keys' references as written (never what was typed); those references, for the message."""
    named = ", ".join(sorted({str(ref) for ref in refs}))
    detail = f"running an edited mapping that names a field key ({named}) needs reveal"
    await refuse(request, broker, ProblemError(403, "forbidden", detail), None, b"", 0)
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="refused:show",
        target=request.path,
        reason=f"edited mapping names field keys: {named}",
        outcome="field-key-needs-reveal",
    )
    return named


def _problems(broker: Broker, original: CompiledMapping, exc: ConfigError) -> list[Problem]:
    """The problems of an edited mapping to show: those of a file the edited text named as a code
    table, which no mapping in force uses as one, replaced by one saying so without its content
    (a key file beside the mappings is read as YAML there, and its problems would quote it)."""
    tables = {t.file for m in broker.catalogue.mappings.values() for t in m.tables.values()}
    kept: list[Problem] = []
    hidden: list[str] = []
    for p in exc.problems:
        if p.file is None or p.file == original.file or p.file in tables:
            kept.append(p)
        elif p.file not in hidden:
            hidden.append(p.file)
    unread = said(
        "not a code table; what it holds is not shown in the console, since no mapping in force "
        "uses this file as a code table and it could hold a secret"
    )
    return kept + [Problem(text=unread, file=file) for file in hidden]


async def _refused_keys(
    request: web.Request, broker: Broker, who: tuple[str, str], action: str, exc: ConfigError
) -> None:
    """An edited mapping that named field keys not bound to its partner, in the audit trail."""
    if isinstance(exc, UnboundKeys):
        await record(
            request,
            broker,
            who=who[0],
            role=who[1],
            action=f"refused:{action}",
            target=request.path,
            reason=f"field keys not bound to the partner: {', '.join(exc.refs)}",
            outcome="unbound-field-key",
        )


def _services(broker: Broker, language: str) -> list[tuple[str, str, str]]:
    """(partner, service code, its name in the viewer's language) of every mapping."""
    out = []
    for (pid, code), _m in sorted(broker.catalogue.mappings.items()):
        service = broker.catalogue.service(pid, code)
        name = (service.names.shown(language) if service and service.names else "") or code
        out.append((pid, code, name))
    return out


async def page(request: web.Request) -> web.Response:
    """The playground with the chosen service's mapping as it is on disk."""
    broker = request.config_dict[BROKER]
    await require(request, broker, "show")
    services = _services(broker, language_of(request))
    partner = request.query.get("partner") or (services[0][0] if services else "")
    service = request.query.get("service") or (services[0][1] if services else "")
    mapping = _mapping(broker, partner, service)
    text = await asyncio.to_thread(mapping.path.read_text, encoding="utf-8")
    return await _show(request, broker, partner, service, text, {}, None)


async def _show(
    request: web.Request,
    broker: Broker,
    partner: str,
    service: str,
    text: str,
    form: dict[str, str],
    outcome: Outcome | None,
    *,
    saved: str = "",
    status: int = 200,
) -> web.Response:
    mapping = _mapping(broker, partner, service)
    examples = await asyncio.to_thread(load_examples, mapping.path)
    return render(
        request,
        "playground.html",
        services=_services(broker, language_of(request)),
        partner=partner,
        service=service,
        file=mapping.file,
        text=text,
        examples=[e.file.name for e in examples],
        form=form,
        outcome=outcome,
        saved=saved,
        status=status,
    )


async def run(request: web.Request) -> web.Response:
    """Run the edited mapping against an example or a stored application (a reveal, audited)."""
    broker = request.config_dict[BROKER]
    form = await check_csrf(request, broker)
    exchange_id = form.get("exchange_id", "").strip()
    caller = await require(request, broker, "reveal" if exchange_id else "show")
    partner, service, text = form.get("partner", ""), form.get("service", ""), _text(form)
    original = _mapping(broker, partner, service)
    outcome = Outcome()
    language = language_of(request)
    if exchange_id and not form.get("reason", "").strip():
        await _refuse_unreasoned(request, broker, (caller.id, caller.role))
        _ = gettext_of(request)
        outcome.problems = [_("reading a stored exchange's application needs a reason")]
        return await _show(request, broker, partner, service, text, form, outcome, status=400)
    try:
        mapping = await asyncio.to_thread(compile_text, original, text, field_keys(broker, partner))
    except ConfigError as exc:
        await _refused_keys(request, broker, (caller.id, caller.role), "show", exc)
        outcome.problems = said_in(language, _problems(broker, original, exc))
        return await _show(request, broker, partner, service, text, form, outcome, status=422)
    # an edit by a user who may not reveal: it names no field key, and sees no stored data
    edited = not is_in_force(original, text)
    trusted = not edited or may(request, broker, caller, "reveal")
    if not trusted and (refs := keys_of(mapping)):
        named = await _refused_oracle(request, broker, caller, refs)
        outcome.problems = [say(language, _needs_reveal(named))]
        return await _show(request, broker, partner, service, text, form, outcome, status=403)
    application = await _application(request, broker, original, form, caller.id, caller.role)
    try:
        mapped, warnings = mapping.map_request_checked(application)
        outcome.request = _shown(mapped)
        outcome.warnings = said_in(language, warnings)
    except MappingError as exc:
        outcome.problems = said_in(language, exc.problems)
    if trusted:
        outcome.impact, read = await _impact(broker, mapping, partner, service)
        if edited:  # typed conditions tried on stored applications: a read of them, audited
            await _audited_impact(request, broker, caller, f"{partner}/{service}", read)
    else:
        outcome.warnings.append(say(language, IMPACT_NEEDS_REVEAL))
    return await _show(request, broker, partner, service, text, form, outcome)


async def _refuse_unreasoned(request: web.Request, broker: Broker, who: tuple[str, str]) -> None:
    """A stored application asked for without a reason: refused as the exchange page's reveal
    is (400), kept in the journal's refusals and the audit trail."""
    problem = ProblemError(400, "invalid-request", "revealing personal data needs a reason")
    await refuse(request, broker, problem, None, b"", 0)
    await audit_refusal(request, broker, who, "reveal", problem)


def _shown(mapped: dict[str, Any]) -> str:
    """The mapped request as the partner is sent it (dates and amounts as text, as_stored),
    indented, CJK as it is (as the exchange page shows a stored one)."""
    return json.dumps(as_stored(mapped), ensure_ascii=False, indent=2, sort_keys=True)


async def _application(
    request: web.Request,
    broker: Broker,
    original: CompiledMapping,
    form: dict[str, str],
    who: str,
    role: str,
) -> Any:
    exchange_id = form.get("exchange_id", "").strip()
    if exchange_id:
        ex = await broker.get(exchange_id) if EXCHANGE_ID_RE.fullmatch(exchange_id) else None
        if ex is None:
            raise ProblemError(404, "not-found", f"no exchange {exchange_id[:40]}")
        await record(
            request,
            broker,
            who=who,
            role=role,
            action="reveal",
            target=ex.id,
            reason=f"mapping playground: {form['reason'].strip()}",
        )
        return ex.application
    examples = await asyncio.to_thread(load_examples, original.path)
    chosen = [e for e in examples if e.file.name == form.get("example")]
    if not chosen:
        raise ProblemError(400, "invalid-request", "choose a golden example or an exchange")
    return chosen[0].application


async def _impact(
    broker: Broker, mapping: CompiledMapping, partner: str, service: str
) -> tuple[tuple[int, int, list[str]], list[str]]:
    """How many of the service's latest exchanges the edited mapping would map differently, and
    the ids of those it was tried on (read whole, their applications included)."""
    found = await broker.journal.search(Query(partner=partner, service=service, limit=IMPACT))
    latest = await views.whole(broker.journal, found)
    differ, sample = 0, []
    for ex in latest:
        paths = _differs(mapping, ex)
        if paths is None or paths:
            differ += 1
            sample += [p for p in paths or () if p not in sample][:3]
    return (len(latest), differ, sample[:10]), [ex.id for ex in latest]


# The reason an edited mapping's impact is audited with: fixed words, never what was typed.
IMPACT_READ = "mapping playground: impact of an edited mapping on the latest exchanges"


async def _audited_impact(
    request: web.Request, broker: Broker, caller: Caller, service: str, ids: list[str]
) -> None:
    """An edited mapping's impact, run by a user who may reveal, in the audit trail as a reveal
    of the exchanges it was tried on (its conditions tell what their applications hold): who,
    the partner's service and the exchange ids; never the edited text nor what the exchanges
    hold (``service``: a partner and service the catalogue has, not the form's words)."""
    await record(
        request,
        broker,
        who=caller.id,
        role=caller.role,
        action="reveal",
        target=f"{service}: {','.join(ids)}",
        reason=IMPACT_READ,
    )


def _differs(mapping: CompiledMapping, ex: Exchange) -> tuple[str, ...] | None:
    """Where the edited mapping maps the exchange (a follow-up with its supplement: section)
    otherwise than it was mapped; None when it cannot map it."""
    section = mapping.supplement if ex.supplement_of is not None else mapping.request
    if section is None:
        return None
    try:
        request, _w = section.apply_checked(ex.application)
    except MappingError:
        return None
    return views.changed_from(ex, request)


async def save(request: web.Request) -> web.Response:
    """Write the edited mapping and reload; put the old text back if the broker refuses it."""
    broker = request.config_dict[BROKER]
    form = await check_csrf(request, broker)
    caller = await require(request, broker, "reload")
    partner, service, text = form.get("partner", ""), form.get("service", ""), _text(form)
    original = _mapping(broker, partner, service)
    outcome = Outcome()
    try:
        await asyncio.to_thread(compile_text, original, text, field_keys(broker, partner))
    except ConfigError as exc:
        await _refused_keys(request, broker, (caller.id, caller.role), "reload", exc)
        outcome.problems = said_in(language_of(request), _problems(broker, original, exc))
        return await _show(request, broker, partner, service, text, form, outcome, status=422)
    before = await asyncio.to_thread(original.path.read_text, encoding="utf-8")
    await asyncio.to_thread(original.path.write_text, text, encoding="utf-8")
    try:
        await broker.reload()
    except ConfigError as exc:
        await asyncio.to_thread(original.path.write_text, before, encoding="utf-8")
        outcome.problems = said_in(language_of(request), exc.problems)
        await record(
            request,
            broker,
            who=caller.id,
            role=caller.role,
            action="reload",
            target=original.file,
            outcome="invalid-configuration",
        )
        return await _show(request, broker, partner, service, text, form, outcome, status=422)
    await record(
        request, broker, who=caller.id, role=caller.role, action="reload", target=original.file
    )
    return await _show(request, broker, partner, service, text, form, None, saved=original.file)


async def patch(request: web.Request) -> web.Response:
    """The edit as a unified diff against the file in force, for a deployment that keeps its
    configuration in version control (nothing is written)."""
    broker = request.config_dict[BROKER]
    form = await check_csrf(request, broker)
    await require(request, broker, "show")
    original = _mapping(broker, form.get("partner", ""), form.get("service", ""))
    before = await asyncio.to_thread(original.path.read_text, encoding="utf-8")
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        _text(form).replace("\r\n", "\n").splitlines(keepends=True),
        fromfile=f"a/{original.file}",
        tofile=f"b/{original.file}",
    )
    response = web.Response(text="".join(lines), content_type="text/x-diff")
    response.headers["Content-Disposition"] = f'attachment; filename="{original.path.stem}.patch"'
    return response
