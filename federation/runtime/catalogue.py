"""The catalogue: partners.yaml plus every mapping it names, loaded and checked as one unit.

The broker holds one Catalogue at a time and swaps it whole on reload, so an exchange always sees a
consistent pair of partner settings and mappings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from adapters.registry import protocol_spec, protocols
from federation.config import Config, Partner, Service, load_config
from federation.domain.errors import ConfigError, FederationError, Problem
from federation.domain.texts import N_, Text, said
from federation.mapping import CompiledMapping, load_mapping
from federation.mapping.examples import load_examples
from federation.mapping.schema import TargetSchema, check_mapping, check_tree, load_schema


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    config: Config
    mappings: Mapping[tuple[str, str], CompiledMapping]  # (partner, service) → mapping
    schemas: Mapping[tuple[str, str], TargetSchema] = field(default_factory=dict)
    warnings: tuple[Problem, ...] = ()

    def partner(self, partner_id: str) -> Partner | None:
        return self.config.partners.get(partner_id)

    def service(self, partner_id: str, service: str) -> Service | None:
        p = self.config.partners.get(partner_id)
        return p.services.get(service) if p else None

    def mapping(self, partner_id: str, service: str) -> CompiledMapping | None:
        return self.mappings.get((partner_id, service))

    def schema(self, partner_id: str, service: str) -> TargetSchema | None:
        return self.schemas.get((partner_id, service))

    def versions(self, partner_id: str, service: str) -> dict[str, str]:
        """Content hashes of every file mapping this service uses: mapping, code tables, schema."""
        mapping = self.mapping(partner_id, service)
        out = dict(mapping.versions) if mapping else {}
        schema = self.schema(partner_id, service)
        if schema is not None:
            out[schema.file] = schema.version
        return out


def load_catalogue(
    root: Path,
    *,
    endpoints: Mapping[str, str] | None = None,
    inbound_keys: Mapping[str, str] | None = None,
) -> Catalogue:
    """Load partners.yaml and all its mappings; ConfigError lists every problem in every file."""
    config = load_config(root, protocols())
    if endpoints:
        config = config.with_endpoints(endpoints)
    if inbound_keys:
        config = config.with_inbound_keys(inbound_keys)
    problems: list[Problem] = list(config.warnings)
    mappings: dict[tuple[str, str], CompiledMapping] = {}
    cache: dict[Path, CompiledMapping] = {}
    schemas: dict[tuple[str, str], TargetSchema] = {}
    schemas_seen: dict[Path, TargetSchema] = {}
    for partner in config.partners.values():
        for service in partner.services.values():
            display = _display(service.mapping, config.root)
            try:
                compiled = cache.get(service.mapping) or load_mapping(
                    service.mapping, display=display
                )
            except ConfigError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
                continue
            if service.mapping not in cache:  # a file two services use warns once
                problems.extend(w for w in compiled.warnings if w not in problems)
            cache[service.mapping] = compiled
            problems.extend(_declared(compiled, partner, service, display))
            mappings[(partner.id, service.code)] = compiled
            problems.extend(_check_protocol_tree(partner, service.code, compiled))
            if service.schema is not None:
                schema = _schema(service.schema, config.root, problems, schemas_seen)
                if schema is not None:
                    schemas[(partner.id, service.code)] = schema
                    problems.extend(_check_against(schema, compiled))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ConfigError(problems)
    return Catalogue(config=config, mappings=mappings, schemas=schemas, warnings=tuple(problems))


def _declared(
    compiled: CompiledMapping, partner: Partner, service: Service, display: str
) -> list[Problem]:
    """A mapping that declares a partner or service other than the one partners.yaml uses it for."""
    out: list[Problem] = []
    for declared, actual, what in (
        (compiled.partner, service.inbound_from or partner.id, "partner"),
        (compiled.service, service.code, "service"),
    ):
        if declared is not None and declared != actual:
            text = said(
                "mapping declares %(what)s %(declared)r but partners.yaml uses it "
                "for %(partner)s / %(service)s",
                what=what,
                declared=declared,
                partner=partner.id,
                service=service.code,
            )
            out.append(Problem(text=text, path=what, file=display, line=1))
    return out


# What a service item's settings ask of its mapping's sections, when the mapping lacks them.
NOT_POLLABLE = N_(
    "polled (poll_every), but its mapping %(file)s has no status: section to read the answers with"
)
NO_OPERATION = N_(
    "%(partner)s / %(code)s names no %(key)s in partners.yaml: nothing would send what the "
    "%(section)s: section writes"
)
NO_SECTION = N_(
    "calls %(name)s for %(kind)s requests, but its mapping %(file)s has no %(section)s: section "
    "to write its input"
)

# A mapping's sections and the request kind each one writes.
SECTIONS = (("request", "application"), ("status_query", "status"), ("supplement", "supplement"))


def _check_protocol_tree(partner: Partner, code: str, mapping: CompiledMapping) -> list[Problem]:
    """Each section's targets against the protocol's own description of the request it writes
    (a SOAP operation's input), and the sections that polling or supplements need."""
    spec = protocol_spec(partner.protocol)
    options = partner.services[code].options.get(partner.protocol)
    problems: list[Problem] = []
    service = partner.services[code]
    if getattr(options, "poll_every", None) is not None and mapping.status is None:
        problems.append(_at_service(service, said(NOT_POLLABLE, file=mapping.file)))
    for section, kind in SECTIONS:
        written = getattr(mapping, section)
        try:
            tree = spec.target_tree(partner, code, kind)
        except FederationError as exc:  # the WSDL itself: once, not once per section
            problems.append(Problem(message=str(exc), file=mapping.file))
            break
        if tree is None:
            if written is not None and kind != "application" and partner.protocol == "soap":
                key = "supplement_operation" if kind == "supplement" else "status_operation"
                text = said(NO_OPERATION, partner=partner.id, code=code, key=key, section=section)
                line = written.specs[0].line if written.specs else None
                problems.append(Problem(text=text, path=section, file=mapping.file, line=line))
            continue
        name, paths, required = tree
        if written is None:
            text = said(NO_SECTION, name=name, kind=kind, file=mapping.file, section=section)
            problems.append(_at_service(service, text))
            continue
        what = said("the input of %(partner)s operation %(name)s", partner=partner.id, name=name)
        problems.extend(check_tree(mapping, paths, required, what=what, section=section))
    return problems + _check_headers(partner, code, mapping)


def _check_headers(partner: Partner, code: str, mapping: CompiledMapping) -> list[Problem]:
    """The mapping's headers: section against the SOAP header parts of the item's operation, and
    each required header part that neither partners.yaml nor the mapping fills."""
    try:
        tree = protocol_spec(partner.protocol).target_tree(partner, code, "headers")
    except FederationError:
        return []  # the WSDL itself: reported with the request section
    written = mapping.headers
    if tree is None:
        if written is None:
            return []
        return [
            Problem(
                text=said(
                    "%(partner)s / %(code)s: the operation declares no SOAP header parts (or the "
                    "partner is not SOAP): nothing would send what the headers: section writes",
                    partner=partner.id,
                    code=code,
                ),
                path="headers",
                file=mapping.file,
                line=written.specs[0].line if written.specs else None,
            )
        ]
    name, paths, required = tree
    what = said("the SOAP headers of %(partner)s operation %(name)s", partner=partner.id, name=name)
    if written is not None:
        return check_tree(mapping, paths, required, what=what, section="headers")
    service = partner.services[code]
    return [
        _at_service(
            service,
            said(
                "operation %(name)s requires the SOAP header %(need)r, which nothing fills: write "
                "it in the headers: section of %(file)s, or give it in soap: headers: (or "
                "idempotency:) of the partner",
                name=name,
                need=need,
                file=mapping.file,
            ),
        )
        for need in sorted(required)
        if not any(need.startswith(other + ".") for other in required)
    ]


def _at_service(service: Service, message: Text) -> Problem:
    """A problem with a service item's settings, at the item in partners.yaml."""
    where = service.declared
    if where is None:
        return Problem(text=said("%(code)s: %(problem)s", code=service.code, problem=message))
    return replace(where, message=str(message), text=message)


def _schema(
    path: Path, root: Path, problems: list[Problem], seen: dict[Path, TargetSchema]
) -> TargetSchema | None:
    if path in seen:
        return seen[path]
    try:
        seen[path] = load_schema(path, display=_display(path, root))
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    return seen[path]


def _check_against(schema: TargetSchema, mapping: CompiledMapping) -> list[Problem]:
    """The mapping's targets against the schema, and its golden examples' requests through it."""
    problems = check_mapping(schema, mapping)
    try:
        examples = load_examples(mapping.path)
    except ConfigError as exc:
        return problems + list(exc.problems)
    for ex in examples:
        if ex.expected is not None:
            shown = str(Path(mapping.file).parent / ex.file.parent.name / ex.file.name)
            problems += schema.problems(ex.expected, file=shown)
    return problems


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)
