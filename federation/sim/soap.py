"""A SOAP partner simulator: a real aiohttp server on loopback that answers per the partner's WSDL.

The SOAP sibling of :mod:`federation.sim.rest`, with the same habits: requests are recorded by
idempotency key (read from the SOAP header element named in the partner's ``soap:`` section), a
repeated key is answered with the receipt given the first time, and behaviour can be changed at run
time (``POST /_sim/behaviour`` or the ``behaviour`` attribute): fail a share of requests with an HTTP
status or with a Client/Server fault, delay answers. Requests are parsed with the hardened parser and
checked against the WSDL's input types; a request that does not match gets a Client (1.2: Sender)
fault naming the bad elements, as a strict partner would. Replies follow the WSDL's output: fields a
region's dialect knows (reference number, status, dates) get realistic values, other required ones a
placeholder of their type.

The operations partners.yaml names as a service's ``status_operation`` and ``supplement_operation``
act on an application filed earlier, found by the case number the simulator gave it (any value of
the request equal to one; an unknown one gets a Client fault). A status query finds the
application one step further along the region's script (Hong Kong: PROCESSING, APPROVED,
LICENCE_ISSUED; Macao: EM_APRECIACAO, EMITIDO; ``status_script`` in the behaviour changes it); a
step asking for more material (Hong Kong's DOCUMENTS_REQUIRED) is repeated until a supplement for
the case arrives.

A status answer is dated (Hong Kong's ``updated_at``) when the case's status last changed, as a
real partner dates its record, not when the question came: asked twice about a state that did
not move, it answers the same time. Its other dates (received, target completion) are those of the
filing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from lxml import etree  # type: ignore[import-untyped]

from adapters import xmlsafe
from adapters.body import BodyInvalid, Node
from adapters.bodygen import CompiledBody
from adapters.envelope import SOAP11, VERSIONS, NotSoap, Opened, SoapVersion
from adapters.envelope import open_envelope as open_soap
from adapters.soap import wsdl_port
from adapters.soapoptions import SoapOptions
from adapters.wsdl import Operation, compile_operation
from adapters.xsdtypes import INTEGER_TYPES, escape
from federation.api.net import start_site
from federation.config import Partner
from federation.sim.bodies import Unreadable, behaviour_from, body_of, closing

SIM_LIMIT = 4 * 1024 * 1024


@dataclass
class SoapBehaviour:
    """What the simulator does with the next requests."""

    fail_ratio: float = 0.0  # share of requests that fail (before processing: nothing is kept)
    fail_status: int = 503  # HTTP status of such a failure, when ``fault`` is None
    fault: str | None = None  # "client" or "server": fail with that SOAP fault instead
    fault_string: str = "simulated fault"
    delay: float = 0.0  # seconds before answering (after processing, for successes)
    retry_after: int | None = None
    status_script: list[str] | None = None  # what status queries report, step by step
    status_at: str | None = None  # the time status answers give (None: when it last changed)
    # False: supplements are kept but not looked at yet, so a step asking for more material goes
    # on being reported, unchanged (a partner that has the material and has not processed it)
    reads_material: bool = True


@dataclass
class SoapSeen:
    """What the simulator received under one idempotency key."""

    key: str
    count: int
    first_body: dict[str, Any]
    receipt: dict[str, Any]
    operations: list[str] = field(default_factory=list)
    case: str | None = None  # the case number a filing was given, or the one a supplement named


@dataclass
class SoapCase:
    """An application filed with the simulator, as its status queries and supplements see it."""

    key: str  # the idempotency key it was filed with
    filed_at: dt.datetime  # when it was filed
    changed_at: dt.datetime  # when its status last changed (filing, or a query finding a step)
    shown: tuple[int, str] | None = None  # the script's step last reported (index, status)
    step: int = 0  # how far along the status script it is
    supplements: list[str] = field(default_factory=list)  # keys of the supplements received
    used: int = 0  # supplements already taken into account
    status_queries: int = 0


Dialect = Callable[[str, dt.datetime], dict[str, Any]]


def _hong_kong(case: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "ref_no": case,
        "status": "RECEIVED",
        "received_at": now.isoformat(timespec="seconds"),
        "updated_at": now.isoformat(timespec="seconds"),
        "target_completion_date": (now + dt.timedelta(days=7)).date().isoformat(),
    }


def _macau(case: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "numeroPedido": case,
        "estado": "RECEBIDO",
        "dataRecepcao": now.date().isoformat(),
        "dataPrevistaEmissao": (now + dt.timedelta(days=10)).date().isoformat(),
        # NotificarDecisao: the Macao exchange takes a notice of Guangdong's decision
        "codigoResultado": "0",
        "mensagem": "Notificação recebida",
    }


DIALECTS: dict[str, tuple[Dialect, str]] = {
    "CN-HK": (_hong_kong, "Asia/Hong_Kong"),
    "CN-MO": (_macau, "Asia/Macau"),
}


@dataclass(frozen=True)
class StatusScript:
    """How a region's status operation answers, step by step."""

    steps: tuple[str, ...]  # what successive questions find
    field: str  # the output element carrying the status
    correction: str = ""  # the step that waits for a supplement ("": the region has none)
    remarks_field: str = ""
    remark: str = ""  # what the correction step says is missing


STATUS_SCRIPTS: dict[str, StatusScript] = {
    "CN-HK": StatusScript(
        steps=("PROCESSING", "APPROVED", "LICENCE_ISSUED"),
        field="status",
        correction="DOCUMENTS_REQUIRED",
        remarks_field="remarks",
        remark="Cover note of third-party insurance for the new licence period required "
        "(INS_COVER)",
    ),
    # DSI never asks for more: it has no such state
    "CN-MO": StatusScript(steps=("EM_APRECIACAO", "EMITIDO"), field="estado"),
}
NO_SCRIPT = StatusScript(steps=("RECEIVED",), field="status")
_PLACEHOLDERS: dict[str, Callable[[str, dt.datetime], Any]] = {
    "xs:date": lambda case, now: now.date().isoformat(),
    "xs:dateTime": lambda case, now: now.isoformat(timespec="seconds"),
    "xs:time": lambda case, now: now.time().isoformat(timespec="seconds"),
    "xs:decimal": lambda case, now: "0.00",
    "xs:boolean": lambda case, now: False,
    "xs:double": lambda case, now: 0.0,
    "xs:float": lambda case, now: 0.0,
}


class _Fault(Exception):
    """A request the simulated partner answers with a SOAP fault (client or server)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class _Call:
    """One valid request: the operation, its values, its role and the case it names."""

    op: Operation
    values: Any
    role: str | None  # "status" | "supplement" | None (a filing)
    case: str | None


class SoapPartnerSimulator:
    """A loopback HTTP server standing in for one SOAP partner."""

    def __init__(
        self,
        partner: Partner,
        *,
        seed: int | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.partner = partner
        self.clock = clock  # the partner's clock (aware datetimes), read in the region's zone
        self.options: SoapOptions = partner.options["soap"]
        self.behaviour = SoapBehaviour()
        self.seen: dict[str, SoapSeen] = {}
        self.keys: list[str | None] = []  # the idempotency key of every request, failures too
        self.cases: dict[str, SoapCase] = {}  # by the case number given at filing
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        self._rng = random.Random(seed)
        self._dialect, zone = DIALECTS.get(partner.region.iso, (lambda c, n: {}, "Asia/Shanghai"))
        self._zone = ZoneInfo(zone)
        self._header = etree.QName(self.options.idempotency_header).text
        self._version: SoapVersion = SOAP11
        self._by_tag: dict[str, Operation] = {}
        self._roles: dict[str, str] = {}  # operation name → "status" | "supplement"
        for service in partner.services.values():
            svc = service.options.get("soap")
            for role in ("status", "supplement"):
                name = getattr(svc, f"{role}_operation", None)
                if name is not None:
                    self._roles[name] = role
        self._runner: web.AppRunner | None = None
        self._counter = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=SIM_LIMIT)
        app.router.add_get("/_sim/requests", self._requests)
        app.router.add_post("/_sim/behaviour", self._set_behaviour)
        app.router.add_post("/{tail:.*}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Load the WSDL (in a thread) and listen on ``host:port``; returns the base URL."""
        self._by_tag = await asyncio.to_thread(self._compile)
        self._runner, self.url = await start_site(self.app(), host, port, access_log=None)
        return self.url

    def ask_for_more_material(self) -> None:
        """Status queries first report the step asking for more material (补正), then go on."""
        script = STATUS_SCRIPTS.get(self.partner.region.iso, NO_SCRIPT)
        if script.correction:
            self.behaviour.status_script = [script.correction, *script.steps]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _compile(self) -> dict[str, Operation]:
        port = wsdl_port(self.options)
        self._version = VERSIONS[self.options.version]
        header = etree.QName(self._header)
        ops = [
            compile_operation(port, name, action=None, header=header, version=self._version)
            for name in port.operations
        ]
        return {op.input.tag: op for op in ops}

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            try:
                raw = await body_of(request)
            except Unreadable as exc:
                self.keys.append(None)
                return closing(self._fault("client", f"unreadable request: {exc}"))
            return await self._answer(raw)
        finally:
            self.in_flight -= 1

    async def _answer(self, raw: bytes) -> web.Response:
        b = self.behaviour
        try:
            opened, key = self._open(raw)
            if b.fail_ratio and self._rng.random() < b.fail_ratio:
                return await self._simulated_failure(b)
            call = self._call(opened, key)
            if call.role == "status" and call.case is not None:
                # A question, not a filing: answered afresh every time, whatever its key.
                if b.delay:
                    await asyncio.sleep(b.delay)
                status = self._advance(self.cases[call.case])
                return self._reply(call.op, self._receipt(call.op, case=call.case, status=status))
            seen = self._file(call, key)
        except _Fault as fault:
            return self._fault(fault.kind, fault.reason)
        if b.delay:
            # Processed, but the answer is late: what a caller's timeout cannot tell apart.
            await asyncio.sleep(b.delay)
        return self._reply(call.op, seen.receipt)

    def _open(self, raw: bytes) -> tuple[Opened, str | None]:
        """The request's envelope and its idempotency key (recorded, even when it is missing)."""
        try:
            opened = open_soap(xmlsafe.parse(raw, xmlsafe.REPLY_LIMITS))
        except (xmlsafe.XmlRefused, NotSoap) as exc:
            self.keys.append(None)
            raise _Fault("client", f"unreadable request: {exc}") from exc
        header = opened.header
        key_el = header.find(self._header) if header is not None else None
        key = (key_el.text or "").strip() if key_el is not None else None
        self.keys.append(key)
        return opened, key

    async def _simulated_failure(self, b: SoapBehaviour) -> web.Response:
        """A failure before processing, as the behaviour asks: a SOAP fault or an HTTP status."""
        if b.delay:
            await asyncio.sleep(b.delay)
        if b.fault:
            return self._fault(b.fault, b.fault_string)
        headers = {"Retry-After": str(b.retry_after)} if b.retry_after is not None else None
        return web.Response(text="simulated failure", status=b.fail_status, headers=headers)

    def _call(self, opened: Opened, key: str | None) -> _Call:
        """The operation a request calls, its values and the case it names; a fault if invalid."""
        if opened.version is not self._version:
            raise _Fault("client", f"this service speaks SOAP {self._version.name}")
        first = opened.first
        op = self._by_tag.get(first.tag) if first is not None else None
        if op is None:
            raise _Fault("client", "no operation of this service takes that body element")
        if not key:
            raise _Fault("client", f"header {self._header} is required")
        try:
            values = op.input.read(opened.body, first)
        except BodyInvalid as exc:
            raise _Fault("client", f"request does not match the WSDL: {exc}") from exc
        role = self._roles.get(op.name)
        case: str | None = None
        if role is not None:
            case = _case_named(values, self.cases)
            if case is None:
                raise _Fault("client", "no application with that reference number")
        return _Call(op=op, values=values, role=role, case=case)

    def _file(self, call: _Call, key: str | None) -> SoapSeen:
        """Keep a filing or a supplement once per key; a repeat only counts."""
        assert key  # _call refuses a request without one
        seen = self.seen.get(key)
        if seen is not None:
            seen.count += 1
            seen.operations.append(call.op.name)
            return seen
        case = call.case
        if case is None:  # a filing: a new case
            case = self._new_case()
            now = self._now()
            self.cases[case] = SoapCase(key=key, filed_at=now, changed_at=now)
        else:  # a supplement to the case it names
            self.cases[case].supplements.append(key)
        seen = SoapSeen(
            key=key,
            count=1,
            first_body=call.values,
            receipt=self._receipt(call.op, case=case),
            operations=[call.op.name],
            case=case,
        )
        self.seen[key] = seen
        return seen

    def _reply(self, op: Operation, values: dict[str, Any]) -> web.Response:
        assert op.output is not None
        text = op.envelope.render([], op.output.write(values))
        return web.Response(body=text, status=200, content_type=self._content_type())

    def _new_case(self) -> str:
        self._counter += 1
        return f"{self.partner.id.upper()}{self._now():%Y%m%d}{self._counter:06d}"

    def _now(self) -> dt.datetime:
        return self.clock().astimezone(self._zone)

    def _receipt(self, op: Operation, *, case: str, status: str | None = None) -> dict[str, Any]:
        """A filing's receipt (dated now), or a status answer about ``case`` (dated by the case:
        its filing, and when its status last changed)."""
        if not isinstance(op.output, CompiledBody):
            return {}
        if status is None:
            now = self._now()
            return _fill(op.output.root, self._dialect(case, now), case, now)
        filed = self.cases[case]
        now = filed.changed_at
        script = STATUS_SCRIPTS.get(self.partner.region.iso, NO_SCRIPT)
        known = {**self._dialect(case, filed.filed_at), script.field: status}
        if "updated_at" in known:
            known["updated_at"] = now.isoformat(timespec="seconds")
        if self.behaviour.status_at is not None:
            known["updated_at"] = self.behaviour.status_at
        if script.correction and status == script.correction:
            known[script.remarks_field] = [script.remark]
        return _fill(op.output.root, known, case, now)

    def _advance(self, case: SoapCase) -> str:
        """What a status query about ``case`` finds: the next step, or the same one while a
        request for more material is unanswered (or its material not read yet); a step other
        than the one reported last dates the case's status now."""
        case.status_queries += 1
        region = STATUS_SCRIPTS.get(self.partner.region.iso, NO_SCRIPT)
        correction = region.correction
        script = self.behaviour.status_script or list(region.steps)
        while True:
            at = min(case.step, len(script) - 1)
            code = script[at]
            if code != correction:
                case.step += 1
                break
            if len(case.supplements) <= case.used or not self.behaviour.reads_material:
                break  # still waiting for the material, or for someone to read it
            case.used = len(case.supplements)
            case.step += 1
        if case.shown != (at, code):
            case.shown = (at, code)
            case.changed_at = self._now()
        return code

    def _content_type(self) -> str:
        return "text/xml" if self._version is SOAP11 else "application/soap+xml"

    def _fault(self, kind: str, reason: str) -> web.Response:
        v = self._version
        if v is SOAP11:
            code = "soap-env:Client" if kind == "client" else "soap-env:Server"
            fault = (
                f"<soap-env:Fault><faultcode>{code}</faultcode>"
                f"<faultstring>{escape(reason)}</faultstring></soap-env:Fault>"
            )
            status = 500
        else:
            code = "soap-env:Sender" if kind == "client" else "soap-env:Receiver"
            fault = (
                f"<soap-env:Fault><soap-env:Code><soap-env:Value>{code}</soap-env:Value>"
                f'</soap-env:Code><soap-env:Reason><soap-env:Text xml:lang="en">{escape(reason)}'
                "</soap-env:Text></soap-env:Reason></soap-env:Fault>"
            )
            status = 400 if kind == "client" else 500
        text = (
            f'<?xml version="1.0" encoding="utf-8"?><soap-env:Envelope xmlns:soap-env="{v.ns}">'
            f"<soap-env:Body>{fault}</soap-env:Body></soap-env:Envelope>"
        )
        return web.Response(text=text, status=status, content_type=self._content_type())

    async def _requests(self, request: web.Request) -> web.Response:
        body = {
            "requests": self.requests,
            "max_in_flight": self.max_in_flight,
            "keys": {
                k: {"count": s.count, "operations": s.operations} for k, s in self.seen.items()
            },
        }
        return web.json_response(body)

    async def _set_behaviour(self, request: web.Request) -> web.Response:
        found = await behaviour_from(request, SoapBehaviour)
        if isinstance(found, web.Response):
            return found
        self.behaviour = found
        return web.json_response(asdict(self.behaviour))


def _case_named(values: Any, cases: dict[str, SoapCase]) -> str | None:
    """The first value anywhere in a request that is the case number of a filed application."""
    if isinstance(values, str):
        return values if values in cases else None
    if isinstance(values, dict):
        values = list(values.values())
    for value in values if isinstance(values, list) else ():
        if (found := _case_named(value, cases)) is not None:
            return found
    return None


def _fill(node: Node, known: dict[str, Any], case: str, now: dt.datetime) -> dict[str, Any]:
    """Values for ``node``'s children: the dialect's where it has them, placeholders if required."""
    out: dict[str, Any] = {}
    for child in node.children:
        if child.key in known:
            out[child.key] = known[child.key]
        elif not child.min_occurs:
            continue
        elif child.simple is None:
            out[child.key] = _fill(child, known, case, now)
        elif child.simple.name in _PLACEHOLDERS:
            out[child.key] = _PLACEHOLDERS[child.simple.name](case, now)
        elif child.simple.name.removeprefix("xs:") in INTEGER_TYPES:
            out[child.key] = 1  # valid for every integer type but the non-positive ones
        else:
            out[child.key] = case
        if child.many and not isinstance(out[child.key], list):
            out[child.key] = [out[child.key]]
    return out
