"""What a console user who may not reveal personal data (a viewer) may do with an edited mapping:
nothing that makes the broker an oracle. An edited mapping that names a field key runs only for a
user who may reveal (it would encrypt or decrypt what the viewer typed under the partner's own
key): a viewer's is refused 403, said in the viewer's language, journalled and audited. The impact
of an edited mapping on the stored applications (which its ``when:`` conditions turn into a yes or
no about what each holds) is shown only to such a user; a viewer is told so. The mapping as it is
in force, nothing typed, runs with its impact for anyone who may use the playground."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from replay.journal import Backend, TrailQuery
from tests.conftest import HK_MAPPING, hk_submission
from tests.integration.pg import JOURNALS, unopened_journal_of
from tests.integration.test_delivery import DONE, settle
from tests.integration.test_roles import IDS, with_principals
from tests.unit.test_playground_secret_refs import (
    EXAMPLE,
    HK_KEY,
    SC_IN_FORCE,
    SC_KEY,
    SERVICE,
    ecb,
    in_force,
    key_file,
    post,
    probe,
    problems,
    signed_in,
)

NEEDS_REVEAL = {
    "en": "runs only for a user who may reveal personal data",
    "zh_Hans": "只能由有权显示个人信息明文的用户运行",
    "zh_Hant": "只能由有權顯示個人資料明文的使用者執行",
}
IMPACT_NEEDS_REVEAL = {
    "en": "is shown only to a user who may reveal personal data",
    "zh_Hans": "只向有权显示个人信息明文的用户显示",
    "zh_Hant": "只向有權顯示個人資料明文的使用者顯示",
}
# A field mapped only when the stored application's HKID is one the viewer guesses.
GUESS = "  guess: {value: x, when: {field: applicant.hkid, equals: 'K802133(3)'}}\n"


@pytest.fixture(params=JOURNALS)
async def journal_of(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An unopened journal of each backend, for the broker to open."""
    async with unopened_journal_of(request.param, tmp_path) as j:
        yield j


@pytest.fixture
def keyed(make_config: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """hk's mapping in force names field keys (variables and a file beside the mappings); a
    viewer and a support principal."""
    monkeypatch.setenv("TB_HK_FIELD_KEY", HK_KEY)
    monkeypatch.setenv("TB_HK_EACH_KEY", "00112233445566778899aabbccddeeff")
    monkeypatch.setenv("TB_SC_FIELD_KEY", SC_KEY)
    root = make_config(
        files={
            "mappings/hk-vl.examples/renewal.json": EXAMPLE,
            "mappings/keys/hk.key": "ffeeddccbbaa99887766554433221100\n",
        },
    )
    key_file(root).chmod(0o600)
    (root / "mappings" / "hk-vl.yaml").write_text(in_force(root), encoding="utf-8")
    (root / "mappings" / "sc-hf.yaml").write_text(SC_IN_FORCE, encoding="utf-8")
    return with_principals(root, ("viewer", "support"))


@pytest.fixture
def plain(make_config: Any) -> Path:
    """The hk mapping with no field key, a golden example, a viewer and a support principal."""
    root = make_config(files={"mappings/hk-vl.examples/renewal.json": EXAMPLE})
    return with_principals(root, ("viewer", "support"))


def impact_of(page: str) -> str | None:
    """The playground's impact line, or None when the page has none."""
    found = re.search(r'<p id="impact">(.*?)</p>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) if found else None


async def test_a_viewers_edit_naming_a_field_key_is_refused_and_audited(
    keyed: Path, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """A viewer's edited hk mapping encrypting a constant under hk's own key (one its mappings in
    force name) is answered 403 without the ciphertext, journalled among the refusals and audited
    as refused:show (field-key-needs-reveal, the key's reference), on each journal."""
    sims = await simulators(keyed)
    async with broker_at(keyed, sims, journal_obj=journal_of) as (broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "viewer")
            form = {"csrf": csrf, **SERVICE, "text": probe(keyed, "{env:TB_HK_FIELD_KEY}")}
            status, page = await post(http, url, "run", form | {"example": "renewal.json"})
        entries = await broker.journal.trail(TrailQuery(who=IDS["viewer"]))
        refusals = await broker.journal.refusals()
    assert status == 403
    assert ecb(HK_KEY, "hello") not in page and 'id="mapped-request"' not in page
    (said,) = problems(page)
    assert said.startswith("an edited mapping that names a field key (")
    assert "{env:TB_HK_FIELD_KEY}" in said and NEEDS_REVEAL["en"] in said
    refused = [e for e in entries if e.action == "refused:show"]
    assert [(e.outcome, e.target) for e in refused] == [
        ("field-key-needs-reveal", "/console/playground/run")
    ]
    assert "{env:TB_HK_FIELD_KEY}" in refused[0].reason and "hello" not in refused[0].reason
    assert [r.path for r in refusals if r.status == 403] == ["/console/playground/run"]


@pytest.mark.parametrize("language", list(NEEDS_REVEAL))
async def test_the_refusal_is_said_in_the_viewers_language(
    keyed: Path, simulators: Any, broker_at: Any, language: str
) -> None:
    """The refusal is worded in the viewer's language (简体, 繁體, English), the key as written."""
    sims = await simulators(keyed)
    async with broker_at(keyed, sims) as (_broker, url):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "viewer")
            text = probe(keyed, f"{{file:{key_file(keyed)}}}")
            form = {"csrf": csrf, **SERVICE, "text": text, "example": "renewal.json"}
            status, page = await post(http, url, "run", form, language)
    assert status == 403
    (said,) = problems(page)
    assert NEEDS_REVEAL[language] in said and f"{{file:{key_file(keyed)}}}" in said


async def test_the_mapping_in_force_and_a_keyless_edit_run_for_a_viewer(
    keyed: Path, simulators: Any, broker_at: Any
) -> None:
    """The mapping in force (as the browser sends it, lines ended CRLF), which names field keys,
    runs for a viewer on a golden example; so does an edit that names none; support's edit naming
    one runs and shows its ciphertext."""
    text = in_force(keyed)
    keyless = HK_MAPPING  # the hk mapping without its field keys: an edit of the one in force
    sims = await simulators(keyed)
    async with broker_at(keyed, sims) as (_broker, url):
        for role, mapping in (
            ("viewer", text.replace("\n", "\r\n")),
            ("viewer", keyless),
            ("support", probe(keyed, "{env:TB_HK_FIELD_KEY}")),
        ):
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                csrf = await signed_in(http, url, role)
                form = {"csrf": csrf, **SERVICE, "text": mapping, "example": "renewal.json"}
                status, page = await post(http, url, "run", form)
            assert (status, problems(page)) == (200, []), (role, page[-1500:])
            assert 'id="mapped-request"' in page
    assert f'"probe": "{ecb(HK_KEY, "hello")}"' in page


async def delivered(broker: Any, n: int) -> None:
    """``n`` hk applications delivered (stored, with their mapped request)."""
    for i in range(n):
        ex, _ = await broker.submit(hk_submission(f"viewer-impact-{i}"))
        assert (await settle(broker, ex.id, DONE)).last_error is None


@pytest.mark.parametrize("language", list(IMPACT_NEEDS_REVEAL))
async def test_a_viewers_edit_shows_no_impact_on_stored_applications(
    plain: Path, simulators: Any, broker_at: Any, journal_of: Backend, language: str
) -> None:
    """A viewer's edit whose field is mapped only when a stored application holds a guessed HKID
    maps the example, but no count of the latest exchanges is shown, only a notice in the
    viewer's language that it needs reveal (each journal)."""
    sims = await simulators(plain)
    async with broker_at(plain, sims, journal_obj=journal_of) as (broker, url):
        await delivered(broker, 2)
        edited = HK_MAPPING.replace("response:\n", f"{GUESS}response:\n")
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            csrf = await signed_in(http, url, "viewer")
            form = {"csrf": csrf, **SERVICE, "text": edited, "example": "renewal.json"}
            status, page = await post(http, url, "run", form, language)
    assert status == 200 and 'id="mapped-request"' in page
    assert impact_of(page) is None
    assert IMPACT_NEEDS_REVEAL[language] in page


async def test_the_impact_is_shown_in_force_or_to_who_may_reveal(
    plain: Path, simulators: Any, broker_at: Any, journal_of: Backend
) -> None:
    """The mapping as it is in force shows a viewer its impact; support sees the impact of the
    same edit the viewer may not (the guessed HKID is the stored one: both would differ)."""
    sims = await simulators(plain)
    async with broker_at(plain, sims, journal_obj=journal_of) as (broker, url):
        await delivered(broker, 2)
        edited = HK_MAPPING.replace("response:\n", f"{GUESS}response:\n")
        said = {}
        for role, text in (("viewer", HK_MAPPING), ("support", edited)):
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                csrf = await signed_in(http, url, role)
                form = {"csrf": csrf, **SERVICE, "text": text, "example": "renewal.json"}
                status, page = await post(http, url, "run", form)
            assert status == 200, page[-1500:]
            assert IMPACT_NEEDS_REVEAL["en"] not in page
            said[role] = impact_of(page)
    assert said == {
        "viewer": "Of the service's latest 2 exchange(s), 0 would map differently.",
        "support": "Of the service's latest 2 exchange(s), 2 would map differently. guess",
    }
