"""WSDL files: loaded safely once, looked up by service, port and operation, compiled for sending.

A WSDL is a repository file named in partners.yaml. It is read with :class:`LocalWsdlTransport`
(local files under the configuration directory only, every file through the hardened parser) and
:data:`ZEEP_SETTINGS`, once per version of the files it is built from: the parsed document is cached
with the path, size and modification time of the WSDL and of every schema it imports or includes,
so ``tongban check``, the config loader and the adapter at start-up share one parse, and a reload
after any of those files is edited parses them again. Loading blocks:
callers run it in a thread (the config loader already does; the adapter uses ``asyncio.to_thread``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from lxml import etree  # type: ignore[import-untyped]
from zeep.exceptions import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from zeep.exceptions import Error as ZeepError
from zeep.helpers import serialize_object
from zeep.wsdl import Document
from zeep.wsdl.bindings.soap import Soap12Binding, SoapBinding
from zeep.xsd import ComplexType, Element
from zeep.xsd.context import XmlParserContext
from zeep.xsd.elements.indicators import Choice, Group, OrderIndicator

from adapters.body import Body, BodyInvalid, Prefixes, Unsupported, compile_element
from adapters.bodygen import CompiledBody
from adapters.envelope import SOAP11, SOAP12, Envelope, SoapVersion
from adapters.soapheaders import HeaderParts, compile_headers
from adapters.stamped import UNREADABLE, Stamp, StampedCache, stamp
from adapters.xmlsafe import (
    CATALOGUE_SETTINGS,
    ZEEP_SETTINGS,
    LocalWsdlTransport,
    UnresolvedImport,
    WsdlRefused,
)
from federation.config.recognised import Form, recognise
from federation.domain.texts import N_, Text, said

Catalogue = tuple[tuple[str, Path], ...]  # partners.yaml schemas: location or namespace → file
# one entry per WSDL, root and catalogue: the document, good while the files it was built from are
_cache: StampedCache[Any] = StampedCache(most=64)


class WsdlError(Exception):
    """A WSDL cannot be loaded, or lacks the service, port or operation asked for; ``text`` is
    the message as a template and its values, for the CLI to say in the reader's language."""

    def __init__(self, message: Text | str, *, key: str = "wsdl") -> None:
        super().__init__(str(message))
        self.text = message
        self.key = key  # the setting of the soap: section it is about (wsdl, service or port)


# What the hardened loader (adapters.xmlsafe) says of a file it refuses, recognised by kind; the
# file names, sizes and the XML parser's own words are kept as they are.
REFUSED_FORMS: tuple[Form, ...] = tuple(
    (template, re.compile(pattern, re.DOTALL))
    for template, pattern in (
        (
            N_("refusing to read %(path)s: it is outside %(root)s"),
            r"refusing to read (?P<path>.+): it is outside (?P<root>.+)",
        ),
        (N_("cannot read %(path)s: %(error)s"), r"cannot read (?P<path>.+?): (?P<error>.+)"),
        (
            N_("%(file)s: not well-formed XML: %(error)s"),
            r"(?P<file>[^:]+): not well-formed XML: (?P<error>.+)",
        ),
        (
            N_("%(file)s: unreadable XML: %(error)s"),
            r"(?P<file>[^:]+): unreadable XML: (?P<error>.+)",
        ),
        (
            N_("%(file)s: document type declarations are not accepted"),
            r"(?P<file>[^:]+): document type declarations are not accepted",
        ),
        (
            N_("%(file)s: document of %(size)s bytes is over %(limit)s"),
            r"(?P<file>[^:]+): document of (?P<size>[0-9]+) bytes is over (?P<limit>[0-9]+)",
        ),
        (
            N_("%(file)s: elements nested deeper than %(limit)s levels"),
            r"(?P<file>[^:]+): elements nested deeper than (?P<limit>[0-9]+) levels",
        ),
        (
            N_("%(file)s: a text node is longer than %(limit)s characters"),
            r"(?P<file>[^:]+): a text node is longer than (?P<limit>[0-9]+) characters",
        ),
        (
            N_("%(file)s: encoding %(name)s is not accepted (UTF-8 or UTF-16)"),
            r"(?P<file>[^:]+): encoding (?P<name>.+) is not accepted \(UTF-8 or UTF-16\)",
        ),
    )
)


def load_document(path: Path, root: Path, catalogue: Catalogue = ()) -> Any:
    """The zeep Document for ``path``, reading only files under ``root`` (network locations only
    through the schema ``catalogue``), parsed again only when the WSDL or a schema it imports or
    includes has changed; WsdlError if unusable."""
    resolved = path.resolve()
    own = stamp(resolved)  # taken before it is read: a change while it is read is seen next time
    if own[1] == UNREADABLE:
        try:
            resolved.stat()
        except OSError as exc:
            error = exc.strerror or str(exc)
            raise WsdlError(
                said("cannot read %(path)s: %(error)s", path=str(path), error=error)
            ) from exc
    key = (resolved, root.resolve(), catalogue)
    cached = _cache.get(key)
    if cached is not None:
        return cached[0]
    transport = LocalWsdlTransport(root, catalogue=dict(catalogue))
    try:
        document = _document(resolved, root, catalogue, transport=transport)
    except UnresolvedImport as exc:
        raise WsdlError(unresolved_message(resolved, root, catalogue, exc.url)) from exc
    except WsdlRefused as exc:
        raise WsdlError(recognise(str(exc), REFUSED_FORMS)) from exc
    except ExternalReferenceForbidden as exc:  # zeep's own check sometimes comes first
        raise WsdlError(unresolved_message(resolved, root, catalogue, str(exc.url))) from exc
    except (DTDForbidden, EntitiesForbidden) as exc:
        raise WsdlError(said("document type declarations are not accepted")) from exc
    except (ZeepError, etree.LxmlError, ValueError, LookupError, AttributeError, TypeError) as exc:
        # zeep reports a broken WSDL with many exception types; all mean "fix the file" (a
        # binding of a portType the file lacks is an IndexError, a missing message a KeyError).
        raise WsdlError(f"{type(exc).__name__}: {exc}") from exc
    _cache.put(key, _stamps(own, transport.loaded), document)
    return document


def _stamps(wsdl: Stamp, loaded: list[Path]) -> frozenset[Stamp]:
    """The WSDL's stamp (taken before it was read) and those of the other files the transport
    read, taken now (every read succeeded, or there would be no document); a file gone since is
    stamped with sizes no file has nor a missing one, so the next call parses again."""
    stamps = {wsdl}
    for file in set(loaded) - {wsdl[0]}:
        now = stamp(file)
        stamps.add(now if now[1] != UNREADABLE else (file, -2, -2))
    return frozenset(stamps)


def _document(
    path: Path,
    root: Path,
    catalogue: Catalogue,
    survey: list[str] | None = None,
    *,
    transport: LocalWsdlTransport | None = None,
) -> Any:
    if transport is None:
        transport = LocalWsdlTransport(root, catalogue=dict(catalogue), survey=survey)
    # Without a catalogue zeep's own check refuses network locations too: a second fence.
    settings = CATALOGUE_SETTINGS if catalogue or survey is not None else ZEEP_SETTINGS
    return Document(str(path), cast(Any, transport), settings=settings)


def unresolved_message(path: Path, root: Path, catalogue: Catalogue, first: str) -> Text:
    """Every network location the WSDL imports that the catalogue does not map, and the lines of
    partners.yaml that would map them (to files saved beside the WSDL)."""
    survey = [first]
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zeep warns of the parts the stand-in schemas lack
        _document(path, root, catalogue, survey)  # best effort: what it found so far is named
    try:
        folder = path.parent.relative_to(root.resolve()).as_posix()
    except ValueError:
        folder = "."
    lines = []
    for url in survey:
        name = Path(urlsplit(url).path).name or "schema.xsd"
        lines.append(f'  "{url}": {name if folder == "." else f"{folder}/{name}"}')
    return said(
        "the WSDL imports %(urls)s from the network, and tongban never fetches a schema: save "
        "each published file under the configuration directory and map its location in the "
        "top-level schemas: catalogue of partners.yaml, e.g.\nschemas:\n%(lines)s",
        urls=", ".join(survey),
        lines="\n".join(lines),
    )


@dataclass(frozen=True, kw_only=True)
class Port:
    """One SOAP port of a WSDL: its binding, SOAP version and operation names."""

    document: Any
    service: str
    name: str
    binding: Any
    version: SoapVersion
    operations: tuple[str, ...]


def find_port(document: Any, service: str | None, port: str | None) -> Port:
    """The port named (either name may be omitted when the WSDL has exactly one); WsdlError if not."""
    services = document.services
    if service is None:
        if len(services) != 1:
            raise WsdlError(
                said(
                    "the WSDL has %(count)d services; name one of: %(names)s",
                    count=len(services),
                    names=_names(services),
                ),
                key="service",
            )
        service = next(iter(services))
    if service not in services:
        raise WsdlError(
            said(
                "no service %(name)r in the WSDL; it has: %(names)s",
                name=service,
                names=_names(services),
            ),
            key="service",
        )
    ports = {n: p for n, p in services[service].ports.items() if isinstance(p.binding, SoapBinding)}
    if port is None:
        if len(ports) != 1:
            raise WsdlError(
                said(
                    "service %(service)r has %(count)d SOAP ports; name one of: %(names)s",
                    service=service,
                    count=len(ports),
                    names=_names(ports),
                ),
                key="port",
            )
        port = next(iter(ports))
    if port not in ports:
        raise WsdlError(
            said(
                "no SOAP port %(name)r in service %(service)r; it has: %(names)s",
                name=port,
                service=service,
                names=_names(ports),
            ),
            key="port",
        )
    binding = ports[port].binding
    return Port(
        document=document,
        service=service,
        name=port,
        binding=binding,
        version=SOAP12 if isinstance(binding, Soap12Binding) else SOAP11,
        operations=tuple(binding._operations),
    )


def _names(items: Mapping[str, Any]) -> Text | str:
    return ", ".join(sorted(items)) or said("(none)")


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One operation ready to send: action, envelope text around the body, input and output."""

    name: str
    action: str
    version: SoapVersion
    envelope: Envelope
    header_name: str  # the idempotency header's prefixed name, declared on the envelope
    input: Body
    output: Body | None
    compiled: bool  # False when zeep serialises this operation (types the compiler lacks)
    http_headers: Mapping[str, str]  # Content-Type (and SOAPAction for 1.1), fixed per operation
    headers: HeaderParts  # the header parts the binding declares for the input, compiled


def compile_operation(
    port: Port, name: str, *, action: str | None, header: etree.QName, version: SoapVersion
) -> Operation:
    """Compile operation ``name`` of ``port`` for sending with ``header`` (the idempotency key)."""
    op = port.binding.get(name)
    prefixes = Prefixes()
    bodies: list[Body | None] = []
    compiled = True
    for message in (op.input, op.output):
        if message is None or message.body is None:
            bodies.append(None)
            continue
        try:
            if message._is_body_wrapped or op.style == "rpc":
                raise Unsupported("several body parts or rpc style")
            root = compile_element(message.body, prefixes)
            bodies.append(CompiledBody(root, prefixes.nsmap))
        except Unsupported:
            compiled = False
            bodies.append(ZeepBody(message, ZEEP_SETTINGS))
    header_name = prefixes.name(header)
    headers = compile_headers(op.input, prefixes)
    if bodies[0] is None:
        raise WsdlError(said("operation %(name)r has no input message", name=name))
    action = action if action is not None else (op.soapaction or "")
    return Operation(
        name=name,
        action=action,
        http_headers=version.http_headers(action),
        version=version,
        envelope=Envelope(version, prefixes.nsmap),
        header_name=header_name,
        input=bodies[0],
        output=bodies[1],
        compiled=compiled,
        headers=headers,
    )


def input_headers(port: Port, name: str) -> HeaderParts:
    """The header parts of operation ``name``'s input, compiled (for checks; names only)."""
    return compile_headers(port.binding.get(name).input, Prefixes())


def input_tree(port: Port, name: str) -> tuple[set[str], set[str]]:
    """Dotted paths of the operation's input elements, and those required unconditionally.

    Paths are relative to the body element (the payload's keys): ``owner.hkid.number``. A path is
    required when it and every element above it have minOccurs ≥ 1 and no xs:choice lies between.
    """
    op = port.binding.get(name)
    paths: set[str] = set()
    required: set[str] = set()
    body = op.input.body if op.input is not None else None
    if body is not None:
        _walk_type(body.type, "", True, paths, required, 0)
    return paths, required


def _walk_type(
    xsd_type: Any, prefix: str, required: bool, paths: set[str], req: set[str], depth: int
) -> None:
    if not isinstance(xsd_type, ComplexType) or depth > 32:
        return
    for _, particle in xsd_type.elements_nested:
        _walk_particle(particle, prefix, required, paths, req, depth)


def _walk_particle(
    p: Any, prefix: str, required: bool, paths: set[str], req: set[str], depth: int
) -> None:
    if isinstance(p, Element):
        path = prefix + str(p.attr_name or p.name)
        paths.add(path)
        here = required and p.min_occurs > 0
        if here:
            req.add(path)
        _walk_type(p.type, path + ".", here, paths, req, depth + 1)
    elif isinstance(p, Group):
        _walk_particle(p.child, prefix, required and p.min_occurs > 0, paths, req, depth)
    elif isinstance(p, OrderIndicator):
        here = required and p.min_occurs > 0 and not isinstance(p, Choice)
        for item in p:
            _walk_particle(item, prefix, here, paths, req, depth)
    # xs:any has no path to map to.


class ZeepBody:
    """A body written and read by zeep itself, for types the compiler does not cover."""

    nsmap: Mapping[str, str] = {}

    def __init__(self, message: Any, settings: Any) -> None:
        self.message = message  # a zeep DocumentMessage / RpcMessage
        self.settings = settings
        body = message.body
        # several body parts go into the Body side by side: no one element starts the message
        wrapped = body is None or message._is_body_wrapped
        self.tag = "" if wrapped else etree.QName(body.qname).text

    def write(self, values: Mapping[str, Any]) -> str:
        try:
            envelope = self.message.serialize(**dict(values)).content
        except (ZeepError, TypeError, ValueError) as exc:
            path = ".".join(str(p) for p in getattr(exc, "path", []) or [])
            raise BodyInvalid([f"{path}: {exc}" if path else str(exc)]) from None
        body = envelope[-1]
        return "".join(etree.tostring(child, encoding="unicode") for child in body)

    def read(self, body: etree._Element, first: etree._Element | None) -> dict[str, Any]:
        message = self.message
        target = body if message._is_body_wrapped else first
        if target is None:
            raise BodyInvalid(["the SOAP Body is empty"])
        try:
            context = XmlParserContext(settings=self.settings)  # type: ignore[no-untyped-call]
            value = message.body.parse(target, message.wsdl.types, context=context)
        except (ZeepError, TypeError, ValueError) as exc:
            raise BodyInvalid([str(exc)]) from None
        data = json_safe(serialize_object(value, dict))  # type: ignore[no-untyped-call]
        return data if isinstance(data, dict) else {"value": data}


def json_safe(value: Any) -> Any:
    """zeep's Python values as JSON: Decimal, dates and times as strings, bytes as base64 text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, etree._Element):
        return etree.tostring(value, encoding="unicode")
    return value
