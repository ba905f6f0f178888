"""Problem-detail titles in the caller's language (简体, 繁體, English), the slug unchanged."""

from __future__ import annotations

import aiohttp
import pytest

from federation.api.i18n import LANGUAGES, translations
from federation.api.problems import TITLES
from tests.conftest import HK_APPLICATION

BODY = {"source": "gd-portal", "partner": "hk", "service": "NO-SUCH-SERVICE", "application": {}}


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_problem_title_is_translated(language: str) -> None:
    """Each title the API can answer with has a translation in each Chinese catalogue."""
    gettext = translations(language, "problems").gettext
    untranslated = [title for title in TITLES.values() if gettext(title) == title]
    assert not untranslated, f"problems.po ({language}) lacks: {untranslated}"


@pytest.mark.parametrize(
    ("accept", "title", "language"),
    [
        (None, "Unknown service item for this partner", "en"),
        ("zh-CN,zh;q=0.9", "该协作方没有此服务事项", "zh-Hans"),
        ("zh-HK,en;q=0.5", "該協作方沒有此服務事項", "zh-Hant"),
        ("en-GB", "Unknown service item for this partner", "en"),
        ("fr-FR", "Unknown service item for this partner", "en"),
    ],
)
async def test_a_problem_title_follows_accept_language(
    make_config, broker_at, accept: str | None, title: str, language: str
) -> None:
    """The same refusal reads in the caller's language; type and detail stay as they are."""
    headers = {"Idempotency-Key": "lang-1"}
    if accept is not None:
        headers["Accept-Language"] = accept
    async with broker_at(make_config()) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges", json=BODY, headers=headers) as r:
            status, problem = r.status, await r.json(content_type=None)
            content_language = r.headers.get("Content-Language")
    assert status in (404, 422), problem
    assert problem["type"] == "urn:tongban:problem:unknown-service"
    assert problem["title"] == title
    assert content_language == language


@pytest.mark.parametrize(
    ("accept", "title", "language"),
    [
        (None, "The application does not conform to the local application format", "en"),
        ("zh-CN", "申请不符合本地申请格式", "zh-Hans"),
        ("zh-HK,zh;q=0.9", "申請不符合本地申請格式", "zh-Hant"),
    ],
)
async def test_a_dry_runs_422_title_follows_accept_language(
    make_config, broker_at, accept: str | None, title: str, language: str
) -> None:
    """A dry run of an application outside the format answers 422 titled in the caller's
    language; the errors it lists and the slug stay as they are."""
    headers = {} if accept is None else {"Accept-Language": accept}
    application = {**HK_APPLICATION, "applicant": {**HK_APPLICATION["applicant"], "gender": "M"}}
    body = {"source": "gd-portal", "partner": "hk", "service": "TD-VL-RENEW"}
    body["application"] = application
    async with broker_at(make_config()) as (_, url), aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/v1/exchanges?dry_run=true", json=body, headers=headers) as r:
            status, problem = r.status, await r.json(content_type=None)
            content_language = r.headers.get("Content-Language")
    assert status == 422, problem
    assert problem["type"] == "urn:tongban:problem:invalid-application"
    assert problem["title"] == title
    assert problem["errors"] and content_language == language
