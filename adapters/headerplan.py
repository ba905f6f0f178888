"""What goes into one SOAP partner's headers, per operation: settings parsed, resolved, filled.

partners.yaml, under a partner's ``soap:``::

    headers:                                   # fixed header values, by path (see adapters.soapheaders)
      "{urn:mo:gov:dsi:pedidos:2026}Cabecalho/Remetente": TONGBAN-GD
      "{urn:x}AuthHeader/AppSecret": "{env:NAME}"  # a secret reference: read at every send
    idempotency: {header: "{urn:mo:gov:dsi:pedidos:2026}Cabecalho/ChaveIdempotencia"}
    # or {body: pedido/chave}; idempotency_header: "{ns}Name" still names a top-level element
    profile: xroad                             # with an xroad: section (adapters.xroad)

:class:`HeaderPlan` is one operation's resolution of those settings against its WSDL header parts;
:meth:`HeaderPlan.fill` turns an attempt's request into the body values and the header blocks.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from adapters.base import OutboundRequest
from adapters.body import Attr, BodyInvalid, Node
from adapters.headerfacets import Sources, ValueCheck, descend, value_check, wsdl_facets
from adapters.headerschema import TYPE, HeaderSchema, header_schema
from adapters.headervalues import SentCheck, check_written, once, sent_check, touched_paths
from adapters.soapheaders import (
    HeaderParts,
    HeaderPathError,
    KeyPath,
    body_path,
    dotted,
    leaves,
    merge,
    parse_steps,
    put,
    render,
    resolve,
)
from adapters.wsdl import Catalogue, Port, input_headers, input_tree
from adapters.xroad import (
    PER_MESSAGE,
    XRoadProfile,
    XRoadService,
    fixed_headers,
    parse_profile,
    parse_service,
)
from adapters.xsdtypes import BadValue
from federation.config.headers import EXCHANGE_KEY, HEADERS_KEY
from federation.config.reader import Reader
from federation.config.secrets import (
    SECRET_RE,
    SecretRef,
    literal_credential,
    parse_secret,
)
from federation.config.yamlsrc import PathKey
from federation.domain.texts import Text, said

PROFILES = ("xroad",)


@dataclass(frozen=True, kw_only=True)
class HeaderSettings:
    """A partner's header settings from partners.yaml, as written (paths resolved per operation)."""

    fixed: tuple[tuple[str, Any], ...] = ()  # soap: headers: path → value or SecretRef
    key_header: str | None = None  # idempotency: {header: path}
    key_body: str | None = None  # idempotency: {body: path}
    profile: XRoadProfile | None = None
    wsdl: Path | None = None  # the WSDL file, whose XML Schema the values are checked against
    root: Path | None = None  # the configuration directory: the WSDL's imports are read below it
    schemas: Catalogue = ()  # partners.yaml's schema catalogue: where imported schemas are

    @property
    def active(self) -> bool:
        """Whether anything beyond the legacy idempotency header is configured."""
        return bool(self.fixed or self.key_header or self.key_body or self.profile)


NO_SETTINGS = HeaderSettings()


def parse_settings(
    r: Reader, path: PathKey, m: Mapping[str, Any], base: Path = Path()
) -> HeaderSettings:
    """The header keys of a partner's ``soap:`` section: ``headers``, ``idempotency``,
    ``profile`` (with its ``xroad`` section); ``base``: where ``{file:…}`` references start."""
    fixed = _fixed(r, path, m.get("headers"), base)
    key_header, key_body = _idempotency(r, path, m)
    profile = None
    if "profile" in m:
        name = r.choice((*path, "profile"), m["profile"], PROFILES)
        if name == "xroad" and "xroad" not in m:
            r.error(
                (*path, "profile"), said("profile xroad needs an xroad: section (client, service)")
            )
        elif name == "xroad":
            profile = parse_profile(r, (*path, "xroad"), m["xroad"])
    elif "xroad" in m:
        r.error((*path, "xroad"), said("an xroad: section needs profile: xroad"))
    return HeaderSettings(
        fixed=tuple(fixed),
        key_header=key_header,
        key_body=key_body,
        profile=profile,
        wsdl=_wsdl_file(m.get("wsdl"), base),
        root=base.resolve(),
        schemas=tuple(sorted(r.schemas.items())),
    )


def _wsdl_file(name: Any, base: Path) -> Path | None:
    """The WSDL file ``soap: wsdl:`` names, if it is one under ``base`` (the adapter's spec
    reports it otherwise)."""
    if not isinstance(name, str):
        return None
    root = base.resolve()
    file = (root / name).resolve()
    return file if file.is_relative_to(root) and file.is_file() else None


def _fixed(r: Reader, path: PathKey, raw: Any, base: Path) -> list[tuple[str, Any]]:
    """``soap: headers:``: a literal, or a secret reference read at every send. An element or
    attribute that carries credentials (by its local name) takes a reference only."""
    fixed: list[tuple[str, Any]] = []
    block = r.mapping((*path, "headers"), raw, extra_ok=True) if raw is not None else None
    for key, value in (block or {}).items():
        where = (*path, "headers", key)
        try:
            local = parse_steps(str(key))[-1][1].lstrip("@")
        except HeaderPathError as exc:
            r.error(where, exc.text)
            continue
        if isinstance(value, dict | list) or value is None:
            r.error(
                where, said("a header value is text or a number; name each element by its path")
            )
            continue
        if isinstance(value, str) and SECRET_RE.fullmatch(value.strip()):
            value = parse_secret(r, where, value, base)  # warns if it cannot be read here
        elif literal_credential(r, where, local, soap=True):
            continue
        if value is not None:
            fixed.append((str(key), value))
    return fixed


def _idempotency(r: Reader, path: PathKey, m: Mapping[str, Any]) -> tuple[str | None, str | None]:
    key_header = key_body = None
    if "idempotency" in m:
        ipath = (*path, "idempotency")
        im = r.mapping(ipath, m["idempotency"], optional=("header", "body"))
        if im is not None and len(im) != 1:
            r.error(
                ipath, said("give exactly one of header: (a header path) or body: (a body path)")
            )
        elif im is not None:
            kind, text = next(iter(im.items()))
            value = r.text((*ipath, kind), text)
            if value is not None:
                try:
                    parse_steps(value)
                except HeaderPathError as exc:
                    r.error((*ipath, kind), exc.text)
                    value = None
            key_header, key_body = (value, None) if kind == "header" else (None, value)
        if "idempotency_header" in m:
            r.error(ipath, said("idempotency: replaces idempotency_header: give one of them"))
    return key_header, key_body


def xroad_item(r: Reader, path: PathKey, raw: Mapping[str, Any]) -> XRoadService | None:
    """A service item's ``xroad: {code, version}`` (checked against the profile at load)."""
    return parse_service(r, (*path, "xroad"), raw["xroad"]) if "xroad" in raw else None


class SecretUnfit(BodyInvalid):
    """Header values given by reference (``{env:…}``, ``{file:…}``) that their elements' XML
    Schema types or the WSDL's facets do not allow: our configuration's fault (a rotated secret of
    the wrong shape), not the application's, so the adapter holds the exchange (NotSent) rather
    than refusing it. The problems name the element, the reference and the facet, never a value."""


@dataclass(frozen=True, kw_only=True)
class HeaderPlan:
    """One operation's headers: the compiled parts, the fixed values, where the key goes."""

    parts: HeaderParts
    fixed: Mapping[str, Any] = field(default_factory=dict)
    key_header: KeyPath | None = None
    key_body: KeyPath | None = None
    per_message: tuple[tuple[KeyPath, str], ...] = ()  # (path, exchange value) set per message
    legacy: bool = True  # also write the idempotency_header element, as before
    secrets: tuple[tuple[KeyPath, SecretRef], ...] = ()  # soap: headers: given by reference
    checks: tuple[ValueCheck | None, ...] = ()  # each secret's type and facets, in that order
    sent: SentCheck | None = None  # the facets of the values known only at send (mapping's…)

    @property
    def plain(self) -> bool:
        """Nothing to fill but the idempotency_header element (the adapter's fast path)."""
        return self.legacy and not (
            self.fixed or self.per_message or self.key_header or self.secrets
        )

    def read_secrets(self) -> list[tuple[KeyPath, str]]:
        """The referenced header values, read now (a rotated secret applies to the next
        attempt); SecretError naming the reference, never the value, if one cannot be read."""
        return [(path, ref.read()) for path, ref in self.secrets]

    def fill(
        self,
        request: OutboundRequest,
        payload: Mapping[str, Any],
        secrets: Sequence[tuple[KeyPath, str]] | None = None,
    ) -> tuple[Mapping[str, Any], list[str]]:
        """The body values and the header blocks of one message; BodyInvalid naming bad paths.
        ``secrets``: from :meth:`read_secrets` (read here if not given)."""
        body, blocks, _ = self.filled(request, payload, secrets)
        return body, blocks

    def filled(
        self,
        request: OutboundRequest,
        payload: Mapping[str, Any],
        secrets: Sequence[tuple[KeyPath, str]] | None = None,
    ) -> tuple[Mapping[str, Any], list[str], list[str]]:
        """As :meth:`fill`, and the header blocks without the parts that carry a secret (a part
        carries one if a secret's path starts with its key): what a transcript digest may be of.
        Rendered from the same values, so the other blocks are those sent, byte for byte; a
        digest of the secret as written (escaped, or normalised by its type) would let anyone
        holding the journal test guesses offline."""
        body: dict[str, Any] = {
            k: v for k, v in payload.items() if k != HEADERS_KEY and k != EXCHANGE_KEY
        }
        values = dict(self.fixed)
        secrets = self.read_secrets() if secrets is None else secrets
        if self.checks:
            self._check(secrets)
        for path, secret in secrets:
            put(values, path, secret)
        touched: list[KeyPath] = []  # the values not checked at load: checked below
        mapped = payload.get(HEADERS_KEY)
        if isinstance(mapped, Mapping):
            values = merge(values, mapped)
            touched.extend(touched_paths(mapped))
        slots = payload.get(EXCHANGE_KEY)
        now: dict[str, Any] = {}
        for slot, name in slots.items() if isinstance(slots, Mapping) else ():
            touched.append(tuple(str(slot).split(".")))
            put(values, touched[-1], exchange_value(str(name), request, now))
        for path, name in self.per_message:
            put(values, path, exchange_value(name, request, now))
            touched.append(path)
        if self.key_header is not None:
            put(values, self.key_header, request.idempotency_key)
            touched.append(self.key_header)
        if self.key_body is not None:
            put(body, self.key_body, request.idempotency_key)
        try:
            blocks = render(self.parts, values) if values else []
        except BodyInvalid as exc:
            problems, ours = self._unquoted(exc.problems)
            raise (SecretUnfit if ours == len(problems) else BodyInvalid)(problems) from None
        if self.sent is not None and touched:
            secret_paths = [path for path, _ in self.secrets]
            broken = self.sent.problems(self.parts, values, touched, secret_paths)
            if broken:  # the request's fault: nothing is sent, the value is not quoted
                raise BodyInvalid(broken)
        if not self.secrets:
            return body, blocks, blocks
        tops = {path[0] for path, _ in self.secrets}
        rest = {k: v for k, v in values.items() if k not in tops}
        return body, blocks, render(self.parts, rest) if rest else []

    def _check(self, secrets: Sequence[tuple[KeyPath, str]]) -> None:
        """SecretUnfit if a secret's value is not one its element's XML Schema type allows (its
        built-in type or a facet of the WSDL's), naming the element, the reference and the
        facet, never the value: nothing is sent."""
        problems = []
        for (path, value), (own, ref), check in zip(
            secrets, self.secrets, self.checks, strict=False
        ):
            broken = check.broken(value) if check is not None and path == own else None
            if not broken:
                continue
            if broken == [TYPE]:
                problems.append(f"{dotted(path)}: the value of {ref} is not one its type allows")
            else:
                facets = ", ".join(f for f in broken if f != TYPE)
                problems.append(
                    f"{dotted(path)}: the value of {ref} breaks the WSDL's XML Schema facet {facets}"
                )
        if problems:
            raise SecretUnfit(problems)

    def _unquoted(self, problems: list[str]) -> tuple[list[str], int]:
        """Problems that never quote a secret: one about a referenced value names the reference
        only (a type's message may quote the value, or a cut of it); and how many are so."""
        out, ours = [], 0
        for problem in problems:
            hit = next(((p, ref) for p, ref in self.secrets if _about(problem, dotted(p))), None)
            if hit is not None:
                problem = f"{dotted(hit[0])}: the value of {hit[1]} is not one its type allows"
                ours += 1
            out.append(problem)
        return out, ours


def _about(problem: str, path: str) -> bool:
    return problem.startswith((path + ":", path + " ", path + "."))


def exchange_value(name: str, request: OutboundRequest, now: dict[str, Any]) -> Any:
    """An exchange value for a header (``exchange.<name>`` in a mapping), for this message."""
    if name == "id":
        return request.exchange_id
    if name == "idempotency_key":
        return request.idempotency_key
    if name == "attempt":
        return request.attempt
    if name == "attempt_time":
        if "time" not in now:
            now["time"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return now["time"]
    if name == "message_id":
        return str(uuid.uuid4())
    if name == "traceparent":  # for partners whose WSDL declares a header to carry it
        return request.traceparent or ""
    raise BadValue(f"no exchange value {name!r}")


def plan_for(
    settings: HeaderSettings,
    parts: HeaderParts,
    *,
    operation: str,
    body_paths: set[str],
    item: XRoadService | None = None,
) -> HeaderPlan:
    """Resolve the settings against one operation; HeaderPathError names the first path that
    fails. Fixed paths the operation does not declare are left out (another operation may)."""
    fixed: dict[str, Any] = {}
    per_message: tuple[tuple[KeyPath, str], ...] = ()
    if settings.profile is not None:
        for need in ("client", "service", "id", "protocolVersion"):
            if need not in parts.parts:
                raise HeaderPathError(
                    said(
                        "profile xroad: operation %(name)s declares no xrd:%(part)s header part "
                        "(X-Road WSDLs declare the headers as soap:header parts)",
                        name=operation,
                        part=need,
                    )
                )
        fixed = fixed_headers(settings.profile, item, operation)
        per_message = tuple(PER_MESSAGE.items())
    secrets: list[tuple[KeyPath, SecretRef]] = []
    facets = schemas_of(settings)
    for text, value in settings.fixed:
        try:
            keys = resolve(parts, text)
        except HeaderPathError:
            continue  # checked against the application operation at load (check_settings)
        if isinstance(value, SecretRef):
            secrets.append((keys, value))
        else:
            put(fixed, keys, value)
    key_header = resolve(parts, settings.key_header) if settings.key_header else None
    key_body = None
    if settings.key_body:
        from_body = tuple(name for _, name in parse_steps(settings.key_body))
        if ".".join(from_body) not in body_paths:
            raise HeaderPathError(
                said(
                    "operation %(name)s's input has no element %(path)s",
                    name=operation,
                    path="/".join(from_body),
                )
            )
        key_body = from_body
    return HeaderPlan(
        parts=parts,
        fixed=fixed,
        key_header=key_header,
        key_body=key_body,
        per_message=per_message,
        legacy=not (settings.key_header or settings.key_body),
        secrets=tuple(secrets),
        checks=tuple(value_check(facets, parts.parts[keys[0]], keys) for keys, _ in secrets),
        sent=sent_check(facets if isinstance(facets, HeaderSchema) else None, parts),
    )


def schemas_of(settings: HeaderSettings) -> Sources | None:
    """The schemas header values are checked against: the WSDL's with their imports, else (if
    those cannot be compiled together) the WSDL's own that lxml reads alone."""
    found = header_schema(settings.wsdl, settings.root, settings.schemas)
    return found if found is not None else wsdl_facets(settings.wsdl)


def filled_paths(plan: HeaderPlan, legacy_part: str | None) -> set[str]:
    """Dotted header paths the plan fills without the mapping (for the required-parts check)."""
    out = set(leaves(plan.fixed))
    out.update(".".join(p) for p, _ in plan.secrets)
    out.update(".".join(p) for p, _ in plan.per_message)
    if plan.key_header is not None:
        out.add(".".join(plan.key_header))
    if plan.legacy and legacy_part is not None:
        out.add(legacy_part)
    return out


def check_settings(
    r: Reader,
    partner: PathKey,
    port: Port,
    ops: Mapping[str, str],
    item: XRoadService | None,
    settings: HeaderSettings,
    legacy_raw: Any,
) -> None:
    """partners.yaml's header settings against one service item's operations (``ops``: kind →
    name), each problem once, at its line: a path the WSDL does not declare, a value of the wrong
    type, an idempotency key aimed at an element that holds elements."""
    soap = (*partner, "soap")
    facets = schemas_of(settings) if settings.fixed or settings.profile else None
    for kind, name in ops.items():
        parts = input_headers(port, name)
        if kind == "application":
            for text, value in settings.fixed:
                where = (*soap, "headers", text)
                _check_fixed(r, where, parts, name, (text, value), facets)
            _check_written(r, soap, parts, name, item, settings, facets)
        if settings.key_header:
            where = (*soap, "idempotency", "header")
            key = said("the idempotency key")
            _check_target(r, where, parts, name, settings.key_header, key)
        if settings.key_body:
            try:
                body_path(input_tree(port, name)[0], settings.key_body)
            except HeaderPathError as exc:
                once(r, (*soap, "idempotency", "body"), _of_operation(name, exc))
        if legacy_raw is not None and isinstance(legacy_raw, str):
            _check_legacy(r, (*soap, "idempotency_header"), parts, legacy_raw)


def _check_written(
    r: Reader,
    soap: PathKey,
    parts: HeaderParts,
    name: str,
    item: XRoadService | None,
    settings: HeaderSettings,
    facets: Sources | None,
) -> None:
    """The profile's values, and the literals the element-by-element check cannot judge, as
    they are written together into their header parts: against their built-in types always,
    and against the WSDL's schemas when those compile with their imports."""
    if settings.profile is None and not settings.fixed:
        return
    fixed = HeaderSettings(fixed=settings.fixed, profile=settings.profile)  # key: checked apart
    try:
        plan = plan_for(fixed, parts, operation=name, body_paths=set(), item=item)
    except HeaderPathError as exc:
        once(r, (*soap, "profile"), exc.text)
        return
    schema = facets if isinstance(facets, HeaderSchema) else None  # else: built-in types only
    given = (settings.fixed, settings.profile, item)
    check_written(r, soap, parts, plan.fixed, given, schema)


def _check_fixed(
    r: Reader,
    where: PathKey,
    parts: HeaderParts,
    op: str,
    item: tuple[str, Any],
    facets: Sources | None,
) -> None:
    """A fixed value against its element: its type, then the WSDL's facets for it (a secret's
    value is checked at every send, when it is read)."""
    text, value = item
    target = _check_target(r, where, parts, op, text, said("a fixed value"))
    if target is None or isinstance(value, SecretRef):
        return
    try:
        target.simple.write(value)  # type: ignore[union-attr]  # _check_target: simple or Attr
    except BadValue as exc:  # the value is not of the element's XML Schema type
        once(r, where, said("%(header)s: %(problem)s", header=text, problem=exc.text))
        return
    keys = resolve(parts, text)
    check = value_check(facets, parts.parts[keys[0]], keys)
    broken = check.broken(value) if check is not None else []
    if broken:
        once(
            r,
            where,
            said(
                "%(header)s: the value breaks the WSDL's XML Schema facet %(facets)s of %(path)s",
                header=text,
                facets=", ".join(broken),
                path=dotted(keys),
            ),
        )


def _check_target(
    r: Reader, where: PathKey, parts: HeaderParts, op: str, text: str, what: Text
) -> Node | Attr | None:
    """The element or attribute ``text`` names, if it can hold text; else a problem, and None."""
    try:
        keys = resolve(parts, text)
    except HeaderPathError as exc:
        once(r, where, _of_operation(op, exc))
        return None
    target = node_at(parts, keys)
    if isinstance(target, Node) and target.simple is None:
        inner = ", ".join(c.key for c in target.children) or "nothing"
        once(
            r,
            where,
            said(
                "%(path)s holds elements (%(inner)s), not text: %(what)s needs the path of an "
                "element inside it",
                path="/".join(keys),
                inner=inner,
                what=what,
            ),
        )
        return None
    return target


def _of_operation(name: str, exc: HeaderPathError) -> Text:
    """A header path's problem, said of the operation it was checked against."""
    return said("operation %(name)s: %(problem)s", name=name, problem=exc.text)


def _check_legacy(r: Reader, where: PathKey, parts: HeaderParts, name: str) -> None:
    """The original mistake: idempotency_header naming a header part that holds elements."""
    local = parts.tags.get(name)
    node = parts.parts.get(local) if local is not None else None
    if node is None or node.simple is not None:
        return
    inner = node.children[0].key if node.children else "Name"
    ns = etree.QName(name).namespace
    once(
        r,
        where,
        said(
            "%(part)s is a header part that holds elements (%(inner)s): the key would be its text "
            'and the partner would read nothing; name the element inside: idempotency: {header: "'
            '%(path)s"}',
            part=local,
            inner=", ".join(c.key for c in node.children) or "none",
            path=f"{{{ns}}}{local}/{inner}",
        ),
    )


def node_at(parts: HeaderParts, keys: KeyPath) -> Node | Attr | None:
    """The compiled element or attribute at a resolved path."""
    return descend(parts.parts.get(keys[0]), keys[1:])
