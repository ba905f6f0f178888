"""Mapping files: load, validate and compile a declarative YAML mapping into plain callables.

A mapping file translates one local application into one partner's request (``request:``) and the
partner's reply into our receipt (``response:``)::

    mapping: 1
    partner: hk
    service: TD-VL-RENEW
    tables: {sex: tables/sex-hk.yaml}          # code tables, shared between mappings
    names: [applicant.name, applicant.name_en]  # a person's name: never script-converted
    allow: {uscc: [91350211M0000XUF46]}         # real codes that fail their check, accepted with a warning
    request:
      owner.name_en: {from: applicant.name_en, required: true}
      owner.hkid: {from: applicant.documents.hk_id_card.number, transform: {hkid: number}}
      owner.sex: {from: applicant.gender, transform: {table: sex}}
      channel: {value: TONGBAN}

A ``checks:`` section holds cross-field rules (:mod:`federation.mapping.checks`) that the request
runs on the application, refusing or warning before anything is sent.

A ``headers:`` section fills the SOAP header parts the partner's WSDL declares, in the same language;
it may also read the exchange (``from: exchange.attempt``: see :mod:`federation.config.headers`),
whose values exist only per attempt and so travel to the adapter as names, not values.

The language is documented in docs/mappings.md. Loading checks everything it can before any
application arrives (every problem with file:line); mapping an application collects every failing
field instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from federation.config.headers import EXCHANGE_KEY, EXCHANGE_VALUES, HEADERS_KEY
from federation.config.reader import Reader, written_inside
from federation.config.yamlsrc import Located, parse_yaml, read_source
from federation.domain.errors import ConfigError, MappingError, Problem
from federation.domain.models import content_hash
from federation.domain.paths import PathSyntaxError, parse_path
from federation.domain.texts import Text, quoted, said
from federation.mapping.checks import Check, parse_checks, run_checks
from federation.mapping.codegen import Compiler, SectionFn
from federation.mapping.spec import NOTHING, FieldSpec, SourcePath, SpecParser, Value
from federation.mapping.tables import CodeTable, load_table
from federation.mapping.transforms import Context
from federation.mapping.transforms.crypto import keys_in

FORMAT_VERSION = 1
ALLOW_KINDS = ("uscc",)


@dataclass(frozen=True, kw_only=True)
class Section:
    """A compiled ``request:`` or ``response:`` block."""

    name: str
    file: str
    fn: SectionFn
    fields: tuple[FieldSpec, ...]  # every field incl. those inside 'each', as problems index them
    specs: tuple[FieldSpec, ...] = ()  # the section's own fields, as written
    checks: tuple[Check, ...] = ()  # cross-field rules on the input (the request's checks:)

    def apply(self, data: Any) -> dict[str, Any]:
        """Map ``data``; raise MappingError naming every failing field."""
        return self.apply_checked(data)[0]

    def apply_checked(self, data: Any) -> tuple[dict[str, Any], list[Problem]]:
        """Map ``data``; returns the result and the warnings, or raises MappingError."""
        problems: list[Any] = []
        warnings: list[Any] = []
        out = self.fn(data, data, problems, warnings, "")
        found = run_checks(self.checks, data, self.file) if self.checks else None
        if problems or found:
            refused = [p for p in found or () if p.severity == "error"]
            if problems or refused:
                located = [self._problem(p, "error") for p in problems]
                raise MappingError([*located, *refused], mapping=self.file)
        # Two fields reading the same odd value would warn twice about it: once is enough.
        unique = {
            (w[1] + self.fields[w[0]].label, w[2]): w for w in warnings if isinstance(w, tuple)
        }
        kept = [self._problem(w, "warning") for w in unique.values()]
        return out, (kept + found) if found else kept  # found holds only warnings here

    def _problem(self, entry: tuple[Any, ...], severity: str) -> Problem:
        index, prefix, message = entry[:3]
        spec = self.fields[index]
        # a placeholder or alternative names the field it read (entry[3]); inside each, a $.x
        # field is named as the YAML reads, family[1].x rather than family[1].$.x
        label = entry[3] if len(entry) > 3 else spec.label.removeprefix("$.")
        # a Text (the engine's, a transform's or a check's template) is said in the reader's
        # language where it is shown; its English is the message
        text = message if isinstance(message, Text) else None
        return Problem(
            message=str(message),
            text=text,
            path=prefix + label,
            file=self.file,
            line=spec.line,
            severity=severity,
        )

    @property
    def targets(self) -> list[tuple[str, ...]]:
        """Every target path this section can write (each-items as ``name[]``)."""
        out: list[tuple[str, ...]] = []

        def walk(specs: tuple[FieldSpec, ...], prefix: tuple[str, ...]) -> None:
            for spec in specs:
                out.append(prefix + spec.target)
                if spec.value.kind == "each":
                    walk(spec.value.fields, (*prefix, *spec.target[:-1], spec.target[-1] + "[]"))

        walk(self.specs, ())
        return out


@dataclass(frozen=True, kw_only=True)
class CompiledMapping:
    """A validated mapping file, ready to map applications and replies."""

    file: str
    path: Path
    version: str
    partner: str | None
    service: str | None
    description: str
    request: Section
    response: Section | None
    status: Section | None = None  # a partner's status update → {lifecycle, at, note}
    supplement: Section | None = None  # correction-round material (补正) → the partner's follow-up
    status_query: Section | None = None  # how to ask a polled partner about one application
    headers: Section | None = None  # SOAP header values (also written by request, under @headers)
    report: Section | None = None  # our word on a filing → the partner's notice (report.py)
    tables: Mapping[str, CodeTable] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)  # every file it used → content hash
    # what loading it warned of (a field key's secret that cannot be read here, say): shown by
    # ``tongban check`` with partners.yaml's warnings
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    def map_request(self, application: Mapping[str, Any]) -> dict[str, Any]:
        """Local application → partner request."""
        return self.request.apply(application)

    def map_request_checked(
        self, application: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[Problem]]:
        """Local application → partner request and the warnings raised on the way."""
        return self.request.apply_checked(application)

    def map_status(self, update: Any) -> dict[str, Any] | None:
        """A partner's status update → ``{lifecycle, at, note, case_number}`` (None: no section)."""
        return self.status.apply(update) if self.status is not None else None

    def map_response(self, reply: Any) -> dict[str, Any] | None:
        """Partner reply → local receipt (``None`` when the mapping has no response section)."""
        return self.response.apply(reply) if self.response is not None else None


def load_mapping(
    path: Path, *, display: str | None = None, root: Path | None = None, keys: Path | None = None
) -> CompiledMapping:
    """Read, validate and compile one mapping file; ConfigError lists every problem with its line.

    ``root`` is the directory code-table paths are relative to (default: the mappings/ directory
    the file lives under, else the file's own directory). ``keys`` is the folder ``{file:…}`` field
    keys resolve against (default: the one the file really is in, whatever the working directory;
    ``display`` names the file for people and resolves nothing).
    """
    shown = display or str(path)
    raw, text = read_source(path, display=shown, what="mapping")
    doc = parse_yaml(text, display=shown)
    reader = Reader(doc)
    base = root or tables_root(path)
    with keys_in(keys or path.resolve().parent):
        compiled = _compile(reader, doc, path, content_hash(raw), base, shown)
    if not reader.ok or compiled is None:
        raise ConfigError(sorted(reader.problems, key=lambda p: (p.file or "", p.line or 0)))
    if reader.problems:  # warnings only, here
        return replace(compiled, warnings=tuple(reader.problems))
    return compiled


def tables_root(path: Path) -> Path:
    """The directory a mapping's code tables (and golden examples) are read from, and only from:
    the mappings/ directory the file lives under, else the file's own directory."""
    for parent in path.resolve().parents:
        if parent.name == "mappings":
            return parent
    return path.resolve().parent


# The sections, in the order they are parsed (and so the order of their problems); request is required.
_SECTIONS = ("request", "headers", "response", "status", "supplement", "status_query", "report")
_TOP_KEYS = (
    *("partner", "service", "description", "tables", "names", "allow", "checks"),
    *_SECTIONS[1:],
)


def _compile(
    r: Reader, doc: Located, path: Path, version: str, base: Path, shown: str
) -> CompiledMapping | None:
    top = r.mapping((), doc.data, required=("mapping", "request"), optional=_TOP_KEYS)
    if top is None:
        return None
    if type(top.get("mapping")) is not int or top.get("mapping") != FORMAT_VERSION:
        r.error(
            ("mapping",),
            said(
                "unsupported mapping format %(value)r; expected 1",
                value=quoted(top.get("mapping")),
            ),
        )
    partner = r.text(("partner",), top["partner"]) if "partner" in top else None
    service = r.text(("service",), top["service"]) if "service" in top else None
    tables = _tables(r, top.get("tables"), base, shown)
    parser = SpecParser(r, doc, _contexts(r, top, tables))
    specs = {
        name: parser.section((name,), top.get(name))
        for name in _SECTIONS
        if name == "request" or name in top
    }
    if specs.get("headers"):
        _check_exchange_reads(r, specs["headers"] or ())
    checks = parse_checks(r, doc, top["checks"]) if "checks" in top else ()
    if specs["request"] is None or checks is None or not r.ok:
        return None
    # The request section is compiled even when empty; an empty optional section is no section.
    sections = {
        name: _section(name, shown, fields)
        for name, fields in specs.items()
        if fields is not None and (fields or name == "request")
    }
    if "headers" in sections:
        sections["request"] = _with_headers(shown, specs["request"], specs["headers"] or ())
    if checks:
        sections["request"] = replace(sections["request"], checks=checks)
    return CompiledMapping(
        file=shown,
        path=path,
        version=version,
        partner=partner,
        service=service,
        description=str(top.get("description") or ""),
        request=sections["request"],
        response=sections.get("response"),
        status=sections.get("status"),
        supplement=sections.get("supplement"),
        status_query=sections.get("status_query"),
        headers=sections.get("headers"),
        report=sections.get("report"),
        tables=tables,
        versions={shown: version} | {t.file: t.version for t in tables.values()},
    )


def _contexts(
    r: Reader, top: dict[str, Any], tables: dict[str, CodeTable]
) -> Callable[[tuple[SourcePath, ...], str], Context]:
    """The transform context for a field, from the mapping's tables, ``names:`` and ``allow:``."""
    declared = top.get("tables")
    # tables whose file failed: already reported, so lookups in them add no "no code table" noise
    unloaded = (
        frozenset(declared) - frozenset(tables) if isinstance(declared, dict) else frozenset()
    )
    names = _names(r, top.get("names"))
    allow = _allow(r, top.get("allow"))

    def context(sources: tuple[SourcePath, ...], prefix: str) -> Context:
        is_name = any(_pattern(s, prefix) in names for s in sources)
        return Context(reader=r, tables=tables, allow=allow, is_name=is_name, unloaded=unloaded)

    return context


def _section(name: str, file: str, specs: tuple[FieldSpec, ...]) -> Section:
    fn, fields = Compiler(f"{file} {name}").compile(specs)
    return Section(name=name, file=file, fn=fn, fields=tuple(fields), specs=specs)


def _with_headers(
    file: str, request: tuple[FieldSpec, ...], headers: tuple[FieldSpec, ...]
) -> Section:
    """The request section writing the header values too: those from the application and
    constants under ``@headers``, and the names of exchange values under ``@exchange`` (the adapter
    fills those per message). Its ``specs`` stay the request's own (they describe the body)."""
    moved = []
    for spec in headers:
        name = _exchange_name(spec)
        if name is None:
            moved.append(replace(spec, target=(HEADERS_KEY, *spec.target)))
        else:
            value = Value(kind="value", constant=name)
            moved.append(replace(spec, target=(EXCHANGE_KEY, ".".join(spec.target)), value=value))
    fn, fields = Compiler(f"{file} request").compile((*request, *moved))
    return Section(name="request", file=file, fn=fn, fields=tuple(fields), specs=request)


def _exchange_name(spec: FieldSpec) -> str | None:
    """The exchange value a header field reads (``from: exchange.attempt`` → ``attempt``)."""
    sources = spec.value.paths
    for src in sources:
        if not src.root and src.segments and src.segments[0] == "exchange":
            return str(src.segments[1]) if len(src.segments) == 2 else ""
    return None


def _check_exchange_reads(r: Reader, specs: tuple[FieldSpec, ...]) -> None:
    """A header field reading ``exchange.<name>`` does so with ``from:`` alone: the value exists
    only when each message is sent, after the mapping has run."""
    known = ", ".join(f"exchange.{n}" for n in EXCHANGE_VALUES)
    for spec in specs:
        name = _exchange_name(spec)
        if name is None:
            continue
        where = ("headers", ".".join(spec.target))
        if name not in EXCHANGE_VALUES:
            r.error(
                where,
                said(
                    "no exchange value %(text)r; there are: %(known)s",
                    text=spec.value.paths[0].text,
                    known=known,
                ),
            )
        elif (
            spec.value.kind != "from"
            or spec.steps
            or spec.when
            or spec.required
            or _defaulted(spec)
        ):
            r.error(
                where,
                said(
                    "exchange.%(name)s is known only when each message is sent, after mapping: "
                    "take it with 'from:' alone (no format, concat, transform, when, required or "
                    "default)",
                    name=name,
                ),
            )


def _defaulted(spec: FieldSpec) -> bool:
    return spec.default is not NOTHING


def _tables(r: Reader, raw: Any, base: Path, shown: str) -> dict[str, CodeTable]:
    if raw is None:
        return {}
    m = r.mapping(("tables",), raw, extra_ok=True)
    out: dict[str, CodeTable] = {}
    for name, file in (m or {}).items():
        rel = r.text(("tables", name), file)
        if rel is None:
            continue
        target = _table_file(r, name, rel, base)
        if target is None:
            continue
        if not target.is_file():
            r.error(
                ("tables", name),
                said(
                    "code table file %(rel)r not found (looked in %(base)s)",
                    rel=rel,
                    base=str(base),
                ),
            )
            continue
        try:
            out[name] = load_table(target, name=name, display=_rel(target, base.parent))
        except ConfigError as exc:
            r.problems.extend(exc.problems)
    return out


def _table_file(r: Reader, name: str, rel: str, base: Path) -> Path | None:
    """The code table ``rel`` under ``base``, resolved for reading; None (and an error) when the
    name as written leads out of ``base`` (an absolute path, a ``..`` above it): a mapping names
    no file elsewhere (nor one typed in the console). A link the operator placed is followed."""
    written = written_inside(rel)
    if written is None:
        r.error(
            ("tables", name),
            said(
                "code table file %(rel)r is outside %(base)s, where code tables are read from",
                rel=rel,
                base=str(base),
            ),
        )
        return None
    try:
        return (base / written).resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL
        r.error(("tables", name), said("%(name)r cannot be resolved to a file", name=rel))
        return None


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _names(r: Reader, raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset()
    out = set()
    for i, item in enumerate(r.items(("names",), raw)):
        text = r.text(("names", i), item)
        if text is None:
            continue
        try:
            parse_path(text.replace("[]", "[0]").removeprefix("$."))
        except PathSyntaxError as exc:
            r.error(("names", i), said("bad field path: %(error)s", error=exc.text))
            continue
        out.add(text.removeprefix("$."))
    return frozenset(out)


def _pattern(src: SourcePath, prefix: str = "") -> str:
    """A source path with array indexes as ``[]``, as ``names:`` writes them.

    Inside ``each``, ``prefix`` is the array's own pattern (``household.members[]``), so an item's
    ``name`` is matched as ``household.members[].name``.
    """
    out = "" if src.root else prefix
    for seg in src.segments:
        out += "[]" if isinstance(seg, int) else (f".{seg}" if out else seg)
    return out


def _allow(r: Reader, raw: Any) -> dict[str, frozenset[str]]:
    if raw is None:
        return {}
    m = r.mapping(("allow",), raw, optional=ALLOW_KINDS)
    out: dict[str, frozenset[str]] = {}
    for kind, values in (m or {}).items():
        items = r.items(("allow", kind), values)
        out[kind] = frozenset(str(v).strip().upper() for v in items)
    return out
