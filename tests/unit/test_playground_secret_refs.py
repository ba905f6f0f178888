"""A mapping edited in the console's playground names as field keys (``encrypt``/``decrypt``
``key:``) only the secret references its partner's mappings in force already name: any other is
refused at its line before it is read (the broker is no encryption oracle under another partner's
key, nor a probe of which files exist), audited, and said in the reader's language; the partner's
own keys stay usable. A file it names as a code table that no mapping in force uses is not quoted
when it does not read as one (a key file beside the mappings would be)."""

from __future__ import annotations

import html
import json
import re
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from federation.api.console.playground import compile_text
from federation.domain.errors import ConfigError
from federation.mapping import load_mapping
from replay.journal import Backend, TrailQuery
from tests.conftest import HK_MAPPING
from tests.integration.pg import JOURNALS, unopened_journal_of
from tests.integration.test_console_sessions import csrf_of
from tests.integration.test_roles import IDS, KEYS, with_principals

HK_KEY = "0123456789abcdeffedcba9876543210"
HK_EACH_KEY = "00112233445566778899aabbccddeeff"
HK_FILE_KEY = "ffeeddccbbaa99887766554433221100"
SC_KEY = "8f8e8d8c8b8a89888786858483828180"
# The hk mapping in force names three keys: one in a request field, one inside an 'each', one in
# a 'first' alternative of the response (a file, KEYFILE: its absolute path, as the test's working
# directory is not the configuration's); sc's mapping names its own.
HK_IN_FORCE = HK_MAPPING.replace(
    "  licence.period_months: {from: licence.period_months, default: 12}\n",
    """\
  licence.period_months: {from: licence.period_months, default: 12}
  owner.hkid_sealed:
    from: applicant.hkid
    transform: {encrypt: {cipher: sm4-gcm, key: "{env:TB_HK_FIELD_KEY}"}}
  documents:
    each: documents
    fields:
      number: {from: $.number, transform: {encrypt: {cipher: sm4-cbc, key: "{env:TB_HK_EACH_KEY}"}}}
""",
).replace(
    "  status: {from: status, required: true}\n",
    """\
  status: {from: status, required: true}
  note:
    first:
      - {from: sealed_note, transform: {decrypt: {cipher: sm4-gcm, key: "{file:KEYFILE}"}}}
      - plain_note
""",
)
SC_IN_FORCE = """\
mapping: 1
partner: sc
service: 115101000000000000-HF-WITHDRAW
request:
  sqrxm: {from: applicant.name, required: true}
  sfzhm: {from: applicant.id_number, transform: {encrypt: {cipher: sm4-gcm, key: "{env:TB_SC_FIELD_KEY}"}}}
  tqje: {from: withdrawal.amount, required: true}
"""
EXAMPLE = json.dumps(
    {
        "application": {
            "applicant": {"name_en": "CHAN, Tai Man", "hkid": "K802133(3)"},
            "vehicle": {"registration_mark": "AB1234"},
        },
        "expected_errors": [],
    }
)
SERVICE = {"partner": "hk", "service": "TD-VL-RENEW"}


def ecb(key: str, text: str) -> str:
    """What ``encrypt`` with sm4-ecb and hex writes for ``text`` under ``key``."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    enc = Cipher(algorithms.SM4(bytes.fromhex(key)), modes.ECB()).encryptor()
    return (enc.update(data) + enc.finalize()).hex()


def key_file(root: Path) -> Path:
    """The hk key file beside the mappings."""
    return root.resolve() / "mappings" / "keys" / "hk.key"


def in_force(root: Path) -> str:
    """The hk mapping in force in ``root``."""
    return HK_IN_FORCE.replace("KEYFILE", str(key_file(root)))


def probe(root: Path, key: str, target: str = "probe") -> str:
    """The hk mapping as in force, plus a field encrypting a constant under ``key``."""
    step = f'{{encrypt: {{cipher: sm4-ecb, key: "{key}", encoding: hex}}}}'
    return in_force(root).replace(
        "response:\n", f"  {target}: {{value: hello, transform: {step}}}\nresponse:\n"
    )


def probe_line(text: str, target: str = "probe") -> int:
    """The line of the probing field in ``text``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(f"  {target}:"))


@pytest.fixture
def config(make_config: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """hk and sc with field keys in force (variables and a file beside the mappings), a golden
    example for hk, and a viewer and an operator."""
    for name, value in {
        "TB_HK_FIELD_KEY": HK_KEY,
        "TB_HK_EACH_KEY": HK_EACH_KEY,
        "TB_SC_FIELD_KEY": SC_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    root = make_config(
        files={
            "mappings/hk-vl.examples/renewal.json": EXAMPLE,
            "mappings/keys/hk.key": HK_FILE_KEY + "\n",
        },
    )
    key_file(root).chmod(0o600)
    (root / "mappings" / "hk-vl.yaml").write_text(in_force(root), encoding="utf-8")
    (root / "mappings" / "sc-hf.yaml").write_text(SC_IN_FORCE, encoding="utf-8")
    return with_principals(root, ("viewer", "operator"))


async def signed_in(http: aiohttp.ClientSession, url: str, role: str) -> str:
    """Sign in with ``role``'s key; the playground's form token."""
    async with http.get(f"{url}/console/sign-in") as r:
        pre = re.search(r'name="pre" value="([^"]+)"', await r.text())
    assert pre is not None
    form = {"pre": pre.group(1), "key": KEYS[role], "next": "/console/"}
    async with http.post(f"{url}/console/sign-in", data=form, allow_redirects=False) as r:
        assert r.status == 303
    async with http.get(f"{url}/console/playground?partner=hk&service=TD-VL-RENEW") as r:
        assert r.status == 200
        return csrf_of(await r.text())


async def post(
    http: aiohttp.ClientSession, url: str, what: str, form: dict[str, str], language: str = "en"
) -> tuple[int, str]:
    """POST a playground form; its status and its page as text (entities decoded)."""
    headers = {"Accept-Language": language.replace("_", "-")}
    async with http.post(f"{url}/console/playground/{what}", data=form, headers=headers) as r:
        return r.status, html.unescape(await r.text())


def problems(page: str) -> list[str]:
    """The problems a playground page lists."""
    found = re.search(r'<ul id="problems">(.*?)</ul>', page, re.S)
    return re.findall(r"<code>(.*?)</code>", found.group(1), re.S) if found else []


@pytest.fixture(params=JOURNALS)
async def journal_of(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An unopened journal of each backend, for the broker to open."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


async def test_another_partners_key_is_refused_and_audited(
    config: Path, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """A viewer's edited hk mapping that encrypts a constant under sc's key is answered 422 with
    the refusal at the key's line, shows no ciphertext under that key, and is in the audit trail
    (each journal)."""
    sims = await simulators(config)
    async with broker_at(config, sims, journal_obj=journal_of) as (broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "viewer")
            text = probe(config, "{env:TB_SC_FIELD_KEY}")
            form = {"csrf": csrf, **SERVICE, "text": text, "example": "renewal.json"}
            status, page = await post(http, url, "run", form)
        entries = await broker.journal.trail(TrailQuery(who=IDS["viewer"]))
    assert status == 422
    assert ecb(SC_KEY, "hello") not in page and SC_KEY not in page
    assert problems(page) == [
        f"mappings/hk-vl.yaml:{probe_line(text)}: request.probe.transform.encrypt.key: "
        "field key {env:TB_SC_FIELD_KEY} is none of those this partner's mappings in force use "
        "({env:TB_HK_EACH_KEY}, {env:TB_HK_FIELD_KEY}, "
        f"{{file:{key_file(config)}}}), and a mapping edited "
        "in the console may name only those; a new key is added to the mapping file by a "
        "deployment of the configuration"
    ]
    refused = [e for e in entries if e.action == "refused:show"]
    assert len(refused) == 1
    assert refused[0].outcome == "unbound-field-key"
    assert refused[0].role == "viewer" and refused[0].target == "/console/playground/run"
    assert "{env:TB_SC_FIELD_KEY}" in refused[0].reason


async def test_any_file_is_refused_alike_and_never_read(
    config: Path, simulators: Any, broker_at: Any, tmp_path: Path
) -> None:
    """A key file that exists (owner-only or world-readable) and one that does not are refused
    with the same words: the answer says nothing of a file the partner's mappings do not name."""
    private = tmp_path / "private.key"
    private.write_text(SC_KEY, encoding="utf-8")
    private.chmod(0o600)
    public = tmp_path / "public.key"
    public.write_text(SC_KEY, encoding="utf-8")
    public.chmod(0o644)
    sims = await simulators(config)
    async with broker_at(config, sims) as (_broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "viewer")
            said = []
            around = (
                key_file(config).parent / ".." / "keys" / "hk.key"
            )  # in force, written otherwise
            for file in (private, public, tmp_path / "missing.key", around):
                form = {"csrf": csrf, **SERVICE, "text": probe(config, f"{{file:{file}}}")}
                status, page = await post(http, url, "run", form | {"example": "renewal.json"})
                assert status == 422
                said += [p.replace(str(file), "FILE") for p in problems(page)]
    assert len(said) == 4 and len(set(said)) == 1
    assert "{file:FILE} is none of those" in said[0]
    assert ecb(SC_KEY, "hello") not in page


async def test_the_partners_own_keys_stay_usable(
    config: Path, simulators: Any, broker_at: Any
) -> None:
    """Each key the hk mappings in force name (in a field, inside an 'each', in a response's
    'first' alternative) may be used by an edited mapping, which maps as it would once saved
    (run by an operator: a viewer, who may not reveal, may not run an edited mapping that names
    a field key at all, see test_playground_viewer)."""
    sims = await simulators(config)
    async with broker_at(config, sims) as (_broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "operator")
            for ref, key in (
                ("{env:TB_HK_FIELD_KEY}", HK_KEY),
                ("{env:TB_HK_EACH_KEY}", HK_EACH_KEY),
                (f"{{file:{key_file(config)}}}", HK_FILE_KEY),
            ):
                text = probe(config, ref)
                form = {"csrf": csrf, **SERVICE, "text": text, "example": "renewal.json"}
                status, page = await post(http, url, "run", form)
                assert (status, problems(page)) == (200, [])
                assert f'"probe": "{ecb(key, "hello")}"' in page


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("zh_Hans", "控制台中编辑的映射只能使用这些密钥"),
        ("zh_Hant", "控制台中編輯的映射只能使用這些密鑰"),
        ("en", "a mapping edited in the console may name only those"),
    ],
)
async def test_the_refusal_is_said_in_the_readers_language(
    config: Path, simulators: Any, broker_at: Any, language: str, words: str
) -> None:
    """The refusal is worded in the viewer's language, the reference as it was written."""
    sims = await simulators(config)
    async with broker_at(config, sims) as (_broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "viewer")
            form = {"csrf": csrf, **SERVICE, "text": probe(config, "{env:TB_SC_FIELD_KEY}")}
            status, page = await post(
                http, url, "run", form | {"example": "renewal.json"}, language
            )
    assert status == 422
    (said,) = problems(page)
    assert words in said and "{env:TB_SC_FIELD_KEY}" in said


async def test_an_operator_cannot_save_an_unbound_key(
    config: Path, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """Saving is refused the same way (422, audited as a refused reload, each journal): the file
    on disk and the mapping in force are unchanged."""
    before = (config / "mappings" / "hk-vl.yaml").read_text(encoding="utf-8")
    sims = await simulators(config)
    async with broker_at(config, sims, journal_obj=journal_of) as (broker, url):
        in_force = broker.catalogue.mapping("hk", "TD-VL-RENEW")
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "operator")
            form = {"csrf": csrf, **SERVICE, "text": probe(config, "{env:TB_SC_FIELD_KEY}")}
            status, page = await post(http, url, "save", form)
        entries = await broker.journal.trail(TrailQuery(who=IDS["operator"]))
        assert broker.catalogue.mapping("hk", "TD-VL-RENEW") is in_force
    assert status == 422
    assert "{env:TB_SC_FIELD_KEY} is none of those" in " ".join(problems(page))
    assert (config / "mappings" / "hk-vl.yaml").read_text(encoding="utf-8") == before
    assert [(e.action, e.outcome) for e in entries if e.action.startswith("refused:")] == [
        ("refused:reload", "unbound-field-key")
    ]
    assert not [e for e in entries if e.action == "reload"]


async def test_a_key_file_named_as_a_code_table_is_not_quoted(
    config: Path, simulators: Any, broker_at: Any
) -> None:
    """The hk key file beside the mappings, named as a code table by an edited mapping, is
    answered 422 naming the file, without what it holds."""
    text = in_force(config).replace("request:\n", "tables: {k: keys/hk.key}\nrequest:\n", 1)
    sims = await simulators(config)
    async with broker_at(config, sims) as (_broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "viewer")
            form = {"csrf": csrf, **SERVICE, "text": text, "example": "renewal.json"}
            status, page = await post(http, url, "run", form)
    assert status == 422
    assert HK_FILE_KEY not in page
    assert problems(page) == [
        "mappings/keys/hk.key: not a code table; what it holds is not shown in the console, "
        "since no mapping in force uses this file as a code table and it could hold a secret"
    ]


def test_a_compile_for_the_console_binds_no_key_unless_told(tmp_path: Path) -> None:
    """compile_text without the partner's keys refuses every key reference; the same text loaded
    as a file of the configuration (a deployment) is not refused."""
    file = tmp_path / "mappings" / "m.yaml"
    file.parent.mkdir()
    text = textwrap.dedent("""\
        mapping: 1
        request:
          out: {from: a, transform: {encrypt: {cipher: sm4-gcm, key: "{env:TB_ANY_KEY}"}}}
        """)
    file.write_text(text, encoding="utf-8")
    original = load_mapping(file, display="mappings/m.yaml")
    with pytest.raises(ConfigError) as caught:
        compile_text(original, text)
    assert "field key {env:TB_ANY_KEY}: this partner's mappings in force use no field key" in str(
        caught.value
    )
    assert compile_text(original, text, {"{env:TB_ANY_KEY}"}).file == "mappings/m.yaml"
