"""SOAP delivery speed: the broker's SoapAdapter against zeep's AsyncClient and raw aiohttp, same run.

All three post the Hong Kong vehicle-licence renewal of partners/wsdl/hk-td-vehicle-licensing.wsdl to
the same local SOAP endpoint: a separate process (pinned to its own CPU where there are two) that
reads each request whole and answers with one valid prebuilt reply, fast enough that the clients are
what is measured.

(a) ``SoapAdapter.send``: type-checked envelope from the compiled WSDL, idempotency header, aiohttp,
    bounded read, hardened parse, reply checked against the WSDL and turned into a dict.
(b) zeep's ``AsyncClient`` with its default transport (httpx), same WSDL, same header, parsed reply.
(c) raw aiohttp POSTing a prebuilt envelope and reading the reply bytes: the limit. Same session
    settings (pool size, explicit timeouts) and the same HTTP headers as the adapter's.

Each runs ``--rounds`` times, in rotating order, with the same concurrency; the median rate counts
(these machines are noisy: only a same-run comparison means anything).

    python bench/soap.py [--n 3000] [--concurrency 32] [--rounds 3]

Last line: ``RESULT name=soap vs_zeep_async=<a/b> vs_raw=<a/c> ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from adapters.registry import protocols

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WSDL = REPO / "partners" / "wsdl" / "hk-td-vehicle-licensing.wsdl"
NS = "urn:hk:gov:td:vehicle-licensing:2025"
ACTION = f"{NS}/RenewVehicleLicence"
PAYLOAD: dict[str, Any] = {
    "application_type": "VLR",
    "submission_channel": "GBA_SELF_SERVICE_KIOSK",
    "external_reference": "HKKIOSK-GZ01-20250428-0153",
    "application_date": "2025-04-28",
    "owner": {
        "name_en": "LEE, Wing Sun",
        "name_zh": "李永燊",
        "hkid": {"number": "K802133", "check_digit": "3"},
        "phone": "+85261937204",
        "email": "wingsun.lee@example.com",
    },
    "vehicle": {"registration_mark": "VK2318", "vehicle_class": "private_car"},
    "licence": {"period_months": 12, "current_expiry_date": "2025-05-14"},
    "insurance": {
        "insurer_name": "中國太平保險（香港）有限公司",
        "policy_number": "MTP2405118376",
        "expiry_date": "2026-05-13",
    },
    "payment": {"amount": "5794.00", "currency": "HKD"},
}
REPLY = (
    "<?xml version='1.0' encoding='utf-8'?>\n"
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    f'<soap:Body><td:VehicleLicenceRenewalResponse xmlns:td="{NS}">'
    "<td:ref_no>TD-VL-20250428-000153</td:ref_no><td:status>RECEIVED</td:status>"
    "<td:received_at>2025-04-28T10:15:00+08:00</td:received_at>"
    "<td:fee_payable>5794.00</td:fee_payable>"
    "<td:target_completion_date>2025-05-05</td:target_completion_date>"
    "</td:VehicleLicenceRenewalResponse></soap:Body></soap:Envelope>"
).encode()
PARTNERS_YAML = """\
version: 1
defaults:
  timeouts: {{connect: 3s, read: 30s, total: 60s}}
partners:
  - id: hk
    name: {{zh: 香港特別行政區政府運輸署, en: Transport Department}}
    region: {{code: "81", iso: CN-HK}}
    protocol: soap
    endpoint: {url}
    concurrency: {concurrency}
    soap:
      wsdl: {wsdl}
      idempotency_header: "{{{ns}}}RequestId"
    services:
      TD-VL-RENEW: {{mapping: mapping.yaml, operation: RenewVehicleLicence}}
"""


# -- the endpoint (a separate process) ------------------------------------------------------------


class _Endpoint(asyncio.Protocol):
    """HTTP/1.1 keep-alive: read a request head and its Content-Length body, send the reply."""

    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
        b"Content-Length: " + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.transport.write(self.RESPONSE)


def serve() -> None:
    _use_uvloop()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Endpoint, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


# -- the three clients ----------------------------------------------------------------------------


async def pump(call: Callable[[int], Awaitable[None]], n: int, concurrency: int) -> float:
    """Run ``call(i)`` for i < n, ``concurrency`` at a time; returns calls per second."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await call(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--python-gc",
        action="store_true",
        help="keep Python's collector settings (the bench before the broker's heap was settled)",
    )
    args = ap.parse_args()
    if importlib.util.find_spec("httpx") is None:
        raise SystemExit("zeep's AsyncClient (the baseline) needs httpx: pip install httpx")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = f"http://127.0.0.1:{server.stdout.readline().strip()}/gba-exchange/soap"
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    tmp = Path(tempfile.mkdtemp(prefix="tongban-bench-soap-"))
    try:
        _use_uvloop()  # as `tongban serve` does: the broker runs on uvloop
        rates = asyncio.run(measure(url, tmp, args))
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    median = {name: statistics.median(v) for name, v in rates.items()}
    for name, values in rates.items():
        shown = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:>11}: {median[name]:8,.0f} calls/s  (rounds: {shown})")
    a, b, c = median["adapter"], median["zeep_async"], median["raw"]
    print(
        f"RESULT name=soap vs_zeep_async={a / b:.2f} vs_raw={a / c:.2f} "
        f"adapter={a:.0f} zeep_async={b:.0f} raw={c:.0f} concurrency={args.concurrency}"
    )


async def measure(url: str, tmp: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Rates of the three clients, ``args.rounds`` each, in rotating order."""
    import aiohttp
    import zeep
    from zeep.proxy import AsyncServiceProxy

    from adapters.base import OutboundRequest
    from adapters.soap import SoapAdapter
    from federation.config import load_config
    from federation.runtime import heap

    shutil.copy(WSDL, tmp / WSDL.name)
    (tmp / "mapping.yaml").write_text("mapping: 1\n", encoding="utf-8")
    (tmp / "partners.yaml").write_text(
        PARTNERS_YAML.format(url=url, concurrency=args.concurrency, wsdl=WSDL.name, ns=NS),
        encoding="utf-8",
    )
    partner = load_config(tmp, protocols()).partners["hk"]
    adapter = SoapAdapter(partner)
    await adapter.start()

    async def broker(i: int) -> None:
        reply = await adapter.send(
            OutboundRequest(
                exchange_id=f"x{i}",
                idempotency_key=f"a{i}",
                service="TD-VL-RENEW",
                payload=PAYLOAD,
                attempt=1,
            )
        )
        assert reply.body["ref_no"] == "TD-VL-20250428-000153", reply

    client = zeep.AsyncClient(str(WSDL))  # its default AsyncTransport (httpx)
    # AsyncClient.create_service returns a sync proxy in zeep 4.3: bind the async one ourselves.
    binding = client.wsdl.bindings[f"{{{NS}}}VehicleLicensingSoap11"]
    service = AsyncServiceProxy(client, binding, address=url)

    async def zeep_async(i: int) -> None:
        result = await service.RenewVehicleLicence(_soapheaders={"request_id": f"z{i}"}, **PAYLOAD)
        assert result.ref_no == "TD-VL-20250428-000153"

    op = adapter._operations["TD-VL-RENEW", "application"]
    envelope = op.envelope.render(
        [f"<{op.header_name}>raw-key</{op.header_name}>"], op.input.write(PAYLOAD)
    )
    # The same HTTP headers the adapter sends: only the SOAP work differs.
    headers = {
        **op.version.http_headers(op.action),
        "X-Tongban-Exchange-Id": "x0",
        "X-Tongban-Attempt": "1",
    }
    # Session set up as the adapter's (pool, explicit timeouts): only the SOAP work differs.
    t = partner.timeouts
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=args.concurrency),
        timeout=aiohttp.ClientTimeout(total=t.total, connect=t.connect, sock_read=t.read),
    )

    async def raw(i: int) -> None:
        async with session.post(url, data=envelope, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200

    contenders: dict[str, tuple[Callable[[int], Awaitable[None]], int]] = {
        "adapter": (broker, args.n),
        "zeep_async": (zeep_async, max(200, args.n // 10)),  # ~10x slower: fewer calls
        "raw": (raw, args.n),
    }
    for call, n in contenders.values():  # warm up: connections, caches
        await pump(call, min(n, 300), args.concurrency)
    if not args.python_gc:
        heap.settle()  # as `tongban serve` does once it is ready (federation/runtime/heap.py)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(args.rounds):
        for name in names[r % 3 :] + names[: r % 3]:
            call, n = contenders[name]
            rates[name].append(await pump(call, n, args.concurrency))
    await session.close()
    await client.transport.aclose()
    await adapter.close()
    return rates


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
