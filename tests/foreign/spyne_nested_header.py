"""Macau: the cross-border requests service of an identification office, built with spyne.

A SOAP 1.1 service (document/literal wrapped, schema-validated by lxml) with Portuguese names, as
its owner wrote it. Its idempotency key is NOT a top-level header element: it sits inside a
header block,

    <soap:Header>
      <Cabecalho xmlns="urn:mo:gov:dsi:pedidos:2026">
        <ChaveIdempotencia>…</ChaveIdempotencia>
        <Remetente>…</Remetente>
      </Cabecalho>
    </soap:Header>

One operation, ``SubmeterPedido(pedido: Pedido) -> Recibo``. spyne publishes the WSDL at
``<url>?wsdl``; ``save_wsdl`` keeps a copy on disk, as an operator would.

Use::

    servico = ServicoPedidosMacau(indisponivel_primeiras=1)
    url = servico.start()            # http://127.0.0.1:<port>/ServicoPedidos
    servico.save_wsdl(tmp_path / "pedidos.wsdl")
    servico.read_log()               # [{"chave": …, "remetente": …, "resultado": …}, …]
    servico.stop()

Faults (SOAP 1.1 faultcode, as spyne writes it, prefixed ``soap11env:``):

| faultcode                            | kind      | when                                          |
|--------------------------------------|-----------|-----------------------------------------------|
| Client.ChaveIdempotenciaEmFalta      | permanent | Cabecalho/ChaveIdempotencia missing or empty   |
| Client.SchemaValidationError         | permanent | the request breaks the WSDL's schema (spyne)  |
| Client.RequerenteMenor               | permanent | the applicant is under 18 on the day received |
| Client.BIRCancelado                  | permanent | the BIR number has been cancelled             |
| Server.IndisponivelTemporariamente   | transient | first N calls of a key; retry with the SAME key|

A repeated ChaveIdempotencia answers the receipt of its first acceptance; no second record.
"""

from __future__ import annotations

import datetime as dt
import threading
import urllib.request
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.foreign.loopback import Loopback, wsgi_server

with warnings.catch_warnings():
    # spyne 2.14 imports the deprecated cgi module and installs six's legacy importer.
    warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
    warnings.filterwarnings("ignore", "_SixMetaPathImporter", ImportWarning)
    from spyne import Application, ComplexModel, Date, DateTime, ServiceBase, Unicode, rpc
    from spyne.model.fault import Fault
    from spyne.protocol.soap import Soap11
    from spyne.server.wsgi import WsgiApplication

NS = "urn:mo:gov:dsi:pedidos:2026"
PATH = "/ServicoPedidos"
BIR_PATTERN = r"[157]\d{6}\(?\d\)?"  # XSD patterns are anchored: ^[157]\d{6}\(?\d\)?$
FREGUESIAS = (
    "Nossa Senhora de Fátima",
    "Santo António",
    "São Lázaro",
    "Sé",
    "São Lourenço",
    "Nossa Senhora do Carmo",
    "São Francisco Xavier",
)
TIPOS = ("AUTORIZACAO_RESIDENCIA", "CERTIDAO_REGISTO", "RENOVACAO_BIR")
MACAU = ZoneInfo("Asia/Macau")


class Cabecalho(ComplexModel):  # type: ignore[misc]
    """The header block: the idempotency key and the sending system."""

    __namespace__ = NS
    ChaveIdempotencia = Unicode(max_len=64)
    Remetente = Unicode(max_len=100)


class Pedido(ComplexModel):  # type: ignore[misc]
    """One request of a Macau resident."""

    __namespace__ = NS
    numeroBIR = Unicode(pattern=BIR_PATTERN, min_occurs=1, nillable=False)
    nome = Unicode(min_len=1, max_len=100, min_occurs=1, nillable=False)
    dataNascimento = Date(min_occurs=1, nillable=False)
    tipoServico = Unicode(values=TIPOS, min_occurs=1, nillable=False)
    freguesia = Unicode(values=FREGUESIAS)
    telefone = Unicode(pattern=r"\+853\d{8}")


class Recibo(ComplexModel):  # type: ignore[misc]
    """The receipt: the office's number for the request and when it was received."""

    __namespace__ = NS
    numeroRecibo = Unicode
    estado = Unicode
    dataRececao = DateTime
    chaveIdempotencia = Unicode


class Secretaria:
    """The office's books: receipts by key, unavailability counters and the call log."""

    def __init__(self, indisponivel_primeiras: int, bir_cancelados: Iterable[str]) -> None:
        self.indisponivel_primeiras = indisponivel_primeiras
        self.bir_cancelados = frozenset(bir_cancelados)
        self.recibos: dict[str, dict[str, Any]] = {}
        self.tentativas: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def submeter(self, cabecalho: Cabecalho | None, pedido: Pedido) -> dict[str, Any]:
        """Decide one call; log it; return the receipt fields or raise a Fault."""
        chave = (getattr(cabecalho, "ChaveIdempotencia", None) or "").strip()
        entrada: dict[str, Any] = {
            "chave": chave or None,
            "remetente": getattr(cabecalho, "Remetente", None),
            "recibo": None,
            "registo": None,
            "falha": None,
        }
        with self.lock:
            try:
                recibo = self._decidir(chave, pedido, entrada)
            except Fault as fault:
                entrada.update(resultado="recusado", falha=fault.faultcode)
                if fault.faultcode.startswith("Server."):
                    entrada["resultado"] = "indisponivel"
                self.log.append(entrada)
                raise
            entrada.update(resultado="aceite", recibo=recibo["numeroRecibo"])
            self.log.append(entrada)
            return recibo

    def recusa_previa(self, ctx: Any) -> None:
        """Log a request spyne refused before the service saw it (schema, malformed XML)."""
        if ctx.in_error is None:
            return
        cabecalho = ctx.in_header
        with self.lock:
            self.log.append(
                {
                    "chave": getattr(cabecalho, "ChaveIdempotencia", None),
                    "remetente": getattr(cabecalho, "Remetente", None),
                    "recibo": None,
                    "registo": None,
                    "falha": ctx.in_error.faultcode,
                    "resultado": "recusado",
                }
            )

    def _decidir(self, chave: str, pedido: Pedido, entrada: dict[str, Any]) -> dict[str, Any]:
        if not chave:
            raise Fault("Client.ChaveIdempotenciaEmFalta", "Falta Cabecalho/ChaveIdempotencia")
        if chave in self.recibos:
            entrada["registo"] = "repetido"
            return self.recibos[chave]
        vistas = self.tentativas.get(chave, 0)
        if vistas < self.indisponivel_primeiras:
            self.tentativas[chave] = vistas + 1
            raise Fault(
                "Server.IndisponivelTemporariamente", "Serviço temporariamente indisponível"
            )
        agora = dt.datetime.now(MACAU)
        if pedido.numeroBIR in self.bir_cancelados:
            raise Fault("Client.BIRCancelado", f"O BIR {pedido.numeroBIR} foi cancelado")
        if idade(pedido.dataNascimento, agora.date()) < 18:
            raise Fault("Client.RequerenteMenor", "O requerente é menor de idade")
        recibo = {
            "numeroRecibo": f"DSI-{agora:%Y}-{len(self.recibos) + 1:06d}",
            "estado": "RECEBIDO",
            "dataRececao": agora.replace(microsecond=0),
            "chaveIdempotencia": chave,
        }
        self.recibos[chave] = recibo
        entrada["registo"] = "novo"
        return recibo


def idade(nascimento: dt.date, hoje: dt.date) -> int:
    """Full years between a birth date and today."""
    return (
        hoje.year - nascimento.year - ((hoje.month, hoje.day) < (nascimento.month, nascimento.day))
    )


def build_application(secretaria: Secretaria) -> Application:
    """The spyne application bound to one office's books."""

    class ServicoPedidos(ServiceBase):  # type: ignore[misc]
        __in_header__ = Cabecalho

        @rpc(Pedido, _returns=Recibo, _out_variable_name="recibo")  # type: ignore[untyped-decorator]
        def SubmeterPedido(ctx: Any, pedido: Pedido) -> Recibo:
            return Recibo(**secretaria.submeter(ctx.in_header, pedido))

    return Application(
        [ServicoPedidos],
        tns=NS,
        name="ServicoPedidos",
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )


class ServicoPedidosMacau:
    """The spyne service on 127.0.0.1 with a free port, served by wsgiref in a thread."""

    def __init__(
        self,
        *,
        indisponivel_primeiras: int = 0,
        bir_cancelados: Iterable[str] = ("5123456(7)",),
    ) -> None:
        self.secretaria = Secretaria(indisponivel_primeiras, bir_cancelados)
        self.url = ""
        self._loop = Loopback()

    def start(self) -> str:
        """Serve on a free loopback port; return the endpoint URL (its WSDL is at ``?wsdl``)."""
        app = WsgiApplication(build_application(self.secretaria))
        app.event_manager.add_listener("wsgi_exception", self.secretaria.recusa_previa)
        self.url = f"http://127.0.0.1:{self._loop.serve(wsgi_server(app))}{PATH}"
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._loop.stop()

    def wsdl_text(self) -> str:
        """The WSDL spyne generates, fetched from the running service."""
        with urllib.request.urlopen(f"{self.url}?wsdl", timeout=5) as answer:
            return str(answer.read().decode("utf-8"))

    def save_wsdl(self, path: Path) -> Path:
        """Save the generated WSDL to ``path`` (for clients that must not fetch it)."""
        path.write_text(self.wsdl_text(), encoding="utf-8")
        return path

    def read_log(self) -> list[dict[str, Any]]:
        """Every call that reached the service, in order (keys in the office's Portuguese).

        chave, remetente, resultado ('aceite'/'recusado'/'indisponivel'), recibo,
        registo ('novo'/'repetido'/None), falha (the faultcode or None).
        """
        with self.secretaria.lock:
            return [dict(entrada) for entrada in self.secretaria.log]

    def __enter__(self) -> ServicoPedidosMacau:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
