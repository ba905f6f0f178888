"""A mapping's ``checks:`` inside the running broker: a contradiction is refused before sending."""

from __future__ import annotations

import aiohttp

from tests.conftest import HK_APPLICATION, HK_MAPPING
from tests.integration.test_intake_api import BODY, wait_for_state

CHECKED = (
    HK_MAPPING
    + """\
checks:
  sex-matches-permit:
    id_sex: {id: applicant.permit, sex: applicant.gender}
    message:
      zh-Hant: 性別與證件號碼不符
      en: the gender does not match the residence permit number
"""
)


def application(gender: str) -> dict[str, object]:
    """Domain case 4: an HK resident's permit 810000197804160214 (a man), with ``gender``."""
    applicant = {**HK_APPLICATION["applicant"], "permit": "810000197804160214", "gender": gender}
    return {**HK_APPLICATION, "applicant": applicant}


async def test_contradictory_gender_is_rejected_with_the_rules_message(
    make_config, simulators, broker_at
) -> None:
    """Gender 2 on a man's permit: rejected with the check's message at the field, never sent."""
    root = make_config(hk_mapping=CHECKED)
    sims = await simulators(root)
    async with broker_at(root, sims) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        bad = {**BODY, "application": application("2")}
        async with http.post("/v1/exchanges", json=bad, headers={"Idempotency-Key": "bad"}) as r:
            assert r.status == 202
            refused = await wait_for_state(
                http, r.headers["Location"], {"delivered", "failed", "rejected"}
            )
        good = {**BODY, "application": application("1")}
        async with http.post("/v1/exchanges", json=good, headers={"Idempotency-Key": "ok"}) as r:
            delivered = await wait_for_state(
                http, r.headers["Location"], {"delivered", "failed", "rejected"}
            )
    assert refused["state"] == "rejected"
    [problem] = refused["last_error"]["problems"]
    assert problem["path"] == "applicant.gender"
    assert problem["message"] == (
        "性別與證件號碼不符 / the gender does not match the residence permit number"
        " (check sex-matches-permit)"
    )
    assert problem["file"] == "mappings/hk-vl.yaml" and problem["line"]
    assert delivered["state"] == "delivered"
    assert set(sims["hk"].seen) == {delivered["id"]}  # the contradiction never reached it
