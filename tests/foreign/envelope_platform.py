"""A mainland provincial open platform (福建省政务服务开放平台 style), simulated.

Written the way such platforms are: every answer is HTTP 200 with an envelope
``{"code": 0, "msg": "ok", "data": {...}}``, JSON fields in camelCase, the caller's request
serial number in its own header. The business outcome lives in ``code`` only, so a client that
trusts the HTTP status records refusals as deliveries. The published interface is
``INTERFACE_DOC`` below.

Use::

    platform = EnvelopePlatform(busy_first=2)
    base_url = await platform.start()          # http://127.0.0.1:<port>
    ...POST base_url + SUBMIT_PATH...
    platform.read_log()                        # [{"requestId": ..., "code": ..., ...}, ...]
    await platform.stop()

or ``async with EnvelopePlatform() as platform: ...`` (``platform.base_url`` is then set).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.typedefs import Handler

SUBMIT_PATH = "/api/v2/gov/apply/submit"
REQUEST_ID_HEADER = "X-Request-Id"
APP_ID_HEADER = "X-App-Id"

INTERFACE_DOC = """\
# 政务服务申报提交接口 v2 (Application submission, open platform v2)

POST /api/v2/gov/apply/submit
Content-Type: application/json;charset=UTF-8

## Request headers
| header       | required | meaning                                                      |
|--------------|----------|--------------------------------------------------------------|
| X-App-Id     | yes      | application id issued by the platform                        |
| X-Request-Id | yes      | caller's serial number, ≤64 chars; the idempotency key       |

## Request body (camelCase)
| field         | type   | required | meaning                                              |
|---------------|--------|----------|------------------------------------------------------|
| itemCode      | string | yes      | 事项编码 (service item code)                          |
| applicantName | string | yes      | 申请人姓名, exactly as on the document                |
| certType      | string | yes      | 证件类型: 111 居民身份证 (checked), 516 回乡证, 414 护照 |
| certNo        | string | yes      | 证件号码; for 111 the ISO 7064 MOD 11-2 check is applied |
| regionCode    | string | yes      | 12-digit administrative division code                |
| mobile        | string | no       | +86 mobile number                                    |
| materials     | array  | no       | [{"name": ..., "fileId": ...}]                       |

## Answer: always HTTP 200
{"code": 0, "msg": "ok", "data": {"acceptNo": "FJ20260314000001", "requestId": "...",
 "acceptTime": "2026-03-14 09:30:00", "duplicate": false}}

| code | msg                          | kind      | caller should                            |
|------|------------------------------|-----------|------------------------------------------|
| 0    | ok                           | success   | keep data.acceptNo                       |
| 1001 | 身份证号码校验失败             | permanent | fix the ID number                        |
| 1002 | 缺少必填字段: <field>          | permanent | send the field (data.field names it)     |
| 1003 | 请求流水号缺失                 | permanent | send X-Request-Id                        |
| 1004 | 请求报文格式错误               | permanent | send a JSON object                       |
| 1005 | 请求流水号重复且报文不一致      | permanent | a new serial number for a new application|
| 4010 | 应用未授权                     | permanent | check X-App-Id                           |
| 4040 | 接口不存在                     | permanent | check the path                           |
| 5003 | 系统繁忙，请稍后再试            | transient | retry later with the SAME X-Request-Id   |

## Idempotency
A repeated X-Request-Id with the same body answers code 0 with the acceptNo of the first
acceptance and data.duplicate = true; no second application is created.
"""

MSG = {
    0: "ok",
    1001: "身份证号码校验失败",
    1002: "缺少必填字段",
    1003: "请求流水号缺失",
    1004: "请求报文格式错误",
    1005: "请求流水号重复且报文不一致",
    4010: "应用未授权",
    4040: "接口不存在",
    5003: "系统繁忙，请稍后再试",
}
REQUIRED = ("itemCode", "applicantName", "certType", "certNo", "regionCode")
RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RIC_CHECK = "10X98765432"
TZ = ZoneInfo("Asia/Shanghai")


def ric_is_valid(number: str) -> bool:
    """The mainland ID card check (ISO 7064 MOD 11-2) on an 18-character number."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], RIC_WEIGHTS, strict=True))
    return RIC_CHECK[total % 11] == number[17]


class Refusal(Exception):
    """A business answer other than 0: the envelope's code, message and data."""

    def __init__(self, code: int, msg: str | None = None, data: dict[str, Any] | None = None):
        super().__init__(code)
        self.code, self.msg, self.data = code, msg or MSG[code], data


@dataclass
class Ledger:
    """The platform's own books: accepted applications, busy counters, and the call log."""

    busy_first: int
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    busy_seen: dict[str, int] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    serial: int = 0

    def accept(self, request_id: str, digest: str, body: dict[str, Any]) -> dict[str, Any]:
        """Record a new application under its request id and return the answer data."""
        self.serial += 1
        now = datetime.now(TZ)
        data = {
            "acceptNo": f"FJ{now:%Y%m%d}{self.serial:06d}",
            "requestId": request_id,
            "acceptTime": f"{now:%Y-%m-%d %H:%M:%S}",
            "itemCode": body["itemCode"],
        }
        self.accepted[request_id] = {"digest": digest, "data": data}
        return data


LEDGER = web.AppKey("ledger", Ledger)
APP_ID = web.AppKey("app_id", str)


def envelope(code: int, msg: str, data: dict[str, Any] | None) -> web.Response:
    """The platform's only answer shape: HTTP 200 and the code/msg/data envelope."""
    body = json.dumps({"code": code, "msg": msg, "data": data}, ensure_ascii=False)
    return web.Response(text=body, content_type="application/json", charset="utf-8")


@web.middleware
async def always_200(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every outcome, errors included, leaves as HTTP 200 with a business code."""
    try:
        return await handler(request)
    except Refusal as refusal:
        return envelope(refusal.code, refusal.msg, refusal.data)
    except web.HTTPNotFound:
        return envelope(4040, MSG[4040], None)


class SubmitView(web.View):
    """POST /api/v2/gov/apply/submit."""

    async def post(self) -> web.Response:
        ledger = self.request.app[LEDGER]
        entry: dict[str, Any] = {"requestId": self.request.headers.get(REQUEST_ID_HEADER)}
        try:
            data = await self.submit(ledger, entry)
        except Refusal as refusal:
            entry.update(code=refusal.code, msg=refusal.msg, acceptNo=None, record=None)
            ledger.log.append(entry)
            raise
        entry.update(code=0, msg="ok", acceptNo=data["acceptNo"])
        ledger.log.append(entry)
        return envelope(0, "ok", {**data, "duplicate": entry["record"] == "repeat"})

    async def submit(self, ledger: Ledger, entry: dict[str, Any]) -> dict[str, Any]:
        """Check the call, then accept it once per request id."""
        if self.request.headers.get(APP_ID_HEADER) != self.request.app[APP_ID]:
            raise Refusal(4010)
        request_id = (entry["requestId"] or "").strip()
        if not request_id or len(request_id) > 64:
            raise Refusal(1003)
        raw = await self.request.read()
        body = parse_body(raw)
        validate(body)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if request_id in ledger.accepted:
            known = ledger.accepted[request_id]
            if known["digest"] != digest:
                raise Refusal(1005)
            entry["record"] = "repeat"
            return dict(known["data"])
        seen = ledger.busy_seen.get(request_id, 0)
        if seen < ledger.busy_first:
            ledger.busy_seen[request_id] = seen + 1
            raise Refusal(5003)
        entry["record"] = "new"
        return ledger.accept(request_id, digest, body)


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of the request, or refusal 1004."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refusal(1004) from exc
    if not isinstance(body, dict):
        raise Refusal(1004)
    return body


def validate(body: dict[str, Any]) -> None:
    """Required fields first (1002), then the ID card check for certType 111 (1001)."""
    for name in REQUIRED:
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise Refusal(1002, f"{MSG[1002]}: {name}", {"field": name})
    if body["certType"] == "111" and not ric_is_valid(body["certNo"]):
        raise Refusal(1001, data={"field": "certNo"})


class EnvelopePlatform:
    """The platform on 127.0.0.1 with a free port; its ledger is its log."""

    def __init__(self, *, busy_first: int = 0, app_id: str = "fj-open-tongban") -> None:
        self.app_id = app_id
        self.ledger = Ledger(busy_first=busy_first)
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Serve on a free loopback port; return the base URL."""
        app = web.Application(middlewares=[always_200])
        app[LEDGER] = self.ledger
        app[APP_ID] = self.app_id
        app.router.add_view(SUBMIT_PATH, SubmitView)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Close the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def read_log(self) -> list[dict[str, Any]]:
        """Every call in order: requestId, code, msg, acceptNo, record ('new'/'repeat'/None)."""
        return [dict(entry) for entry in self.ledger.log]

    def records(self) -> list[dict[str, Any]]:
        """The applications the platform holds, one per accepted request id."""
        return [dict(known["data"]) for known in self.ledger.accepted.values()]

    async def __aenter__(self) -> EnvelopePlatform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
