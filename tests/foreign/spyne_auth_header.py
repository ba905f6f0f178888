"""Guangdong: a cross-province application service that authenticates with its own header, built
with spyne.

Many mainland government SOAP services declare their credentials as a header element of the WSDL
rather than WS-Security. This one, as its owner wrote it (pinyin names, document/literal wrapped,
SOAP 1.1, schema-validated by lxml)::

    <soap:Header>
      <AuthHeader xmlns="http://kstb.gdzwfw.gov.cn/ws/2026">
        <AppKey>…</AppKey>
        <AppSecret>…</AppSecret>
      </AuthHeader>
    </soap:Header>

One operation, ``TiJiaoShenQing(shenQing: ShenQing) -> HuiZhi``; the request number ``qqbh`` in the
body is the caller's idempotency key. The service checks the app key and secret itself: a missing or
wrong pair is the fault ``Client.RenZhengShiBai`` (authentication failed), and nothing is recorded
but the refusal in its log. The secret can be rotated while it runs (``rotate``). With
``echo=True`` its fault quotes the secret it received, as careless services do
(``AppSecret 'xyz' 错误``).

Use::

    with ShenQingFuWu(app_key="tongban-gz", app_secret="…") as fuwu:
        fuwu.save_wsdl(path)
        fuwu.read_log()   # [{"app_key": …, "app_secret": …, "qqbh": …, "jieguo": …, "slbh": …}]
"""

from __future__ import annotations

import threading
import urllib.request
import warnings
from pathlib import Path
from typing import Any

from tests.foreign.loopback import Loopback, wsgi_server

with warnings.catch_warnings():
    # spyne 2.14 imports the deprecated cgi module and installs six's legacy importer.
    warnings.filterwarnings("ignore", "'cgi' is deprecated", DeprecationWarning)
    warnings.filterwarnings("ignore", "_SixMetaPathImporter", ImportWarning)
    from spyne import Application, ComplexModel, ServiceBase, Unicode, rpc
    from spyne.model.fault import Fault
    from spyne.protocol.soap import Soap11
    from spyne.server.wsgi import WsgiApplication

NS = "http://kstb.gdzwfw.gov.cn/ws/2026"
PATH = "/ShenQingFuWu"


class AuthHeader(ComplexModel):  # type: ignore[misc]
    """The service's own credentials header."""

    __namespace__ = NS
    AppKey = Unicode(min_occurs=1, max_len=64)
    AppSecret = Unicode(min_occurs=1, max_len=128)


class ShenQing(ComplexModel):  # type: ignore[misc]
    """An application: the request number, the applicant's name and ID number, the item code."""

    __namespace__ = NS
    qqbh = Unicode(min_occurs=1, nillable=False, max_len=64)  # 请求编号
    sqrxm = Unicode(min_occurs=1, nillable=False, max_len=50)  # 申请人姓名
    sfzhm = Unicode(min_occurs=1, nillable=False, pattern=r"\d{17}[\dX]")  # 身份证号码
    sxbm = Unicode(min_occurs=1, nillable=False)  # 事项编码


class HuiZhi(ComplexModel):  # type: ignore[misc]
    """The receipt: the acceptance number (受理编号) and the state."""

    __namespace__ = NS
    slbh = Unicode
    zt = Unicode


class ShenQingFuWu:
    """The spyne service on 127.0.0.1 with a free port, served by wsgiref in a thread."""

    def __init__(self, *, app_key: str, app_secret: str, echo: bool = False) -> None:
        self.app_key, self.app_secret = app_key, app_secret
        self.echo = echo
        self.lock = threading.Lock()
        self.log: list[dict[str, Any]] = []
        self.huizhi: dict[str, dict[str, str]] = {}
        self.url = ""
        self._loop = Loopback()

    def rotate(self, app_secret: str) -> None:
        """From now on only ``app_secret`` is accepted."""
        with self.lock:
            self.app_secret = app_secret

    def tijiao(self, auth: AuthHeader | None, shenqing: ShenQing) -> dict[str, str]:
        """Decide one call: authenticate, then accept (once per request number); log it."""
        entry: dict[str, Any] = {
            "app_key": getattr(auth, "AppKey", None),
            "app_secret": getattr(auth, "AppSecret", None),
            "qqbh": shenqing.qqbh,
            "slbh": None,
        }
        with self.lock:
            if (entry["app_key"], entry["app_secret"]) != (self.app_key, self.app_secret):
                self.log.append({**entry, "jieguo": "renzheng_shibai"})
                if self.echo:
                    said = f"AppSecret '{entry['app_secret']}' 错误"
                    raise Fault("Client.RenZhengShiBai", said)
                raise Fault("Client.RenZhengShiBai", "AppKey 或 AppSecret 错误")
            huizhi = self.huizhi.setdefault(
                shenqing.qqbh, {"slbh": f"GD-KSTB-{len(self.huizhi) + 1:06d}", "zt": "YISHOULI"}
            )
            self.log.append({**entry, "jieguo": "shouli", "slbh": huizhi["slbh"]})
            return huizhi

    def application(self) -> Application:
        """The spyne application bound to this service's books."""
        fuwu = self

        class KuaShengTongBan(ServiceBase):  # type: ignore[misc]
            __in_header__ = AuthHeader

            @rpc(ShenQing, _returns=HuiZhi, _out_variable_name="huiZhi")  # type: ignore[untyped-decorator]
            def TiJiaoShenQing(ctx: Any, shenQing: ShenQing) -> HuiZhi:
                return HuiZhi(**fuwu.tijiao(ctx.in_header, shenQing))

        return Application(
            [KuaShengTongBan],
            tns=NS,
            name="ShenQingFuWu",
            in_protocol=Soap11(validator="lxml"),
            out_protocol=Soap11(),
        )

    def start(self) -> str:
        """Serve on a free loopback port; return the endpoint URL (its WSDL is at ``?wsdl``)."""
        port = self._loop.serve(wsgi_server(WsgiApplication(self.application())))
        self.url = f"http://127.0.0.1:{port}{PATH}"
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._loop.stop()

    def save_wsdl(self, path: Path) -> Path:
        """Save the WSDL spyne publishes to ``path`` (tongban never fetches one)."""
        with urllib.request.urlopen(f"{self.url}?wsdl", timeout=5) as answer:
            path.write_bytes(answer.read())
        return path

    def read_log(self) -> list[dict[str, Any]]:
        """Every call that reached the service, in order."""
        with self.lock:
            return [dict(entry) for entry in self.log]

    def __enter__(self) -> ShenQingFuWu:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
