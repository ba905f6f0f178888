"""The console end to end in headless Chromium: sign in, find the demo's rejected exchange, read
it, replay it with a reason and watch it delivered; the playground's errors with their lines; a
viewer who cannot replay; every page in three languages."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import KEYS, REPO, Server


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies), in English unless a test says otherwise."""
    context = chromium.new_context(locale="en-GB", timezone_id="Asia/Hong_Kong")
    page = context.new_page()
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)  # a loaded machine: waiting, never timing
    yield page
    context.close()


def on_this_machine(page: Page, url: str) -> None:
    page.goto(url + "/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    page.click("#this-machine")
    expect(page.locator("header .who")).to_contain_text("this machine")


def with_key(page: Page, url: str, role: str) -> None:
    page.goto(url + "/console/sign-in")
    page.fill("input[name=key]", KEYS[role])
    page.click("#sign-in")
    expect(page.locator("header .who")).to_contain_text(f"test-{role}")


def test_support_finds_replays_and_sees_delivered(demo: Server, page: Page, shots: Path) -> None:
    """The demo's rejected exchange is found, read, replayed with a reason and ends delivered."""
    on_this_machine(page, demo.url)
    expect(page.locator("#partners")).to_be_visible()
    # the demo's one broker, as the journal knows it, serving the version this page runs
    expect(page.locator("#instances tr")).to_have_count(2)
    expect(page.locator("#instances")).not_to_contain_text("differs")
    page.screenshot(path=shots / "overview.png", full_page=True)
    page.goto(demo.url + "/console/exchanges")
    page.check("input[name=state][value=rejected]")
    page.click("#find")
    row = page.locator(f"#results tr[data-id='{demo.left}']")
    expect(row).to_be_visible()
    page.screenshot(path=shots / "exchanges.png", full_page=True)
    row.locator("a").click()
    expect(page.locator("#state")).to_have_text("rejected")
    expect(page.locator("#last-error")).to_contain_text("400")
    page.screenshot(path=shots / "exchange.png", full_page=True)
    page.fill("#replay-reason", "partner gateway fixed")
    page.click("#dry-run")
    expect(page.locator(f"#plan tr[data-id='{demo.left}']")).to_contain_text("as attempt 2")
    page.screenshot(path=shots / "replay-plan.png", full_page=True)
    page.click("#confirm-replay")
    expect(page.locator("#progress")).to_have_attribute("data-done", "yes")
    expect(page.locator(f"#batch tr[data-id='{demo.left}']")).to_contain_text("delivered")
    page.screenshot(path=shots / "replay-progress.png", full_page=True)
    page.goto(f"{demo.url}/console/exchanges/{demo.left}")
    expect(page.locator("#replays")).to_contain_text("partner gateway fixed")
    expect(page.locator("#replays")).to_contain_text("loopback")


def test_playground_shows_a_broken_mappings_line(demo: Server, page: Page, shots: Path) -> None:
    """A mapping broken in the editor is refused with its file and the line of the fault."""
    on_this_machine(page, demo.url)
    page.goto(demo.url + "/console/playground")
    page.click("#run")
    expect(page.locator("#mapped-request")).to_be_visible()
    text = page.input_value("#mapping-text")
    lines = text.splitlines()
    target = next(i for i, line in enumerate(lines) if "from:" in line)
    lines[target] = lines[target].replace("from:", "frm:", 1)
    page.fill("#mapping-text", "\n".join(lines) + "\n")
    page.click("#run")
    problems = page.locator("#problems")
    expect(problems).to_contain_text(f":{target + 1}:")
    page.screenshot(path=shots / "playground-error.png", full_page=True)


def test_playground_says_a_broken_mappings_problem_in_the_viewers_language(
    demo: Server, chromium: Browser
) -> None:
    """A browser asking for zh-HK: the playground's problem with a broken mapping is said in 繁體,
    with its file and line, and not in English."""
    context = chromium.new_context(locale="zh-HK", timezone_id="Asia/Hong_Kong")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(demo.url + "/console/sign-in")
        page.click("#this-machine")
        page.goto(demo.url + "/console/playground")
        page.click("#run")
        expect(page.locator("#mapped-request")).to_be_visible()
        lines = page.input_value("#mapping-text").splitlines()
        target = next(i for i, line in enumerate(lines) if "from:" in line)
        lines[target] = lines[target].replace("from:", "frm:", 1)
        page.fill("#mapping-text", "\n".join(lines) + "\n")
        page.click("#run")
        problems = page.locator("#problems")
        expect(problems).to_contain_text(f":{target + 1}:")
        expect(problems).to_contain_text("未知的鍵")
        expect(problems).not_to_contain_text("unknown key")
    finally:
        context.close()


def test_viewer_cannot_replay(guarded: Server, page: Page, shots: Path) -> None:
    """A viewer sees no replay form, and a replay posted anyway is refused and audited."""
    page.goto(guarded.url + "/console/sign-in")
    page.fill("input[name=key]", "not anyones key")
    page.click("#sign-in")
    expect(page.locator("[data-problem=forbidden]")).to_be_visible()
    with_key(page, guarded.url, "viewer")
    page.goto(guarded.url + "/console/exchanges")
    expect(page.locator("#search")).to_be_visible()
    expect(page.locator("#replay-filter")).to_have_count(0)
    csrf = page.locator("header input[name=csrf]").input_value()
    answer = page.request.post(
        guarded.url + "/console/replays",
        form={"csrf": csrf, "mode": "resend", "reason": "try", "f_state": "failed", "confirm": "1"},
    )
    assert answer.status == 403
    page.goto(guarded.url + "/console/audit")
    expect(page.locator("[data-problem=forbidden]")).to_be_visible()
    page.context.clear_cookies()
    with_key(page, guarded.url, "auditor")
    page.goto(guarded.url + "/console/audit?who=test-viewer&action=refused:replay")
    expect(page.locator("#audit")).to_contain_text("refused:replay")
    page.screenshot(path=shots / "audit.png", full_page=True)


PAGES = (
    "/console/",
    "/console/exchanges",
    "/console/playground",
    "/console/refusals",
    "/console/audit",
)
NAV = {"zh_Hans": "总览", "zh_Hant": "總覽", "en": "Overview"}
HTML_LANG = {"zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant", "en": "en"}
GD = {"zh_Hans": "广东省一体化", "zh_Hant": "廣東省一體化", "en": "Guangdong Integrated"}


@pytest.mark.parametrize("lang", ["zh_Hans", "zh_Hant", "en"])
def test_every_page_in_each_language(demo: Server, page: Page, shots: Path, lang: str) -> None:
    """Each page renders in the chosen language (the switch), and Accept-Language chooses too."""
    on_this_machine(page, demo.url)
    for path in (*PAGES, f"/console/exchanges/{demo.left}"):
        answer = page.goto(f"{demo.url}{path}?lang={lang}")
        assert answer is not None and answer.status == 200, path
        expect(page.locator("html")).to_have_attribute("lang", HTML_LANG[lang])
        expect(page.locator("header nav")).to_contain_text(NAV[lang])
        if path == "/console/":  # partners by their names in the viewer's language
            gd = page.locator("#partners tr[data-partner=gd]")
            expect(gd).to_contain_text(GD[lang])
        name = path.strip("/").replace("/", "-").replace("console", "").strip("-") or "overview"
        if path.endswith(demo.left):
            name = "exchange"
        page.screenshot(path=shots / f"{lang}-{name}.png", full_page=True)


def test_accept_language_chooses(demo: Server, chromium: Browser) -> None:
    """A browser asking for zh-HK gets 繁體 without touching the switch."""
    context = chromium.new_context(locale="zh-HK")
    page = context.new_page()
    page.goto(demo.url + "/console/sign-in")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
    expect(page.locator("#sign-in")).to_have_text("登入")
    context.close()


def submit_to_hk(url: str) -> str:
    """An application for Hong Kong (whose endpoint is a closed port: it waits to retry)."""
    example = (
        REPO / "mappings/hk/td-vehicle-licence-renewal.examples/01-kiosk-guangzhou-12-months.json"
    )
    body = {
        "source": "hk-kiosk-gz",
        "partner": "hk",
        "service": "TD-VL-RENEW",
        "application": json.loads(example.read_text(encoding="utf-8"))["application"],
    }
    request = urllib.request.Request(
        url + "/v1/exchanges",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["id"])


def test_payloads_masked_until_revealed_with_a_reason(guarded: Server, page: Page) -> None:
    """A viewer sees the application masked and no reveal; support reveals it with a reason,
    and the auditor finds that reveal, by whom and why."""
    xid = submit_to_hk(guarded.url)
    with_key(page, guarded.url, "viewer")
    page.goto(f"{guarded.url}/console/exchanges/{xid}")
    expect(page.locator("#application")).to_contain_text("‹redacted›")
    expect(page.locator("#reveal")).to_have_count(0)
    page.context.clear_cookies()
    with_key(page, guarded.url, "support")
    page.goto(f"{guarded.url}/console/exchanges/{xid}")
    expect(page.locator("#application")).not_to_contain_text("K802133")
    page.fill("#reveal input[name=reason]", "applicant called about the renewal")
    page.click("#reveal button")
    expect(page.locator("#application")).to_contain_text("K802133(3)")
    expect(page.locator("#application")).not_to_contain_text("‹redacted›")
    page.context.clear_cookies()
    with_key(page, guarded.url, "auditor")
    page.goto(f"{guarded.url}/console/audit?action=reveal&target={xid}")
    row = page.locator("#audit tr", has_text="test-support")
    expect(row).to_contain_text("applicant called about the renewal")


def test_operator_saves_a_mapping_and_reloads(guarded: Server, page: Page) -> None:
    """An operator's save writes the file and reloads (audited); a broken one is refused and the
    file stays as it was."""
    with_key(page, guarded.url, "operator")
    page.goto(f"{guarded.url}/console/playground?partner=hk&service=TD-VL-RENEW")
    text = page.input_value("#mapping-text")
    page.fill("#mapping-text", text.rstrip("\n") + "\n# checked in the console\n")
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible()
    file = guarded.root / "mappings/hk/td-vehicle-licence-renewal.yaml"
    assert file.read_text(encoding="utf-8").endswith("# checked in the console\n")
    page.fill("#mapping-text", "mapping: 1\nrequest:\n  a: {frm: b}\n")
    page.click("#save")
    expect(page.locator("#problems")).to_be_visible()
    assert file.read_text(encoding="utf-8").endswith("# checked in the console\n")
    page.context.clear_cookies()
    with_key(page, guarded.url, "auditor")
    page.goto(f"{guarded.url}/console/audit?action=reload&who=test-operator")
    expect(page.locator("#audit")).to_contain_text("td-vehicle-licence-renewal.yaml")


def test_bulk_dry_run_says_per_exchange_why(guarded: Server, page: Page) -> None:
    """A replay by filter starts with a dry run that names each exchange and why it is left."""
    xid = submit_to_hk(guarded.url)
    with_key(page, guarded.url, "support")
    page.goto(f"{guarded.url}/console/exchanges?partner=hk&id={xid}")
    expect(page.locator(f"#results tr[data-id='{xid}']")).to_be_visible()
    page.fill("#replay-filter input[name=reason]", "partner back")
    page.click("#replay-filter button")
    expect(page.locator("#plan-summary")).to_contain_text("0 exchange(s) would be replayed")
    expect(page.locator("#plan tr", has_text=xid)).to_contain_text("only delivered")
    expect(page.locator("#confirm")).to_have_count(0)


def test_search_by_applicant_keeps_the_id_out_of_urls(guarded: Server, page: Page) -> None:
    """An HKID typed any way finds its exchange by keyed hash; it is in no URL and no audit entry."""
    xid = submit_to_hk(guarded.url)
    with_key(page, guarded.url, "support")
    page.goto(guarded.url + "/console/exchanges")
    page.fill("#by-applicant input[name=applicant]", "k802133 (3)")
    page.click("#by-applicant button")
    expect(page.locator(f"#results tr[data-id='{xid}']")).to_be_visible()
    assert "802133" not in page.url
    page.context.clear_cookies()
    with_key(page, guarded.url, "auditor")
    page.goto(guarded.url + "/console/audit?who=test-support&action=search")
    expect(page.locator("#audit")).to_contain_text("search")
    assert "802133" not in page.locator("#audit").inner_text()


def test_viewer_takes_an_edit_as_a_patch(guarded: Server, page: Page) -> None:
    """Where configuration lives in version control, the edit comes back as a unified diff of
    the mapping file; nothing is written."""
    with_key(page, guarded.url, "viewer")
    page.goto(f"{guarded.url}/console/playground?partner=hk&service=TD-VL-RENEW")
    expect(page.locator("#save")).to_have_count(0)
    file = guarded.root / "mappings/hk/td-vehicle-licence-renewal.yaml"
    before = file.read_text(encoding="utf-8")
    page.fill("#mapping-text", page.input_value("#mapping-text") + "# proposed by a viewer\n")
    with page.expect_download() as download:
        page.click("#patch")
    diff = Path(download.value.path()).read_text(encoding="utf-8")
    assert "+++ b/mappings/hk/td-vehicle-licence-renewal.yaml" in diff
    assert "+# proposed by a viewer" in diff
    assert file.read_text(encoding="utf-8") == before
