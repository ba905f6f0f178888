"""The partner simulators answer a request body they cannot read or decode as the partner's server
would, never with a 500: the gateway's token endpoint says 400 ``invalid_request`` (RFC 6749 §5.2),
its guarded paths 400, the REST simulator 400 (a behaviour of the wrong shape 422), the SOAP
simulator a client fault (HTTP 500 in SOAP 1.1, as that version has every fault; 400 in 1.2).
Each one then serves the next request as before."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest

from adapters.registry import protocols
from federation.config import Config, load_config
from federation.sim.gateway import Gateway
from federation.sim.rest import PartnerSimulator
from federation.sim.soap import SoapPartnerSimulator
from tests.conftest import REPO

FORM = "application/x-www-form-urlencoded"
BASIC = {"Authorization": "Basic " + base64.b64encode(b"portal:client-secret-1").decode()}
NOT_GZIP = {"Content-Encoding": "gzip"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def shipped() -> Config:
    """The shipped catalogue: sc speaks REST, hk SOAP 1.1 and mo SOAP 1.2."""
    return load_config(REPO, protocols())


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that sends bodies as given (no Content-Type of its own)."""
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    """POST ``body`` as it is with ``headers``; the status and the answer's text."""
    async with http.post(url, data=body, headers=headers, skip_auto_headers=["Content-Type"]) as r:
        return r.status, await r.text()


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """A gateway with one OAuth client, listening on loopback."""
    gw = Gateway(oauth_clients={"portal": b"client-secret-1"})
    await gw.start()
    yield gw
    await gw.stop()


@pytest.mark.parametrize(
    ("body", "headers", "why"),
    [
        (b"grant_type=client_credentials&scope=\xff", {"Content-Type": FORM}, "not UTF-8"),
        (b"grant_type=client_credentials&scope=%ff", {"Content-Type": FORM}, "not UTF-8"),
        (b"grant_type=client%zzcredentials", {"Content-Type": FORM}, "two hex digits"),
        (b"grant_type=client_credentials", {"Content-Type": f"{FORM}; charset=nonesuch"}, "UTF-8"),
        (b'{"grant_type": "client_credentials"}', JSON, FORM),
        (b"--xx\r\nbroken", {"Content-Type": "multipart/form-data; boundary=xx"}, FORM),
        (b"grant_type=client_credentials", {"Content-Type": FORM, **NOT_GZIP}, "decompress"),
        (
            b"grant_type=client_credentials&grant_type=password",
            {"Content-Type": FORM},
            "more than once",
        ),
        (b"scope=all", {"Content-Type": FORM}, "grant_type"),
    ],
    ids=[
        "bytes-not-utf8",
        "escape-not-utf8",
        "bad-escape",
        "unknown-charset",
        "json",
        "broken-multipart",
        "not-gzip",
        "twice",
        "no-grant-type",
    ],
)
async def test_a_malformed_token_request_is_invalid_request(
    gateway: Gateway, http: aiohttp.ClientSession, body: bytes, headers: dict[str, str], why: str
) -> None:
    """A token request whose form cannot be read is 400 invalid_request saying why; the gateway
    then issues a token to a well-formed one."""
    status, text = await post(http, f"{gateway.url}/oauth/token", body, {**BASIC, **headers})
    assert status == 400, text
    assert '"error": "invalid_request"' in text and why in text
    good = b"grant_type=client_credentials"
    status, text = await post(
        http, f"{gateway.url}/oauth/token", good, {**BASIC, "Content-Type": FORM}
    )
    assert status == 200 and '"access_token"' in text


@pytest.mark.parametrize("guard", ["/signed/x", "/api/x", "/open/x"])
async def test_a_guarded_path_refuses_a_body_it_cannot_read(
    gateway: Gateway, http: aiohttp.ClientSession, guard: str
) -> None:
    """A body that does not decompress as its Content-Encoding says is 400, recorded empty with
    the verdict invalid_request."""
    status, text = await post(http, gateway.url + guard, b"not gzip", {**JSON, **NOT_GZIP})
    assert status == 400 and "invalid_request" in text
    assert [(a.path, a.verdict, a.body) for a in gateway.log] == [(guard, "invalid_request", b"")]


@pytest.fixture
async def rest(shipped: Config) -> AsyncIterator[PartnerSimulator]:
    """The sc simulator (REST) on loopback."""
    sim = PartnerSimulator(shipped.partners["sc"], seed=7)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/x/status", b'{"idempotency_key": ', JSON, 400),
        ("/x/status", b"\xff\xfe", JSON, 400),
        ("/x/status", b"{}", {**JSON, **NOT_GZIP}, 400),
        ("/x", b"{}", {**JSON, **NOT_GZIP, "Idempotency-Key": "k-1"}, 400),
        ("/_sim/behaviour", b"{nope", JSON, 400),
        ("/_sim/behaviour", b"\xff", JSON, 400),
        ("/_sim/behaviour", b"[1]", JSON, 422),
        ("/_sim/behaviour", b'{"fail_ratio": "all"}', JSON, 422),
        ("/_sim/behaviour", b'{"fail_status": 42}', JSON, 422),
        ("/_sim/behaviour", b'{"delay": true}', JSON, 422),
    ],
    ids=[
        "status-malformed",
        "status-not-utf8",
        "status-not-gzip",
        "filing-not-gzip",
        "behaviour-malformed",
        "behaviour-not-utf8",
        "behaviour-not-object",
        "behaviour-ratio-text",
        "behaviour-no-http-status",
        "behaviour-delay-boolean",
    ],
)
async def test_the_rest_simulator_answers_what_it_cannot_read(
    rest: PartnerSimulator,
    http: aiohttp.ClientSession,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    """400 (422 for a behaviour of the wrong shape, which leaves the behaviour as it was); the
    next filing is answered with a receipt."""
    got, text = await post(http, rest.url + path, body, headers)
    assert got == status, text
    assert rest.behaviour.fail_ratio == 0.0 and rest.behaviour.fail_status == 503
    filing = b'{"sqrxm": "x"}'
    got, text = await post(http, f"{rest.url}/x", filing, {**JSON, "Idempotency-Key": "k-2"})
    assert got == 200, text


@pytest.mark.parametrize(
    ("partner", "status", "code"), [("hk", 500, "Client"), ("mo", 400, "Sender")]
)
async def test_the_soap_simulator_faults_a_body_it_cannot_read(
    shipped: Config, http: aiohttp.ClientSession, partner: str, status: int, code: str
) -> None:
    """A body that does not decompress is a client fault of the partner's SOAP version (a 500
    in SOAP 1.1 carries the fault, not a crash); a malformed behaviour is 400, a wrong one 422."""
    sim = SoapPartnerSimulator(shipped.partners[partner], seed=7)
    await sim.start()
    try:
        xml = {"Content-Type": "text/xml; charset=utf-8", **NOT_GZIP}
        got, text = await post(http, f"{sim.url}/service", b"<not gzip/>", xml)
        assert (got, f"soap-env:{code}" in text) == (status, True), text
        assert "unreadable request: the body does not decompress" in text
        got, _text = await post(http, f"{sim.url}/_sim/behaviour", b"{nope", JSON)
        assert got == 400
        wrong = b'{"status_script": ["SL", 2]}'
        got, _text = await post(http, f"{sim.url}/_sim/behaviour", wrong, JSON)
        assert got == 422 and sim.behaviour.status_script is None
        got, _text = await post(http, f"{sim.url}/_sim/behaviour", b'{"delay": 0}', JSON)
        assert got == 200
    finally:
        await sim.stop()
